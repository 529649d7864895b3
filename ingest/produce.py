"""Replay JSONL documents into Kafka (kafka-python): as fast as possible, at a fixed rate, or in real time by
``published_at``.

Each line goes to the news or posts topic by its ``kind``; lines that cannot be routed (not JSON, no kind, not
UTF-8) go to ``fallback_topic`` unchanged, so the worker dead-letters them with a reason instead of them being
lost here. The record key is the document id, so every copy of a document lands on the same partition.
"""

from __future__ import annotations

import gzip
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.settings import IngestSettings, KafkaUnavailable

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    sent: int = 0
    unroutable: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


def read_lines(path: str | Path) -> Iterator[bytes]:
    """Raw lines of a ``.jsonl`` / ``.jsonl.gz`` file (``-`` is stdin), newline removed, bytes kept as they are."""
    if str(path) == "-":
        stream: Any = sys.stdin.buffer
    elif str(path).endswith(".gz"):
        stream = gzip.open(path, "rb")
    else:
        stream = open(path, "rb")  # noqa: SIM115 (closed below)
    try:
        for line in stream:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _route(line: bytes) -> tuple[str | None, bytes | None, datetime | None]:
    """(kind, key, published_at) of a line, each None when it cannot be read."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, None, None
    if not isinstance(data, dict):
        return None, None, None
    key = str(data["id"]).encode() if isinstance(data.get("id"), str | int) else None
    published = None
    if isinstance(data.get("published_at"), str):
        try:
            published = datetime.fromisoformat(data["published_at"])
        except ValueError:
            pass
    kind = data.get("kind") if isinstance(data.get("kind"), str) else None
    return kind, key, published if published and published.tzinfo else None


class Pacer:
    """Sleeps so that sends follow a fixed ``rate`` (messages/s) or the ``published_at`` clock / ``speedup``."""

    def __init__(self, rate: float | None = None, realtime: bool = False, speedup: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._realtime, self._speedup = rate, realtime, speedup
        self._sleep, self._clock = sleep, clock
        self._start: float | None = None
        self._first: datetime | None = None
        self._count = 0

    def wait(self, published_at: datetime | None) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start
        if self._rate:
            due = self._start + self._count / self._rate
        elif self._realtime and published_at is not None:
            self._first = self._first or published_at
            due = self._start + max(0.0, (published_at - self._first).total_seconds()) / self._speedup
        self._count += 1
        if due > now:
            self._sleep(due - now)


def replay(lines: Iterable[bytes], producer: Any, settings: IngestSettings, pacer: Pacer | None = None,
           fallback_topic: str | None = None) -> ReplayStats:
    """Send every line; returns once the broker acknowledged all of them (``producer.flush()``)."""
    topics = {"news": settings.news_topic, "post": settings.posts_topic}
    fallback = fallback_topic or settings.news_topic
    stats = ReplayStats()
    for line in lines:
        kind, key, published = _route(line)
        topic = topics.get(kind or "")
        if topic is None:
            topic, stats.unroutable = fallback, stats.unroutable + 1
        if pacer:
            pacer.wait(published)
        producer.send(topic, value=line, key=key)
        stats.sent += 1
        stats.per_topic[topic] = stats.per_topic.get(topic, 0) + 1
    producer.flush()
    log.info("sent %d messages (%d unroutable, sent to %s): %s", stats.sent, stats.unroutable, fallback,
             stats.per_topic)
    return stats


def kafka_producer(settings: IngestSettings) -> Any:
    """A kafka-python producer that waits for all in-sync replicas."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from ingest.connection import probe_kafka_sync

    probe_kafka_sync(settings)  # a refused password fails here at once, with the broker's reason
    try:
        return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.client_id}-producer",
                             acks="all", linger_ms=20, **settings.kafka_security())
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
