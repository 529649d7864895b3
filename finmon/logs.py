"""Logging, configured once at the entry point. Library code only calls ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import os


def configure(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("FINMON_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("kafka", "aiokafka", "urllib3", "httpx", "faust", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
