"""`finmon migrate` and `finmon report` on an embedded store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from finmon.cli import main
from ingest.store import MIGRATIONS, Store
from tests.fixtures.clickhouse import enriched


def test_migrate_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = f"chdb://{tmp_path / 'db'}"
    assert main(["migrate", "--dsn", dsn]) == 0
    versions = [m.version for m in MIGRATIONS]
    assert f"schema version {max(versions)}; applied now: {', '.join(map(str, versions))}" in capsys.readouterr().out
    assert main(["migrate", "--dsn", dsn]) == 0
    assert "applied now: none" in capsys.readouterr().out

    with Store.open(dsn) as store:
        tables = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = {db:String}",
                                                  {"db": store.database})}
        assert {"alert_events", "alert_deliveries", "alert_state"} <= tables  # dashboards read them from day one
        store.write_batch([enriched("a", datetime(2026, 11, 9, 12, tzinfo=UTC), topic="IPO")])
    out = tmp_path / "r.html"
    assert main(["report", "--dsn", dsn, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("finmon: 1 document,") and "IPO" in printed and out.is_file()


def test_bad_dsn_exits_with_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--dsn", "ftp://nowhere"]) == 2
