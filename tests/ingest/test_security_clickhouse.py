"""ClickHouse user, password and TLS settings reach clickhouse-connect: against a front that checks basic auth and
serves https with a CA made at test time. A wrong password is one clear error (exit 2 from the CLI); no command's
output, at DEBUG, contains the password, whether it came from a file, the environment or the DSN."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store, StoreAuthenticationFailed, StoreUnavailable
from tests.fixtures.clickhouse import ChdbHttpFront, enriched
from tests.fixtures.tls import TlsFiles

FINMON = str(Path(sys.executable).parent / "finmon")


@pytest.fixture
def front(clickhouse_https: ChdbHttpFront) -> ChdbHttpFront:
    return clickhouse_https


def _password(front: ChdbHttpFront) -> str:
    assert front.credentials
    return front.credentials[1]


def _settings(front: ChdbHttpFront, tls_files: TlsFiles, **more: object) -> IngestSettings:
    values = {"clickhouse_dsn": front.address, "clickhouse_database": "finmon_sec", "clickhouse_username": "finmon",
              "clickhouse_password": _password(front), "clickhouse_ca_file": str(tls_files.ca), **more}
    return IngestSettings(**values)


def test_the_right_credentials_over_https_write_and_read(front: ChdbHttpFront, tls_files: TlsFiles) -> None:
    with Store.connect(_settings(front, tls_files)) as store:
        store.migrate()
        store.write_batch([enriched("tls-1", datetime.now(UTC))])
        assert store.query(f"SELECT count() AS n FROM {DOCUMENTS}") == [{"n": 1}]
    assert front.refused == 0


def test_a_wrong_password_is_a_clear_error_without_the_password(front: ChdbHttpFront, tls_files: TlsFiles) -> None:
    with pytest.raises(StoreAuthenticationFailed) as caught:
        Store.connect(_settings(front, tls_files, clickhouse_password="wrong-one-55"))
    assert "refused the user or password" in str(caught.value)
    assert "wrong-one-55" not in str(caught.value) and _password(front) not in str(caught.value)
    assert front.refused >= 1


def test_a_server_certificate_from_another_ca_is_refused(front: ChdbHttpFront, tls_files: TlsFiles) -> None:
    with pytest.raises(StoreUnavailable, match="(?i)certificate"):
        Store.connect(_settings(front, tls_files, clickhouse_ca_file=str(tls_files.other_ca)))
    assert front.refused == 0  # refused by the client before any request


def _migrate(env_more: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINMON_INGEST_")}
    env.update(env_more, FINMON_LOG_LEVEL="DEBUG", FINMON_HOME=str(tmp_path / "home"))
    done = subprocess.run([FINMON, "migrate"], env=env, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr


def test_migrate_takes_the_password_from_a_file_or_the_dsn_and_never_prints_it(
    front: ChdbHttpFront, tls_files: TlsFiles, tmp_path: Path
) -> None:
    secret_file = tmp_path / "ch-password"
    secret_file.write_text(_password(front) + "\n")
    common = {"FINMON_INGEST_CLICKHOUSE_CA_FILE": str(tls_files.ca), "FINMON_INGEST_CLICKHOUSE_DATABASE": "finmon_cli"}
    from_file = {**common, "FINMON_INGEST_CLICKHOUSE_DSN": front.address, "FINMON_INGEST_CLICKHOUSE_USERNAME": "finmon",
                 "FINMON_INGEST_CLICKHOUSE_PASSWORD_FILE": str(secret_file)}
    in_dsn = {**common, "FINMON_INGEST_CLICKHOUSE_DSN": front.url}
    for env in (from_file, in_dsn):
        code, output = _migrate(env, tmp_path)
        assert code == 0, output[-3000:]
        assert "DEBUG" in output and _password(front) not in output, output[-3000:]

    secret_file.write_text("wrong-one-55\n")
    code, output = _migrate(from_file, tmp_path)
    assert code == 2, output[-3000:]
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "StoreAuthenticationFailed" in errors[0], output[-3000:]
    assert "wrong-one-55" not in output and _password(front) not in output
