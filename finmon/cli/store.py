"""`finmon` sub-commands of the store area: `finmon migrate` (ClickHouse schema) and `finmon report`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from inference.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    p = sub.add_parser("migrate", help="create or upgrade the ClickHouse schema, alert tables included (idempotent)")
    _store_args(p)
    p.set_defaults(handler=_migrate)

    r = sub.add_parser("report", help="write the HTML report and print the summary of what a store holds")
    _store_args(r)
    r.add_argument("--out", type=Path, default=Path("finmon-report.html"), help="HTML file to write")
    r.set_defaults(handler=_report)


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", default=None,
                   help="chdb:///abs/dir or http(s)://user:pass@host:port (default: FINMON_INGEST_CLICKHOUSE_DSN)")
    p.add_argument("--database", default=None, help="database name (default: FINMON_INGEST_CLICKHOUSE_DATABASE)")


def _open(args: argparse.Namespace):  # -> Store (imported lazily: the CLI starts fast)
    from ingest.settings import ingest_settings
    from ingest.store import Store

    settings = ingest_settings()
    return Store.connect(settings, args.dsn, args.database)


def _migrate(args: argparse.Namespace) -> int:
    from alerts import history

    with _open(args) as store:
        applied = store.migrate()
        history.migrate(store)  # the alert tables that the alerts worker and the dashboards read
        versions = store.applied_versions()
    log.info("schema at version %s (applied now: %s)", max(versions), applied or "none")
    print(f"schema version {max(versions)}; applied now: {', '.join(map(str, applied)) or 'none'}")
    return 0


def _schema(store) -> list[int]:  # store: ingest.store.Store
    from ingest.store import StoreError

    try:
        return store.applied_versions()
    except StoreError:  # no migrations table: nothing was ever migrated here
        return []


def _report(args: argparse.Namespace) -> int:
    from finmon.report import summary_text, write_report

    with _open(args) as store:
        if not _schema(store):
            raise ConfigError(f"{store.dsn} database {store.database} holds no finmon schema: a wrong --dsn or "
                              "--database, or a new store (`finmon migrate` creates the schema)")
        print(summary_text(store))
        path = write_report(store, args.out)
    print(f"report: {path}")
    return 0
