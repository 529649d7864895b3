"""``python -m bench <benchmark> ...``: the same as ``finmon bench <benchmark> ...``."""

from __future__ import annotations

import argparse
import sys

from bench.cli import register
from finmon import logs


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m")  # sub-command "bench": usage reads "python -m bench ..."
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *sys.argv[1:]])
    logs.configure(None)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
