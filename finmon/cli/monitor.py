"""`finmon run`: the whole monitor in one always-on process (see ``finmon.monitor``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from inference.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    p = sub.add_parser("run", help="the whole monitor in one process: feeds and/or Kafka -> model -> store -> "
                                   "alerts -> notifiers, with /metrics and /healthz")
    p.add_argument("--rss", nargs="+", default=[], metavar="URL", help="RSS/Atom feeds to poll")
    p.add_argument("--json", nargs="+", default=[], metavar="URL", help="JSON APIs to poll (see --items-path)")
    p.add_argument("--items-path", default="items", help="json: dotted path to the list of items")
    p.add_argument("--doc-kind", choices=("news", "post"), default="news", help="kind of the polled documents")
    p.add_argument("--interval", type=float, default=300.0, help="seconds between polls of one URL")
    p.add_argument("--politeness", type=float, default=1.0, help="minimum seconds between requests to one host")
    p.add_argument("--kafka", action="store_true", help="also consume the raw topics (FINMON_INGEST_*)")
    p.add_argument("--rules", type=Path, default=None, help="routing YAML (default: FINMON_ALERTS_RULES; console)")
    p.add_argument("--since", type=_when, help="first run only: detect alerts from this time (default: now)")
    p.add_argument("--dsn", default=None, help="ClickHouse DSN (default: FINMON_INGEST_CLICKHOUSE_DSN)")
    p.add_argument("--dir", type=Path, default=None,
                   help="feed state and dead letters (default: $FINMON_HOME/run)")
    p.add_argument("--metrics-port", type=int, help="override FINMON_INGEST_METRICS_PORT (0 disables)")
    p.set_defaults(handler=_run)


def _when(text: str):  # -> datetime
    from finmon.cli.alerts import _when as parse

    return parse(text)


def _run(args: argparse.Namespace) -> int:
    from alerts.runner import Runner
    from alerts.settings import alerts_settings
    from finmon.cli.alerts import _rules
    from finmon.cli.stream import checked_urls
    from finmon.monitor import Monitor, state_path
    from inference.serving.predictor import load_predictor
    from inference.settings import DEFAULT_HOME
    from ingest.metrics import MetricsServer
    from ingest.settings import ingest_settings
    from ingest.sources import JsonSource, Politeness, RssSource
    from ingest.store import Store

    if not (args.rss or args.json or args.kafka):
        raise ConfigError("nothing to monitor: give --rss URL..., --json URL... and/or --kafka")
    checked_urls(args.rss + args.json)
    overrides = {"metrics_port": args.metrics_port} if args.metrics_port is not None else {}
    settings = ingest_settings(**overrides)
    alerts = alerts_settings()
    rules = _rules(args.rules)
    directory = (args.dir or DEFAULT_HOME / "run").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    polite = Politeness(args.politeness)
    common = {"kind": args.doc_kind, "politeness": polite}
    sources = [RssSource(u, state_path=state_path(directory, u), **common) for u in args.rss]
    sources += [JsonSource(u, items_path=args.items_path, state_path=state_path(directory, u), **common)
                for u in args.json]
    log.info("ingest settings: %s", settings.masked())
    with Store.connect(settings, args.dsn) as store:
        store.migrate()
        runner = Runner(store, rules, alerts)  # migrates the alert tables
        monitor = Monitor(store, settings, load_predictor(), runner, sources, directory, args.interval,
                          alerts.poll_seconds, kafka=args.kafka, since=args.since)
        runner.store = monitor.shared  # the runner's calls go through the same one-at-a-time door
        server = None
        if settings.metrics_port:
            server = MetricsServer(monitor.metrics.registry, monitor.ready, settings.metrics_host,
                                   settings.metrics_port).start()
        try:
            asyncio.run(_until_signal(monitor))
        finally:
            if server:
                server.stop()
    return 0


async def _until_signal(monitor) -> None:  # monitor: finmon.monitor.Monitor
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("finmon run: %d feeds%s; SIGTERM or Ctrl-C stops", len(monitor.sources),
             " + Kafka" if monitor.worker else "")
    await monitor.run(stop)
