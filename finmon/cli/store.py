"""`finmon` sub-commands of the store area (ClickHouse migrations and queries)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
