"""`finmon` sub-commands of the stream area: produce, worker, poll, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from urllib.parse import urlsplit

from inference.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    p = sub.add_parser("produce", help="replay a JSONL(.gz) file of documents into Kafka")
    p.add_argument("file", help="JSONL or JSONL.gz file, '-' for stdin")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="messages per second (default: as fast as possible)")
    pace.add_argument("--realtime", action="store_true", help="follow the documents' published_at clock")
    p.add_argument("--speedup", type=float, default=1.0, help="with --realtime: play this many times faster")
    p.add_argument("--fallback-topic", help="topic for lines without a valid kind (default: the news topic)")
    p.set_defaults(handler=_produce)

    w = sub.add_parser("worker", help="consume the raw topics, predict, store in ClickHouse (FINMON_INGEST_*)")
    w.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                   help="exit once caught up (no lag) and idle this long (batch catch-up runs, tests)")
    w.add_argument("--metrics-port", type=int, help="override FINMON_INGEST_METRICS_PORT (0 disables)")
    w.set_defaults(handler=_worker)

    q = sub.add_parser("poll", help="poll RSS/Atom feeds or JSON APIs and send new items to Kafka")
    q.add_argument("kind", choices=("rss", "json"), help="rss: RSS/Atom feed; json: JSON-over-HTTP API")
    q.add_argument("urls", nargs="+")
    q.add_argument("--source", help="source name stored with each document (default: the URL's host)")
    q.add_argument("--doc-kind", choices=("news", "post"), default="news")
    q.add_argument("--interval", type=float, default=300.0, help="seconds between polls of one URL")
    q.add_argument("--once", action="store_true", help="poll each URL once and exit")
    q.add_argument("--items-path", default="items", help="json: dotted path to the list of items")
    q.add_argument("--politeness", type=float, default=1.0, help="minimum seconds between requests to one host")
    q.set_defaults(handler=_poll)

    d = sub.add_parser("demo", help="replay the bundled stream in-process into an embedded ClickHouse + report")
    d.add_argument("--dir", type=Path, help="working directory (default: $FINMON_HOME/demo)")
    d.add_argument("--input", type=Path, help="JSONL(.gz) stream to replay instead of the bundled one")
    d.add_argument("--limit", type=int, help="replay only the first N lines")
    d.add_argument("--keep", action="store_true", help="reuse the existing demo database instead of wiping it")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(handler=_demo)


def checked_urls(urls: list[str]) -> list[str]:
    """The URLs to poll, refused at once (before any connection is made) when one is not http(s)."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"not an http(s) URL: {url!r}")
    return urls


def _produce(args: argparse.Namespace) -> int:
    from ingest.produce import Pacer, kafka_producer, read_lines, replay
    from ingest.settings import ingest_settings

    if args.file != "-" and not Path(args.file).is_file():
        raise ConfigError(f"no such file: {args.file}")
    settings = ingest_settings()
    producer = kafka_producer(settings)
    try:
        pacer = Pacer(rate=args.rate, realtime=args.realtime, speedup=args.speedup)
        stats = replay(read_lines(args.file), producer, settings, pacer, args.fallback_topic)
    finally:
        producer.close()
    log.info("produced %d messages to %s", stats.sent, settings.bootstrap_servers)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from inference.serving.predictor import load_predictor
    from ingest.dedup import Deduplicator, seed_from_store
    from ingest.metrics import MetricsServer, default_metrics
    from ingest.settings import ingest_settings
    from ingest.store import Store
    from ingest.worker import Worker

    settings = ingest_settings(**({} if args.metrics_port is None else {"metrics_port": args.metrics_port}))
    log.info("ingest settings: %s", settings.masked())  # as in force: --metrics-port included
    port = settings.metrics_port
    store = Store.connect(settings)
    try:
        store.migrate()
        dedup = Deduplicator(settings.dedup_window_s, settings.dedup_max_entries)
        seeded = seed_from_store(dedup, store, settings.dedup_window_s, settings.dedup_max_entries)
        log.info("dedup seeded with %d recently stored documents", seeded)
        predictor = load_predictor()
        metrics = default_metrics()
        worker = Worker(settings, predictor, store, metrics, dedup)
        server = MetricsServer(metrics.registry, worker.ready, settings.metrics_host, port).start() if port else None
        try:
            asyncio.run(_run_until_signal(worker, args.exit_when_idle))
        finally:
            if server:
                server.stop()
    finally:
        store.close()
    return 0


async def _run_until_signal(worker: object, exit_when_idle: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.run(stop, exit_when_idle)  # type: ignore[attr-defined]


def _poll(args: argparse.Namespace) -> int:
    from ingest.produce import kafka_producer
    from ingest.settings import ingest_settings
    from ingest.sources import JsonSource, Politeness, RssSource, run_pollers

    urls = checked_urls(args.urls)
    settings = ingest_settings()
    producer = kafka_producer(settings)
    topic = settings.news_topic if args.doc_kind == "news" else settings.posts_topic
    polite = Politeness(args.politeness)  # one per run: URLs of one host share its delay
    if args.kind == "rss":
        sources = [RssSource(u, source=args.source, kind=args.doc_kind, politeness=polite) for u in urls]
    else:
        sources = [JsonSource(u, source=args.source, kind=args.doc_kind, items_path=args.items_path,
                              politeness=polite) for u in urls]
    try:
        sent = run_pollers(sources, producer, topic, interval_s=args.interval, once=args.once)
    finally:
        producer.close()
    log.info("sent %d new documents to %s", sent, topic)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from finmon.demo import run_demo

    return run_demo(directory=args.dir, stream=args.input, limit=args.limit, keep=args.keep,
                    progress=not args.no_progress)
