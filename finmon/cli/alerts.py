"""`finmon alerts run|backtest|test-notify`: the alerts area's sub-commands."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    p = sub.add_parser("alerts", help="negative-surge detection and notification")
    alerts = p.add_subparsers(dest="alerts_command", required=True, metavar="ALERTS_COMMAND")

    run = alerts.add_parser("run", help="the always-on alerts worker (idempotent across restarts)")
    _common(run)
    run.add_argument("--since", type=_when, help="first run only: detect from this time (default: latest step)")
    run.add_argument("--until", type=_when, help="process steps up to this time, then deliver and exit")
    run.add_argument("--once", action="store_true", help="one pass (detect, deliver what is due) and exit")
    run.set_defaults(handler=_run)

    bt = alerts.add_parser("backtest", help="precision/recall/false alarms/delay on a labelled benchmark")
    bt.add_argument("--file", type=Path, help="labelled benchmark file (default: the bundled generator)")
    bt.add_argument("--seed", type=int, default=None, help="seed of the bundled generator")
    bt.add_argument("--write", type=Path, help="write the bundled benchmark to this labelled file and exit")
    bt.add_argument("--json", type=Path, help="also write the metrics as JSON to this file")
    bt.set_defaults(handler=_backtest)

    tn = alerts.add_parser("test-notify", help="send a test message to one channel of the rules")
    tn.add_argument("channel", help="channel name in the rules file")
    tn.add_argument("--rules", type=Path, default=None, help="routing YAML (default: FINMON_ALERTS_RULES)")
    tn.set_defaults(handler=_test_notify)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", type=Path, default=None, help="routing YAML (default: FINMON_ALERTS_RULES)")
    p.add_argument("--dsn", default=None, help="ClickHouse DSN (default: FINMON_ALERTS_CLICKHOUSE_DSN)")
    p.add_argument("--database", default=None, help="database (default: FINMON_ALERTS_CLICKHOUSE_DATABASE)")


def _when(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _rules(path: Path | None):  # -> Rules
    from alerts import rules
    from alerts.settings import alerts_settings

    path = path or alerts_settings().rules
    return rules.load(path) if path else rules.console_rules()


def _run(args: argparse.Namespace) -> int:
    from alerts.delivery import drain
    from alerts.runner import Runner
    from alerts.settings import alerts_settings
    from ingest.store import Store

    settings = alerts_settings()
    rules = _rules(args.rules)
    with Store.connect(settings, args.dsn, args.database) as store:
        runner = Runner(store, rules, settings)
        if args.once or args.until:
            events = runner.detect(args.until or datetime.now(UTC), args.since)
            counts = drain(store, rules, settings, max_wait=settings.send_timeout_seconds)
            print(f"{len(events)} new events; deliveries: {counts}")
            return 0
        runner.run_forever(args.since)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from alerts import backtest, benchmark

    if args.write:
        benchmark.save(benchmark.generate(**({"seed": args.seed} if args.seed is not None else {})), args.write)
        print(f"wrote {args.write}")
        return 0
    if args.file:
        bench = benchmark.load(args.file)
    else:
        bench = benchmark.generate(**({"seed": args.seed} if args.seed is not None else {}))
    result = backtest.run(bench)
    print(f"benchmark: {len(bench.streams)} streams, {bench.days} scored days after {bench.warmup_days} days "
          f"of warm-up, {bench.step_minutes}-minute windows")
    for name, value in result.as_dict().items():
        print(f"  {name:32s} {value:.3f}" if isinstance(value, float) else f"  {name:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


def _test_notify(args: argparse.Namespace) -> int:
    from alerts.detection import Severity
    from alerts.errors import RulesError
    from alerts.message import Evidence, Headline, compose
    from alerts.notifiers import sender
    from alerts.settings import alerts_settings
    from alerts.tracker import FIRING, Event, Subject

    rules = _rules(args.rules)
    channel = rules.channels.get(args.channel)
    if channel is None:
        raise RulesError(f"no channel {args.channel!r} in the rules (have: {', '.join(rules.channels)})")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    event = Event(Subject("topic", "Markets"), FIRING, Severity.WARNING, now, now,
                  {"window_minutes": 15, "docs": 40, "negatives": 24, "share": 0.6, "expected_share": 0.2,
                   "expected_negatives": 8, "ratio": 3.0, "count_ratio": 3.0, "pvalue": 1e-9})
    evidence = Evidence((Headline("finmon test notification: please ignore", "https://example.com/finmon"),), ())
    message = compose([(event, evidence)], alerts_settings().grafana_url)
    settings = alerts_settings()
    sender(channel)(channel, message, f"test-{now:%Y%m%d%H%M}", settings.send_timeout_seconds)
    print(f"sent a test message to {channel.name} ({channel.type})")
    return 0
