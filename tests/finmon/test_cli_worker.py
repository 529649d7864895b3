"""`finmon worker` as a process: SIGTERM is a graceful stop (final flush and commit, exit 0, nothing replayed by
the next run), and an unreachable Kafka is one clear error line and exit code 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.store import DOCUMENTS, Store
from tests.fixtures.kafka import IngestTopics
from tests.ingest.kafka_checks import (
    check_dead_letters,
    check_store,
    consumer_lag,
    free_port,
    produce,
    read_topic,
    stored_so_far,
)
from tests.ingest.stream_data import MAX_MESSAGE_BYTES, build_stream

FINMON = str(Path(sys.executable).parent / "finmon")
REPLAY_LINE = "were predicted and stored before (a replay)"


def _errors(log: str, own_only: bool = True) -> list[str]:
    """ERROR lines (of finmon's own loggers with ``own_only``: aiokafka logs a transient ERROR, e.g.
    GroupCoordinatorNotAvailable while a fresh broker creates its offsets topic, that the worker rides out)."""
    own = ("ingest", "inference", "finmon", "alerts", "dashboards")
    return [line for line in log.splitlines() if " ERROR " in line
            and (not own_only or line.split(" ERROR ", 1)[1].startswith(own))]


@pytest.mark.kafka
@pytest.mark.slow
def test_sigterm_flushes_commits_and_exits_0_and_the_next_run_replays_nothing(
    ingest_topics: IngestTopics, tmp_path: Path
) -> None:
    stream = build_stream(800, seed=35)
    produce(ingest_topics, stream.messages)
    port, dsn = free_port(), f"chdb://{tmp_path / 'chdb'}"
    env = ingest_topics.env(clickhouse_dsn=dsn, max_message_bytes=MAX_MESSAGE_BYTES, batch_size=16,
                            max_poll_records=50, metrics_port=port)
    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        first = subprocess.Popen([FINMON, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while stored_so_far(port) < 150:
                assert first.poll() is None, first_log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.1)
            first.send_signal(signal.SIGTERM)
            assert first.wait(60) == 0, first_log.read_text()[-3000:]
        finally:
            if first.poll() is None:
                first.kill()
    log = first_log.read_text()
    assert not _errors(log), _errors(log)
    lag = consumer_lag(ingest_topics)
    assert sum(lag.values()) > 0, "the stop came too late to test anything"

    # the final flush and commit: what is committed is exactly what is stored
    committed = {(t, p): end - behind for (t, p), behind in lag.items()
                 for end in [_end(ingest_topics, t, p)]}
    below: set[str] = set()
    for topic in (ingest_topics.news_topic, ingest_topics.posts_topic):
        for (t, p, offset), value in read_topic(ingest_topics.bootstrap_servers, topic).items():
            if offset < committed[(t, p)]:
                try:
                    below.add(json.loads(value)["id"])
                except (ValueError, KeyError, TypeError):
                    pass
    with Store.open(dsn) as store:
        stored = {r["doc_id"] for r in store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL")}
    reposts = {i for pair in stream.reposts for i in pair}
    assert stored <= below
    assert (below & stream.expected_ids) - reposts <= stored

    second = subprocess.run([FINMON, "worker", "--exit-when-idle", "2"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    rest = second.stdout + second.stderr
    assert REPLAY_LINE not in rest and not _errors(rest)
    assert set(consumer_lag(ingest_topics).values()) == {0}
    with Store.open(dsn) as store:
        from inference.serving.predictor import load_predictor

        check_store(store, stream, load_predictor().model_version)
    check_dead_letters(ingest_topics, stream, exact=True)  # a replayed tail would dead-letter a message twice


def _end(topics: IngestTopics, topic: str, partition: int) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap_servers)
    try:
        tp = TopicPartition(topic, partition)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def test_kafka_unreachable_at_start_is_one_clear_error_and_exit_2(tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    topics = IngestTopics(bootstrap, "news.raw", "posts.raw", "news.dlq", "posts.dlq", "finmon-test-nobroker")
    env = topics.env(clickhouse_dsn=f"chdb://{tmp_path / 'chdb'}", metrics_port=0)
    done = subprocess.run([FINMON, "worker"], env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    errors = _errors(output, own_only=False)
    assert len(errors) == 1, errors
    assert "KafkaUnavailable" in errors[0] and f"cannot reach Kafka at {bootstrap}" in errors[0]
    assert "Traceback" not in output
