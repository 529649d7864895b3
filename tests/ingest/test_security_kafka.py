"""Kafka over SASL_SSL (SCRAM-SHA-512, a CA made at test time): ``finmon produce``, ``finmon poll`` and
``finmon worker`` connect with a password read from a file; a wrong password or an untrusted certificate fails at
once with one clear line and exit code 2; no output of any of them, at DEBUG, contains a password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from ingest.records import DeadLetter
from ingest.store import DOCUMENTS, Store
from tests.fixtures.kafka import SecureKafka
from tests.fixtures.tls import TlsFiles
from tests.ingest.kafka_checks import read_topic

pytestmark = pytest.mark.kafka
FINMON = str(Path(sys.executable).parent / "finmon")
WRONG = "not-the-password-7f3a"


def _jsonl(n: int) -> bytes:
    now = datetime.now(UTC)
    return b"".join(json.dumps({
        "id": f"sec-{i}", "source": "wire", "kind": "news", "published_at": (now - timedelta(minutes=i)).isoformat(),
        "text": f"Acme Corp shares rose {i}% after the bank upgraded the stock (story {i})",
    }).encode() + b"\n" for i in range(n))


@pytest.fixture
def feed() -> Iterator[str]:
    """A JSON API with three items, for ``finmon poll json``."""
    now = datetime.now(UTC).isoformat()
    body = json.dumps({"items": [{"id": f"feed-{i}", "title": f"Globex item {i}", "url": f"https://feed.test/{i}",
                                  "text": f"Globex cut its dividend by {i + 1}%", "published_at": now}
                                 for i in range(3)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/items"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def topics(kafka_sasl_ssl: SecureKafka) -> Iterator[dict[str, str]]:
    names = {k: f"{k.replace('_topic', '')}.{uuid.uuid4().hex[:8]}"
             for k in ("news_topic", "posts_topic", "news_dlq_topic", "posts_dlq_topic")}
    admin = KafkaAdminClient(bootstrap_servers=kafka_sasl_ssl.plaintext, client_id="finmon-tests")
    admin.create_topics([NewTopic(n, num_partitions=2, replication_factor=1) for n in names.values()])
    try:
        yield names
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()


def _env(kafka: SecureKafka, topics: dict[str, str], tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of a command on the SASL_SSL listener, its password in a file, logging at DEBUG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMON_INGEST_")}
    password_file = tmp_path / "kafka-password"
    password_file.write_text(kafka.password + "\n")
    settings = {**kafka.settings(), **topics, "group_id": f"sec-{uuid.uuid4().hex[:8]}",
                "clickhouse_dsn": f"chdb://{tmp_path / 'chdb'}", "metrics_port": "0"}
    del settings["sasl_password"]
    settings.update(more)
    env.update({f"FINMON_INGEST_{k.upper()}": v for k, v in settings.items()})
    env["FINMON_INGEST_SASL_PASSWORD_FILE"] = str(password_file)
    env["FINMON_LOG_LEVEL"] = "DEBUG"
    return env


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    done = subprocess.run([FINMON, *args], env=env, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR " in line or line.startswith("ERROR")]


def _send_with_big_headers(bootstrap: str, topic: str) -> None:
    """A valid document whose record headers exceed max_header_bytes (16 KiB): dead-lettered, not stored."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, _jsonl(1).replace(b"sec-0", b"big-headers"), headers=[("trace", b"x" * 20_000)]).get(30)
    producer.close()


def test_produce_poll_and_worker_run_over_sasl_ssl_without_logging_the_password(
    kafka_sasl_ssl: SecureKafka, topics: dict[str, str], feed: str, tmp_path: Path
) -> None:
    env = _env(kafka_sasl_ssl, topics, tmp_path)
    stream = tmp_path / "docs.jsonl"
    stream.write_bytes(_jsonl(5))
    _send_with_big_headers(kafka_sasl_ssl.plaintext, topics["news_topic"])
    outputs = {}
    for name, args in {"produce": ["produce", str(stream)],
                       "poll": ["poll", "json", feed, "--once", "--politeness", "0"],
                       "worker": ["worker", "--exit-when-idle", "2"]}.items():
        code, outputs[name] = _run(args, env)
        assert code == 0, f"finmon {name} failed:\n{outputs[name][-3000:]}"
    assert len(read_topic(kafka_sasl_ssl.plaintext, topics["news_topic"])) == 9  # 5 produced + 3 polled + 1
    [letter] = [DeadLetter.from_json(v) for v in read_topic(kafka_sasl_ssl.plaintext, topics["news_dlq_topic"]).values()]
    assert letter.reason == "headers_too_large"
    with Store.open(f"chdb://{tmp_path / 'chdb'}") as store:
        stored = {r["doc_id"] for r in store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL")}
    assert {f"sec-{i}" for i in range(5)} <= stored and len(stored) == 8
    assert "DEBUG" in outputs["worker"]  # the grep below reads the most verbose logs
    for name, output in outputs.items():
        assert kafka_sasl_ssl.password not in output, f"finmon {name} logged the Kafka password"
        assert not _errors(output), f"finmon {name} logged errors: {_errors(output)}"


@pytest.mark.parametrize("command", ["produce", "poll", "worker"])
def test_a_wrong_password_fails_at_once_with_one_clear_line(
    command: str, kafka_sasl_ssl: SecureKafka, topics: dict[str, str], feed: str, tmp_path: Path
) -> None:
    env = _env(kafka_sasl_ssl, topics, tmp_path, sasl_password=WRONG)
    del env["FINMON_INGEST_SASL_PASSWORD_FILE"]
    stream = tmp_path / "docs.jsonl"
    stream.write_bytes(_jsonl(1))
    args = {"produce": ["produce", str(stream)], "poll": ["poll", "json", feed, "--once"],
            "worker": ["worker", "--exit-when-idle", "2"]}[command]
    code, output = _run(args, env, timeout=120)  # kafka-python alone retries a refused login for 30 s
    assert code == 2, output[-3000:]
    errors = _errors(output)
    assert len(errors) == 1, output[-3000:]
    assert "KafkaAuthenticationFailed" in errors[0] and "refused the credentials of user 'finmon'" in errors[0]
    assert WRONG not in output and kafka_sasl_ssl.password not in output
    assert not read_topic(kafka_sasl_ssl.plaintext, topics["news_topic"])


def test_a_broker_certificate_from_another_ca_is_refused(
    kafka_sasl_ssl: SecureKafka, topics: dict[str, str], tls_files: TlsFiles, tmp_path: Path
) -> None:
    env = _env(kafka_sasl_ssl, topics, tmp_path, ssl_cafile=str(tls_files.other_ca))
    stream = tmp_path / "docs.jsonl"
    stream.write_bytes(_jsonl(1))
    code, output = _run(["produce", str(stream)], env, timeout=120)
    assert code == 2, output[-3000:]
    assert len(_errors(output)) == 1 and "TLS certificate is not trusted" in _errors(output)[0], output[-3000:]


def test_a_missing_password_file_is_one_clear_line(
    kafka_sasl_ssl: SecureKafka, topics: dict[str, str], tmp_path: Path
) -> None:
    env = _env(kafka_sasl_ssl, topics, tmp_path)
    env["FINMON_INGEST_SASL_PASSWORD_FILE"] = str(tmp_path / "no-such-file")
    code, output = _run(["produce", "-"], env, timeout=120)
    assert code == 2, output[-3000:]
    assert len(_errors(output)) == 1 and "FINMON_INGEST_SASL_PASSWORD_FILE" in _errors(output)[0], output[-3000:]
