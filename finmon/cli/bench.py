"""`finmon bench ...`: registered from ``bench.cli`` (the benchmarks sit above the product they measure)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from bench.cli import register as register_benchmarks

    register_benchmarks(sub)
