"""`finmon dashboards check` against an empty ClickHouse: every query is valid SQL returning the panel's columns
(read from ClickHouse's DESCRIBE when there are no rows), and a missing table is reported, not hidden."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts import history
from dashboards.check import Checker
from dashboards.settings import GrafanaSettings
from finmon.cli import main
from ingest.store import Store


def test_every_query_is_valid_on_an_empty_store(store: Store) -> None:
    history.migrate(store)
    end = datetime.now(UTC)
    runs = Checker(store, GrafanaSettings(), end - timedelta(hours=6), end).run()
    assert len(runs) > 60
    assert [r for r in runs if r.error or r.columns != r.expected] == []
    totals = [r for r in runs if r.panel in ("Documents", "Open alerts")]
    assert totals and all(r.rows == 1 for r in totals)  # aggregates without GROUP BY answer one row (0)


def test_cli_check_fails_until_every_table_exists(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    dsn = f"chdb://{tmp_path / 'chdb'}"
    with Store.open(dsn, "finmon") as store:
        store.migrate()
    args = ["dashboards", "check", "--dsn", dsn, "--database", "finmon", "--hours", "2"]
    assert main(args) == 1
    assert "alert_events" in caplog.text  # the alert tables are missing: those panels would show errors
    with Store.open(dsn, "finmon") as store:
        history.migrate(store)
    caplog.clear()
    assert main(args) == 0
    assert ", 0 failed," in caplog.text and "no rows in the last 2 h" in caplog.text
