"""Logging, configured once at the entry point. Library code only calls ``logging.getLogger(__name__)``.

An ERROR line means something is wrong. A few client libraries log ERROR for conditions they retry themselves
and that are normal on a healthy cluster; those records are re-levelled here (``Relevel``), by logger and
message, so that they neither alarm an operator nor hide a real failure (which surfaces as an exception).
"""

from __future__ import annotations

import logging
import os

# (logger, message template prefix) -> level
RELEVEL = {
    # kafka-python, on the first send to a topic the broker creates on demand: the send then succeeds
    ("kafka.cluster", "Topic %s not found in cluster metadata"): logging.DEBUG,
    # aiokafka, while a fresh broker creates __consumer_offsets: retried until the coordinator is up
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed"): logging.WARNING,
}


class Relevel(logging.Filter):
    """Gives matching records of one logger their honest level (dropping those below the logger's level)."""

    def __init__(self, rules: dict[str, int]) -> None:
        super().__init__()
        self.rules = rules

    def filter(self, record: logging.LogRecord) -> bool:
        for prefix, level in self.rules.items():
            if str(record.msg).startswith(prefix):
                record.levelno, record.levelname = level, logging.getLevelName(level)
                return logging.getLogger(record.name).isEnabledFor(level)
        return True


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
    for noisy in ("kafka", "aiokafka", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_TransientKafkaErrors())
    by_logger: dict[str, dict[str, int]] = {}
    for (name, prefix), lvl in RELEVEL.items():
        by_logger.setdefault(name, {})[prefix] = lvl
    for name, rules in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, Relevel) for f in logger.filters):
            logger.addFilter(Relevel(rules))
