"""`finmon dashboards build|push|check`: Grafana dashboards as code."""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inference.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    parser = sub.add_parser("dashboards", help="Grafana dashboards: build the JSON/provisioning, push, check")
    area = parser.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")

    build = area.add_parser("build", help="write dashboards/generated/ (JSON models + provisioning YAML)")
    build.add_argument("--out", type=Path, default=None, help="output folder (default: dashboards/generated)")
    build.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files on disk differ")
    build.set_defaults(handler=_build)

    push = area.add_parser("push", help="create/update the datasources, folder and dashboards via the Grafana API")
    push.add_argument("--url", help="Grafana URL (FINMON_GRAFANA_URL)")
    push.add_argument("--token", help="service-account token (prefer FINMON_GRAFANA_TOKEN or --token-file)")
    push.add_argument("--token-file", type=Path, help="file holding the token (a mounted secret)")
    push.add_argument("--rotate-secrets", action="store_true",
                      help="re-send the ClickHouse password even when Grafana already stores one")
    push.add_argument("--prune", action="store_true", help="delete dashboards in the folder that no longer exist")
    push.set_defaults(handler=_push)

    check = area.add_parser("check", help="run every panel's SQL against ClickHouse, as Grafana would")
    check.add_argument("--dsn", help="ClickHouse DSN (default: the ingest settings' clickhouse_dsn)")
    check.add_argument("--database", help="database (default: the ingest settings' clickhouse_database)")
    check.add_argument("--hours", type=float, default=24.0, help="time range: the last N hours (default 24)")
    check.set_defaults(handler=_check)


def _settings(**overrides: Any) -> Any:
    from dashboards.settings import grafana_settings

    return grafana_settings(**{k: v for k, v in overrides.items() if v is not None})


def _build(args: argparse.Namespace) -> int:
    from dashboards.build import GENERATED, build, drift, write

    out = args.out or GENERATED
    files = build(_settings())
    if args.check:
        changed = drift(files, out)
        for rel in changed:
            log.error("out of date: %s (run `finmon dashboards build`)", out / rel)
        return 1 if changed else 0
    touched = write(files, out)
    log.info("%d files in %s, %d changed", len(files), out, len(touched))
    return 0


def _push(args: argparse.Namespace) -> int:
    from dashboards.build import dashboard_models
    from dashboards.push import connect, push

    token = args.token
    if args.token_file:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {args.token_file}: {exc}") from exc
    settings = _settings(url=args.url, token=token)
    if settings.token is None:
        raise ConfigError("no Grafana token: set FINMON_GRAFANA_TOKEN, --token-file or --token")
    report = push(connect(settings), settings, dashboard_models(settings), rotate_secrets=args.rotate_secrets,
                  prune=args.prune)
    for action in ("created", "updated", "deleted", "unchanged"):
        for name in getattr(report, action):
            log.info("%s: %s", action, name)
    return 0


def _check(args: argparse.Namespace) -> int:
    from dashboards.check import Checker
    from ingest.settings import IngestSettings
    from ingest.store import Store

    ingest = IngestSettings()
    end = datetime.now(UTC)
    with Store.connect(ingest, args.dsn, args.database) as store:
        runs = Checker(store, _settings(), end - timedelta(hours=args.hours), end).run()
    failed = [r for r in runs if r.error or r.columns != r.expected]
    for r in runs:
        if r.error or r.columns != r.expected:
            log.error("%s / %s [%s]: %s", r.dashboard, r.panel, r.state, r.error or f"columns {r.columns}, "
                      f"expected {r.expected}")
        elif not r.rows:
            log.warning("%s / %s [%s]: no rows in the last %g h", r.dashboard, r.panel, r.state, args.hours)
    log.info("%d queries, %d failed, %d empty", len(runs), len(failed), sum(1 for r in runs if not r.rows))
    return 1 if failed else 0
