"""The ``finmon`` console script. Each area registers its own sub-commands in a module of this package."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from finmon import __version__, logs
from finmon.cli.failure import EXIT_USER_ERROR, describe

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int | None]


def build_parser() -> argparse.ArgumentParser:
    from finmon.cli import (  # one module per area
        alerts, bench, dashboards, kg, lifecycle, model, monitor, pretraining, store, stream, triton,
    )

    parser = argparse.ArgumentParser(prog="finmon", description="Streaming monitor of financial public opinion.")
    parser.add_argument("--version", action="version", version=f"finmon {__version__}")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING...")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (stream, monitor, store, model, pretraining, lifecycle, triton, alerts, dashboards, kg, bench):
        area.register(sub)
    p = sub.add_parser("settings", help="print every setting (env variable, TOML key, default) as a markdown table")
    p.add_argument("--embed", type=Path, metavar="README", help="rewrite the settings block of this file instead")
    p.set_defaults(handler=_settings)
    return parser


def _settings(args: argparse.Namespace) -> int:
    from finmon.settings import embed, markdown_table

    if args.embed:
        print("updated" if embed(args.embed) else "unchanged", args.embed)
    else:
        print(markdown_table())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    handler: Handler = args.handler
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a user mistake is one clear line and exit 2; anything else is a bug: traceback
        line = describe(exc)
        if line is None:
            raise
        log.debug("%s failed", args.command, exc_info=True)
        log.error("%s: %s", type(exc).__name__, line)  # for log collectors; the line below is for the person
        print(f"finmon {args.command}: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
