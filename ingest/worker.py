"""The Kafka ingest worker: an aiokafka consumer loop around ``Pipeline`` (why not a faust agent: see
docs/streaming.md, "Why the worker drives aiokafka itself").

Guarantees: offsets are committed only after ClickHouse acknowledged the batch (and dead letters were acked by
the broker), so a crash at any point replays at most the uncommitted tail, which the store absorbs (idempotent on
doc_id). When the model or ClickHouse is down every assigned partition is paused, the same batch is retried with
exponential backoff, and consumption resumes when it succeeds. On a rebalance the batch is flushed and committed
before the partitions go; if that is impossible it is discarded uncommitted and the next owner replays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from itertools import zip_longest
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from inference.serving.predictor import Predictor
from ingest.connection import probe_kafka
from ingest.deadletter import KafkaDeadLetters
from ingest.dedup import Deduplicator
from ingest.metrics import IngestMetrics, default_metrics
from ingest.pipeline import Backpressure, DocumentStore, Message, Pipeline
from ingest.settings import IngestSettings, KafkaUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


def _header_bytes(record: object) -> int:
    key, headers = getattr(record, "key", None), getattr(record, "headers", None) or ()
    return len(key or b"") + sum(len(name.encode()) + len(value or b"") for name, value in headers)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._worker._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
        await self._worker._on_assigned(assigned)


class Worker:
    def __init__(
        self,
        settings: IngestSettings,
        predictor: Predictor,
        store: DocumentStore,
        metrics: IngestMetrics | None = None,
        dedup: Deduplicator | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or default_metrics()
        self._predictor, self._store, self._dedup = predictor, store, dedup
        self.consumer: AIOKafkaConsumer | None = None
        self.pipeline: Pipeline | None = None
        self.consuming = False  # for /healthz: started, and not paused by backpressure
        self._committed: dict[tuple[str, int], int] = {}
        self._rebalances = 0  # records fetched before a rebalance are re-fetched from the committed offsets
        self._lock = asyncio.Lock()  # one pipeline operation at a time (consumer loop vs. rebalance listener)

    def ready(self) -> bool:
        return self.consuming

    async def run(self, stop: asyncio.Event, exit_when_idle_s: float | None = None) -> None:
        """Consume until ``stop`` is set (or, with ``exit_when_idle_s``, until caught up and idle that long)."""
        s = self.settings
        await probe_kafka(s)  # fail fast, saying why (refused credentials, untrusted certificate, no broker)
        security = s.kafka_security()
        producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, client_id=f"{s.client_id}-dlq",
                                    acks="all", enable_idempotence=True, **security)
        await _started(producer, s.bootstrap_servers)
        consumer = AIOKafkaConsumer(  # made only now: an unstarted, unclosed one is reported at exit
            bootstrap_servers=s.bootstrap_servers, group_id=s.group_id, client_id=s.client_id,
            enable_auto_commit=False, auto_offset_reset=s.auto_offset_reset, max_poll_records=s.max_poll_records,
            isolation_level="read_committed", **security,
        )
        try:
            await _started(consumer, s.bootstrap_servers)
            self.consumer = consumer
            self.pipeline = Pipeline(self._predictor, self._store, KafkaDeadLetters(producer), s, self.metrics,
                                     self._dedup)
            consumer.subscribe(list(s.topics), listener=_Rebalance(self))
            self.consuming = True
            log.info("consuming %s as group %s from %s", list(s.topics), s.group_id, s.bootstrap_servers)
            await self._loop(stop, exit_when_idle_s)
            await self._retrying(self._flush_and_commit, stop)
        except Backpressure as exc:  # asked to stop during an outage: what is uncommitted is replayed next time
            log.warning("stopping with an unflushed batch (%s); it will be consumed again", exc)
        finally:
            self.consuming = False
            self._log_summary()
            await consumer.stop()
            await producer.stop()

    def _log_summary(self) -> None:
        """What this run did, on stop: stored, de-duplicated, dead-lettered, and the lag it leaves."""
        if self.pipeline is None or self.consumer is None:
            return
        lag = {}
        for tp in self.consumer.assignment():
            end, done = self.consumer.highwater(tp), self._committed.get((tp.topic, tp.partition))
            if end is not None and done is not None:
                lag[f"{tp.topic}[{tp.partition}]"] = max(0, end - done)
        t = self.pipeline.totals
        log.info("worker stopped: %d stored, %d de-duplicated, %d dead-lettered; lag %d (%s)", t["stored"],
                 t["duplicate"], t["dead_letter"], sum(lag.values()),
                 ", ".join(f"{k}={v}" for k, v in sorted(lag.items())) or "no partitions")

    async def _loop(self, stop: asyncio.Event, exit_when_idle_s: float | None) -> None:
        assert self.consumer is not None and self.pipeline is not None
        poll_ms = max(10, int(self.settings.batch_timeout_s * 1000 / 4))
        idle_s = 0.0
        while not stop.is_set():
            before = self._rebalances
            records = await self._fair_poll(poll_ms)
            fetched_in = self._rebalances
            if fetched_in != before:  # the poll straddled a rebalance: which records are current is unknown
                await self._rewind()
                records = []
            fed = 0
            for record in records:
                message = Message(record.value or b"", record.topic, record.partition, record.offset,
                                  _header_bytes(record))
                if not await self._retrying(lambda m=message: self._feed(m, fetched_in), stop):  # type: ignore[misc]
                    await self._rewind()  # a rebalance meanwhile: the rest is read again from the commits
                    break
                fed += 1
                if self.pipeline.should_flush():  # retried on its own: a retry must not feed the message again
                    await self._retrying(self._flush_and_commit, stop)
            if self.pipeline.should_flush() or not self.pipeline.pending:  # an empty flush commits dead letters
                await self._retrying(self._flush_and_commit, stop)
            self._update_lag()
            idle_s = 0.0 if fed else idle_s + poll_ms / 1000
            if exit_when_idle_s is not None and idle_s >= exit_when_idle_s and await self._caught_up():
                log.info("idle for %.1f s with no lag: exiting", idle_s)
                return

    async def _rewind(self) -> None:
        """Read every owned partition again from its committed offset (the reset policy where it has none).

        Records polled but not fed (a rebalance came in between) are otherwise skipped, not re-fetched: the
        consumer's position is already past them, and a later commit would cover them (a lost document).
        """
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            offset = self._committed.get((tp.topic, tp.partition))
            try:
                if offset is not None:
                    self.consumer.seek(tp, offset)
                elif self.settings.auto_offset_reset == "earliest":
                    await self.consumer.seek_to_beginning(tp)
                else:
                    await self.consumer.seek_to_end(tp)
            except IllegalStateError:  # revoked meanwhile: its next owner starts from the commit
                continue

    async def _fair_poll(self, poll_ms: int) -> list[ConsumerRecord]:
        """Up to ``max_poll_records`` records, an equal share from each assigned partition, interleaved.

        aiokafka's ``getmany`` drains the buffered fetch of one partition before it moves to the next, so a
        backlog on news.raw would hold posts.raw back until it was consumed; asking each partition for its share
        and taking them round-robin keeps every topic moving.
        """
        assert self.consumer is not None
        owned = sorted(self.consumer.assignment())
        quota = max(1, self.settings.max_poll_records // max(1, len(owned)))
        shares: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in owned:
            shares.update(await self.consumer.getmany(tp, timeout_ms=0, max_records=quota))
        if not any(shares.values()):  # nothing buffered: wait for the next fetch (keeps the member in the group)
            shares = await self.consumer.getmany(timeout_ms=poll_ms, max_records=quota)
        return [r for round_ in zip_longest(*shares.values()) for r in round_ if r is not None]

    async def _feed(self, message: Message, fetched_in: int) -> bool:
        """Feed one message fetched in the current assignment (False when a rebalance came in between).

        After a rebalance the consumer resumes every partition it (still or newly) owns at the committed offset,
        so the rest of an earlier fetch would be fed twice, even on a partition it kept.

        The lock keeps the rebalance listener, which aiokafka runs in its own task, from flushing the batch while
        a message is being added to it. ``Backpressure`` here means the message was not admitted (dead-letter
        topic down): feeding it again is right. A flush is NOT done here: when it failed, the retry would feed
        the admitted message a second time (counted as a duplicate of itself, a bad one dead-lettered twice).
        """
        assert self.pipeline is not None and self.consumer is not None
        async with self._lock:
            if fetched_in != self._rebalances or TopicPartition(message.topic, message.partition) not in \
                    self.consumer.assignment():
                return False
            await self.pipeline.feed(message)
            return True

    async def _flush_and_commit(self) -> None:
        async with self._lock:
            await self._flush_and_commit_locked()

    async def _flush_and_commit_locked(self) -> None:
        assert self.pipeline is not None and self.consumer is not None
        await self.pipeline.flush()
        await self._commit(self.consumer.assignment())

    async def _commit(self, partitions: set[TopicPartition] | list[TopicPartition]) -> None:
        assert self.pipeline is not None and self.consumer is not None
        owned = {(tp.topic, tp.partition) for tp in partitions}
        offsets = {TopicPartition(*key): offset for key, offset in self.pipeline.positions.items()
                   if key in owned and self._committed.get(key) != offset}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # a rebalance took them: the next owner replays
            log.warning("commit of %d partitions failed (%s); the uncommitted tail will be replayed", len(offsets), exc)
            return
        for tp, offset in offsets.items():
            self._committed[(tp.topic, tp.partition)] = offset

    async def _retrying(self, operation: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T:
        """Run ``operation``; on ``Backpressure`` pause every partition and retry with backoff until it succeeds
        (or ``stop`` is set: then the ``Backpressure`` propagates)."""
        assert self.consumer is not None
        delay = self.settings.backoff_initial_s
        paused = False
        try:
            while True:
                try:
                    return await operation()
                except Backpressure as exc:
                    if stop.is_set():
                        raise
                    if not paused:
                        self.metrics.backpressure_pauses.labels(cause=exc.cause).inc()
                        self.consumer.pause(*self.consumer.assignment())
                        paused, self.consuming = True, False
                    log.warning("backpressure (%s); retrying in %.1f s", exc, delay)
                    # keep polling while paused: it returns nothing but keeps this member in the group
                    await self.consumer.getmany(timeout_ms=int(delay * 1000))
                    delay = min(delay * 2, self.settings.backoff_max_s)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.assignment())
                self.consuming = True
                log.info("resumed consumption")

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        """Start from the group's committed offsets (for the lag gauge; commits are skipped when unchanged).

        The position is set there too: records this worker polled but could not feed while a rebalance took the
        partition away (and gave it back) were never committed, and must be read again, not skipped.
        """
        assert self.consumer is not None
        self._rebalances += 1
        for tp in assigned:
            offset = await self.consumer.committed(tp)
            if offset is not None:
                self._committed[(tp.topic, tp.partition)] = offset
                self.consumer.seek(tp, offset)

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        self._rebalances += 1
        if self.pipeline is None:
            return
        async with self._lock:
            try:
                await self.pipeline.flush()
                await self._commit(revoked)
            except Backpressure as exc:
                log.warning("could not flush before losing %d partitions (%s): the batch will be replayed",
                            len(revoked), exc)
                self.pipeline.discard()
            self.pipeline.release({(tp.topic, tp.partition) for tp in revoked})
        for tp in revoked:
            self._committed.pop((tp.topic, tp.partition), None)
            try:
                self.metrics.consumer_lag.remove(tp.topic, str(tp.partition))
            except KeyError:
                pass

    def _update_lag(self) -> None:
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            done = self._committed.get((tp.topic, tp.partition))
            if end is not None and done is not None:
                self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(max(0, end - done))

    async def _caught_up(self) -> bool:
        """True when nothing fed is uncommitted, every assigned partition was consumed to its end, and the group
        committed every other partition of the topics to its end.

        The last part is for a group: after a member leaves, the one that stays may be idle on its own share for
        a while before the rebalance hands it the leaver's partitions, and exiting then would leave them unread.
        (A partition another member holds keeps an idle worker running until it is drained.)
        """
        assert self.consumer is not None and self.pipeline is not None
        owned = self.consumer.assignment()
        if self.pipeline.pending or any(self._committed.get(key) != offset for key, offset in
                                        self.pipeline.positions.items() if TopicPartition(*key) in owned):
            return False
        for tp in owned:
            end = self.consumer.highwater(tp)
            if end is None or await self.consumer.position(tp) < end:
                return False
        others = [tp for topic in self.settings.topics
                  for tp in (TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic) or ())
                  if tp not in owned]
        ends = await self.consumer.end_offsets(others) if others else {}
        for tp in others:
            committed = await self.consumer.committed(tp)
            if committed is None:  # never committed: its owner starts where the reset policy says
                if self.settings.auto_offset_reset == "latest":
                    continue
                committed = (await self.consumer.beginning_offsets([tp]))[tp]
            if ends[tp] > committed:
                return False
        return True


async def _started(client: AIOKafkaProducer | AIOKafkaConsumer, bootstrap: str) -> None:
    """Start an aiokafka client; if Kafka cannot be reached, close it and raise ONE clear ``KafkaUnavailable``
    (aiokafka's own connection ERROR lines are muted meanwhile: the caller reports the failure once)."""
    library = logging.getLogger("aiokafka")
    level = library.level
    library.setLevel(logging.CRITICAL)
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    finally:
        library.setLevel(level)
