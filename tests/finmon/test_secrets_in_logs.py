"""The commands that take secrets, run at DEBUG with their secrets from files (``*_FILE``) or the environment: each
works, and no captured output contains a secret. (Kafka's produce/poll/worker: tests/ingest/test_security_kafka.py;
migrate: tests/ingest/test_security_clickhouse.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.store import Store
from tests.fixtures.clickhouse import ChdbHttpFront, enriched
from tests.fixtures.tls import TlsFiles

FINMON = str(Path(sys.executable).parent / "finmon")
TOKEN = "robot-token-9ab31c"
SIGNING = "signing-secret-44f0"


def _run(args: list[str], env_more: dict[str, str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINMON_INGEST_", "FINMON_GRAFANA_", "FINMON_ALERTS_"))}
    env.update(env_more, FINMON_LOG_LEVEL="DEBUG", FINMON_HOME=str(tmp_path / "home"))
    done = subprocess.run([FINMON, *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "DEBUG" in output
    return output


def test_store_commands_never_print_the_clickhouse_password(
    clickhouse_https: ChdbHttpFront, tls_files: TlsFiles, tmp_path: Path
) -> None:
    front, (user, password) = clickhouse_https, clickhouse_https.credentials  # type: ignore[misc]
    from datetime import UTC, datetime

    from alerts import history

    with Store.open(front.url, "finmon_logs", ca_cert=str(tls_files.ca)) as store:
        store.migrate()
        history.migrate(store)  # the alert tables the dashboards read
        store.write_batch([enriched("logs-1", datetime.now(UTC))])
    secret = tmp_path / "ch-password"
    secret.write_text(password)
    env = {"FINMON_INGEST_CLICKHOUSE_DSN": front.address, "FINMON_INGEST_CLICKHOUSE_USERNAME": user,
           "FINMON_INGEST_CLICKHOUSE_PASSWORD_FILE": str(secret), "FINMON_INGEST_CLICKHOUSE_DATABASE": "finmon_logs",
           "FINMON_INGEST_CLICKHOUSE_CA_FILE": str(tls_files.ca)}
    outputs = [_run(["report", "--out", str(tmp_path / "r.html")], env, tmp_path),
               _run(["dashboards", "check", "--hours", "1"], {**env, "FINMON_GRAFANA_CLICKHOUSE_PASSWORD": password},
                    tmp_path),
               # the alerts stage has the same ClickHouse settings under its own prefix
               _run(["alerts", "run", "--once"], {k.replace("FINMON_INGEST_", "FINMON_ALERTS_"): v
                                                  for k, v in env.items()}, tmp_path)]
    assert front.refused == 0
    for output in outputs:
        assert password not in output


def test_alert_channel_secrets_from_files_are_used_and_never_printed(receiver, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("channels:\n  hook: {type: webhook, url_env: T_HOOK_URL, secret_env: T_HOOK_SECRET}\n"
                     "routes:\n  - channels: [hook]\n")
    (tmp_path / "url").write_text(f"{receiver.url}/hook?access_token={TOKEN}\n")
    (tmp_path / "signing").write_text(SIGNING)
    output = _run(["alerts", "test-notify", "hook", "--rules", str(rules)],
                  {"T_HOOK_URL_FILE": str(tmp_path / "url"), "T_HOOK_SECRET_FILE": str(tmp_path / "signing")}, tmp_path)
    [request] = receiver.paths("/hook")
    assert request.query["access_token"] == [TOKEN] and "X-Finmon-Signature" in {k.title() for k in request.headers}
    assert TOKEN not in output and SIGNING not in output


def test_logged_settings_mask_secrets_and_passwords_inside_urls() -> None:
    from ingest.settings import IngestSettings

    settings = IngestSettings(sasl_password=TOKEN, clickhouse_dsn=f"https://finmon:{SIGNING}@ch.bank:8443")
    logged = str(settings.masked())  # what `finmon worker` logs at start
    assert TOKEN not in logged and SIGNING not in logged and "https://finmon:***@ch.bank:8443" in logged
