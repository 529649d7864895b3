"""The transport-agnostic ingest pipeline: validate -> normalise -> dedup -> micro-batch -> predict -> store.

The Kafka worker and the in-process demo drive the same ``Pipeline``; only where messages come from and how
progress is committed differ. The contract with a driver:

- ``await feed(message)`` admits one message. Bad input is dead-lettered at once (reason + source
  topic/partition/offset) and duplicates are resolved at once; both return a ``Result``. A valid document waits in
  the micro-batch (returns None). Per-message errors never escape, except ``Backpressure`` when the dead-letter
  sink itself is down: then the message was NOT admitted and the driver feeds it again later.
- ``should_flush()`` says when the batch is full or its oldest message has waited ``batch_timeout_s``.
- ``await flush()`` predicts and stores the batch. On success every message fed so far is resolved and
  ``positions`` (next offset per topic/partition) may be committed. When the model or ClickHouse is unavailable
  it raises ``Backpressure`` and keeps the batch (and any predictions made) for the next ``flush()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from inference.errors import FinmonError, InferenceError, ModelUnavailable
from inference.decoding.prediction import Prediction
from inference.serving.predictor import Predictor
from ingest.dedup import Deduplicator
from ingest.metrics import IngestMetrics, default_metrics
from ingest.normalise import content_hash
from ingest.records import DeadLetter, EnrichedDocument, RawDocument, RecordError
from ingest.settings import IngestSettings
from ingest.stories import StoryGrouper, StoryLookup
from ingest.store import StoreError, StoreRefused
from ingest.validation import Validator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    """One raw payload and where it came from (a Kafka record, or a line of a replayed file)."""

    value: bytes
    topic: str
    partition: int
    offset: int
    header_bytes: int = 0  # size of the Kafka record's key and headers (bounded by max_header_bytes)


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Result:
    message: Message
    outcome: Outcome
    doc_id: str | None = None
    reason: str | None = None


class DeadLetterSink(Protocol):
    async def send(self, topic: str, letter: DeadLetter) -> None:
        """Deliver ``letter`` to the dead-letter ``topic``; return only once it is durable."""
        ...


class DocumentStore(Protocol):
    def write_batch(self, docs: Sequence[EnrichedDocument]) -> None: ...


class Backpressure(FinmonError):
    """A downstream stage (``cause``: model, clickhouse, dead_letter) is unavailable; nothing was lost."""

    def __init__(self, cause: str, error: Exception) -> None:
        super().__init__(f"{cause} unavailable: {error}")
        self.cause = cause


@dataclass(slots=True)
class _Pending:
    message: Message
    doc: RawDocument
    content_hash: str
    prediction: Prediction | None = None


class Pipeline:
    def __init__(
        self,
        predictor: Predictor,
        store: DocumentStore,
        dead_letters: DeadLetterSink,
        settings: IngestSettings,
        metrics: IngestMetrics | None = None,
        dedup: Deduplicator | None = None,
        stories: StoryGrouper | None = None,
    ) -> None:
        self._predictor = predictor
        self._store = store
        self._dead_letters = dead_letters
        self._settings = settings
        self._metrics = metrics or default_metrics()
        self._validator = Validator(settings)
        self.dedup = dedup or Deduplicator(settings.dedup_window_s, settings.dedup_max_entries)
        self._stories = stories or StoryGrouper(store if isinstance(store, StoryLookup) else None)
        self._batch: list[_Pending] = []
        self._oldest = 0.0  # monotonic time the first message of the current batch was admitted
        self._admitted: dict[tuple[str, int], int] = {}
        self._late: list[Result] = []  # dead letters decided during a flush
        self.positions: dict[tuple[str, int], int] = {}  # next offset per (topic, partition), all resolved
        self.totals: Counter[str] = Counter()  # outcomes since start (stored, duplicate, dead_letter): for summaries

    @property
    def pending(self) -> int:
        return len(self._batch)

    def should_flush(self) -> bool:
        if len(self._batch) >= self._settings.batch_size:
            return True
        return bool(self._batch) and time.monotonic() - self._oldest >= self._settings.batch_timeout_s

    async def feed(self, message: Message) -> Result | None:
        try:
            doc = self._validator.parse(message.value, message.header_bytes)
            digest = content_hash(doc.text)
            duplicate = self.dedup.check(doc.id, digest, doc.published_at)
        except RecordError as exc:
            return await self._dead_letter(message, exc.reason, str(exc))
        except Exception as exc:  # a bug must not stop the stream: the message is kept in the dead-letter topic
            log.exception("unexpected error on %s[%d]@%d", message.topic, message.partition, message.offset)
            return await self._dead_letter(message, "internal_error", f"{type(exc).__name__}: {exc}")
        if duplicate is not None:
            self._count(doc, Outcome.DUPLICATE)
            self._admit(message)
            return Result(message, Outcome.DUPLICATE, doc.id, duplicate.value)
        if not self._batch:
            self._oldest = time.monotonic()
        self._batch.append(_Pending(message, doc, digest))
        self._admit(message)
        return None

    async def flush(self) -> list[Result]:
        """Predict and store the current batch; see the module docstring for the contract."""
        batch = self._batch
        if batch:
            await self._predict(batch)
            batch = self._batch  # _predict may have dead-lettered documents the model cannot read
            enriched = await self._group([self._enrich(p) for p in batch])
            await self._write(enriched)
        self._batch = []
        self.positions = dict(self._admitted)
        for p in batch:
            self._count(p.doc, Outcome.STORED)
        results, self._late = self._late, []
        return results + [Result(p.message, Outcome.STORED, p.doc.id) for p in batch]

    def discard(self) -> None:
        """Drop the unflushed batch (its partitions were revoked): it will be redelivered to some consumer."""
        for p in self._batch:
            self.dedup.forget(p.doc.id, p.content_hash)
        self._batch = []
        self._admitted = dict(self.positions)

    def release(self, partitions: set[tuple[str, int]]) -> None:
        """Forget the positions of partitions this consumer no longer owns (their next owner commits them)."""
        for key in partitions:
            self._admitted.pop(key, None)
            self.positions.pop(key, None)

    # -- steps ----------------------------------------------------------------------------------------------------

    async def _predict(self, batch: list[_Pending]) -> None:
        todo = [p for p in batch if p.prediction is None]
        if not todo:
            return
        self._metrics.batch_size.observe(len(todo))
        started = time.perf_counter()
        try:
            predictions = await self._call_model([p.doc.text for p in todo])
        except InferenceError as exc:  # one unreadable text must not poison the batch: find it
            log.warning("batch of %d failed in the model (%s); predicting one by one", len(todo), exc)
            predictions = []
            for p in todo:
                try:
                    predictions.append((await self._call_model([p.doc.text]))[0])
                except ModelUnavailable:
                    raise
                except InferenceError as single:
                    self._late.append(await self._dead_letter(p.message, "inference_error", str(single), p.doc))
                    self._drop(p)
                    predictions.append(None)
            todo = [p for p, pred in zip(todo, predictions, strict=True) if pred is not None]
            predictions = [pred for pred in predictions if pred is not None]
        self._metrics.inference_seconds.observe(time.perf_counter() - started)
        for p, prediction in zip(todo, predictions, strict=True):
            p.prediction = prediction

    async def _call_model(self, texts: list[str]) -> list[Prediction]:
        try:
            predictions = await self._predictor.apredict(texts)
        except ModelUnavailable as exc:
            raise Backpressure("model", exc) from exc
        if len(predictions) != len(texts):
            raise InferenceError(f"the model returned {len(predictions)} predictions for {len(texts)} texts")
        return predictions

    def _enrich(self, p: _Pending) -> EnrichedDocument:
        assert p.prediction is not None
        return EnrichedDocument(doc=p.doc, prediction=p.prediction, content_hash=p.content_hash,
                                ingested_at=datetime.now(UTC))

    async def _group(self, docs: list[EnrichedDocument]) -> list[EnrichedDocument]:
        try:
            return await asyncio.to_thread(self._stories.assign, docs)
        except StoreError as exc:  # the stored story ids could not be read: writing now could change them
            raise Backpressure("clickhouse", exc) from exc

    async def _write(self, docs: list[EnrichedDocument]) -> None:
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._store.write_batch, docs)
        except StoreRefused as exc:
            await self._write_in_halves(docs, exc)
        except StoreError as exc:  # unreachable, or a fault that is not the rows' (missing table, read-only...)
            raise Backpressure("clickhouse", exc) from exc
        self._metrics.insert_seconds.observe(time.perf_counter() - started)

    async def _write_in_halves(self, docs: list[EnrichedDocument], batch_error: StoreRefused) -> None:
        """Find the documents ClickHouse refuses (by the error, not by how many fail: a lone document of a
        timeout flush is refused alone) and dead-letter them; any other error is backpressure.

        A refused batch is split in halves until each refused part is one document: one bad document in a batch
        of n costs about 2·log2(n) inserts instead of n (``write_batch`` is idempotent, so a retried half whose
        rows were partly written before is safe).
        """
        log.warning("ClickHouse refused a batch of %d (%s); writing it in halves to find the refused documents",
                    len(docs), batch_error)
        parts: list[tuple[list[EnrichedDocument], StoreRefused]] = [(docs, batch_error)]
        while parts:
            part, error = parts.pop()
            if len(part) == 1:
                self._late.append(await self._refused(part[0], error))
                continue
            middle = len(part) // 2
            for half in (part[:middle], part[middle:]):
                try:
                    await asyncio.to_thread(self._store.write_batch, half)
                except StoreRefused as exc:
                    parts.append((half, exc))
                except StoreError as exc:
                    raise Backpressure("clickhouse", exc) from exc

    async def _refused(self, doc: EnrichedDocument, error: StoreRefused) -> Result:
        p = next(p for p in self._batch if p.doc.id == doc.doc_id)
        result = await self._dead_letter(p.message, f"store_refused:{error.name or error.code or 'unknown'}",
                                         str(error), p.doc)
        self._drop(p)
        return result

    async def _dead_letter(self, message: Message, reason: str, error: str, doc: RawDocument | None = None) -> Result:
        letter = DeadLetter.for_payload(message.value, reason=reason, error=error, topic=message.topic,
                                        partition=message.partition, offset=message.offset)
        try:
            await self._dead_letters.send(self._settings.dlq_topic(message.topic), letter)
        except Exception as exc:
            raise Backpressure("dead_letter", exc) from exc
        log.info("dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
        self._metrics.dead_letters.labels(reason=reason).inc()
        self.totals[Outcome.DEAD_LETTER.value] += 1
        source, kind = (doc.source, doc.kind) if doc else ("unknown", "unknown")
        self._metrics.documents.labels(source=source, kind=kind, outcome=Outcome.DEAD_LETTER.value).inc()
        self._admit(message)
        return Result(message, Outcome.DEAD_LETTER, None, reason)

    def _drop(self, p: _Pending) -> None:
        """Take a dead-lettered document out of the batch; a corrected resend of it is then not a duplicate."""
        self._batch.remove(p)
        self.dedup.forget(p.doc.id, p.content_hash)

    def _admit(self, message: Message) -> None:
        key = (message.topic, message.partition)
        self._admitted[key] = max(self._admitted.get(key, 0), message.offset + 1)

    def _count(self, doc: RawDocument, outcome: Outcome) -> None:
        self.totals[outcome.value] += 1
        self._metrics.documents.labels(source=doc.source, kind=doc.kind, outcome=outcome.value).inc()
