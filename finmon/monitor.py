"""`finmon run`: the whole monitor as one always-on process on one machine.

Sources (RSS/Atom and JSON pollers, and/or the Kafka worker) feed the SAME ``ingest.pipeline.Pipeline`` the
separate workers run; the alerts ``Runner`` passes on its schedule; ``/metrics`` and ``/healthz`` are served;
SIGTERM stops it cleanly. An embedded ClickHouse (chdb) admits one process, which is why this is one process.

Nothing is lost and nothing doubles across a stop: a poller marks items seen (and saves its state file) only
after the store acknowledged them; whatever was not stored is polled again on the next start. The store is
idempotent on doc_id, the deduplicator is seeded from it, and the alerts' outbox is exactly-once (alerts.history).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from alerts.errors import AlertsError
from alerts.runner import Runner
from inference.serving.predictor import Predictor
from ingest.deadletter import FileDeadLetters
from ingest.dedup import Deduplicator, seed_from_store
from ingest.metrics import default_metrics
from ingest.pipeline import Backpressure, Message, Pipeline
from ingest.settings import IngestSettings
from ingest.sources import HttpSource
from ingest.store import Store, StoreError
from ingest.worker import Worker

log = logging.getLogger(__name__)
FEEDS_TOPIC = "feeds.raw"  # the "topic" polled documents are attributed to (partition = the source's index)


class SerialStore:
    """A Store shared by the pollers, the Kafka worker and the alerts runner: one call at a time (a Store is not
    safe for concurrent use, and each stage calls it from its own worker thread)."""

    def __init__(self, store: Store) -> None:
        self._store, self._lock = store, threading.Lock()

    def write_batch(self, docs: Sequence[Any]) -> None:
        with self._lock:
            self._store.write_batch(docs)

    def query(self, sql: str, parameters: Any = None) -> list[dict[str, Any]]:
        with self._lock:
            return self._store.query(sql, parameters)

    def command(self, sql: str, parameters: Any = None) -> Any:
        with self._lock:
            return self._store.command(sql, parameters)

    def __getattr__(self, name: str) -> Any:  # database, dsn, ping...
        return getattr(self._store, name)


@dataclass
class FeedPoller:
    """Polls every source each ``interval_s`` into ``pipeline``; an item counts as seen once it is stored."""

    sources: list[HttpSource]
    pipeline: Pipeline
    settings: IngestSettings
    interval_s: float

    def __post_init__(self) -> None:
        self.polls = 0
        self._offsets = [0] * len(self.sources)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for index, source in enumerate(self.sources):
                if stop.is_set():
                    break
                await self._poll(index, source, stop)
            self.polls += 1
            if self.polls == 1:
                log.info("feeds: first round polled (%d sources)", len(self.sources))
            await _sleep(stop, self.interval_s)

    async def _poll(self, index: int, source: HttpSource, stop: asyncio.Event) -> None:
        try:
            docs = await asyncio.to_thread(source.poll)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("polling %s failed: %s", source.url, exc)
            return
        for doc in docs:
            message = Message(doc.to_json().encode("utf-8"), FEEDS_TOPIC, index, self._offsets[index])
            self._offsets[index] += 1
            await self.pipeline.feed(message)
            if self.pipeline.should_flush() and not await self._flush(stop):
                return
        if not await self._flush(stop):
            return  # stopped during an outage: nothing is marked seen, the next start polls these again
        await asyncio.to_thread(source.mark_seen, docs)
        if docs:
            log.info("%s: %d new documents", source.url, len(docs))

    async def _flush(self, stop: asyncio.Event) -> bool:
        """Flush the batch, backing off while the model or the store is down; False when stopped meanwhile."""
        delay = self.settings.backoff_initial_s
        while True:
            try:
                await self.pipeline.flush()
                return True
            except Backpressure as exc:
                if stop.is_set():
                    log.warning("stopping with an unstored batch (%s); it will be polled again", exc)
                    return False
                log.warning("backpressure (%s); retrying in %.1f s", exc, delay)
                await _sleep(stop, delay)
                delay = min(delay * 2, self.settings.backoff_max_s)


async def run_alerts(runner: Runner, stop: asyncio.Event, poll_s: float, since: datetime | None = None) -> None:
    """The alerts runner's passes on its schedule (``Runner.run_forever``'s loop, stoppable)."""
    log.info("alerts: step %d min, a pass every %.0f s", runner.config.step_minutes, poll_s)
    passes = 0
    while not stop.is_set():
        try:
            events = await asyncio.to_thread(runner.step, None, since)
            passes += 1
            if passes == 1:
                log.info("alerts: first pass done")
            if events:
                log.info("alerts pass: %d new events", len(events))
        except (AlertsError, StoreError) as exc:  # ClickHouse down, bad rules at send time...: retry later
            log.error("alerts pass failed, retrying in %.0f s: %s", poll_s, exc)
        await _sleep(stop, poll_s)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def state_path(directory: Path, url: str) -> Path:
    """Where one source keeps its validators and seen ids across restarts."""
    return directory / f"feed-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


@dataclass
class Monitor:
    """The stages of one process around one store; ``run`` until ``stop`` is set."""

    store: Store
    settings: IngestSettings
    predictor: Predictor
    runner: Runner
    sources: list[HttpSource]
    directory: Path
    poll_interval_s: float
    alerts_poll_s: float
    kafka: bool = False
    since: datetime | None = None

    def __post_init__(self) -> None:
        self.metrics = default_metrics()
        self.shared = SerialStore(self.store)
        self.dedup = Deduplicator(self.settings.dedup_window_s, self.settings.dedup_max_entries)
        seeded = seed_from_store(self.dedup, self.store, self.settings.dedup_window_s,
                                 self.settings.dedup_max_entries)
        log.info("dedup seeded with %d recently stored documents", seeded)
        pipeline = Pipeline(self.predictor, self.shared, FileDeadLetters(self.directory / "dead_letters.jsonl"),
                            self.settings, self.metrics, self.dedup)
        self.poller = FeedPoller(self.sources, pipeline, self.settings, self.poll_interval_s)
        self.worker = Worker(self.settings, self.predictor, self.shared, self.metrics, self.dedup) if self.kafka \
            else None
        self.running = False

    def ready(self) -> bool:
        return self.running and (self.worker is None or self.worker.ready())

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(run_alerts(self.runner, stop, self.alerts_poll_s, self.since), name="alerts")]
        if self.sources:
            tasks.append(asyncio.create_task(self.poller.run(stop), name="feeds"))
        if self.worker is not None:
            tasks.append(asyncio.create_task(self.worker.run(stop), name="kafka"))
        self.running = True
        try:
            for done in asyncio.as_completed(tasks):
                await done  # a stage that fails (Kafka unreachable...) stops the others
                if not stop.is_set():
                    stop.set()
        finally:
            self.running = False
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            o = self.poller.pipeline.totals
            log.info("stopped: feeds %d stored, %d duplicates, %d dead-lettered", o["stored"], o["duplicate"],
                     o["dead_letter"])
