"""Logging, configured once at the entry point. Library code only calls ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import os


class _TransientKafkaErrors(logging.Filter):
    """aiokafka logs at ERROR what it retries by itself, e.g. no group coordinator yet on a fresh cluster (the
    offsets topic is being created): that is a WARNING, so that an ERROR line keeps meaning something is wrong."""

    TRANSIENT = ("GroupCoordinatorNotAvailableError", "NotCoordinatorError", "CoordinatorLoadInProgressError")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and any(t in record.getMessage() for t in self.TRANSIENT):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("FINMON_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("kafka", "aiokafka", "urllib3", "httpx", "faust", "mode"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_TransientKafkaErrors())
