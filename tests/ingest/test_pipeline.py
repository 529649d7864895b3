"""The transport-agnostic pipeline on a real embedded ClickHouse, with a deterministic in-test predictor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Backpressure, Message, Outcome, Pipeline
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, ENTITY_MENTIONS, PREDICTIONS, Store
from tests.ingest.doubles import FlakyStore, RulePredictor

NOW = datetime.now(UTC).replace(microsecond=0)


def raw(doc_id: str, text: str, **fields: object) -> bytes:
    doc = {"schema_version": 1, "id": doc_id, "source": "wire", "kind": "news",
           "published_at": (NOW - timedelta(hours=1)).isoformat(), "text": text}
    doc.update(fields)
    return json.dumps(doc).encode()


class Feeder:
    """Numbers messages like a Kafka partition does."""

    def __init__(self, pipeline: Pipeline, topic: str = "news.raw") -> None:
        self.pipeline, self.topic, self.offset = pipeline, topic, 0

    async def __call__(self, value: bytes) -> tuple[Message, object]:
        message = Message(value, self.topic, 0, self.offset)
        self.offset += 1
        return message, await self.pipeline.feed(message)


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings(batch_size=4, batch_timeout_s=0.05, max_message_bytes=4096, max_text_chars=500)


@pytest.fixture
def parts(store: Store, settings: IngestSettings):
    predictor, letters = RulePredictor(), ListDeadLetters()
    metrics = IngestMetrics(CollectorRegistry())
    flaky = FlakyStore(store)
    pipeline = Pipeline(predictor, flaky, letters, settings, metrics)
    return pipeline, predictor, letters, flaky, metrics


def stored_ids(store: Store) -> list[str]:
    return [r["doc_id"] for r in store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL ORDER BY doc_id")]


async def test_valid_documents_are_normalised_predicted_and_stored(parts, store: Store) -> None:
    pipeline, predictor, letters, _, metrics = parts
    feed = Feeder(pipeline)
    _, first = await feed(raw("a", "<p>Shares of  Acme fell</p><script>x()</script> after <b>results</b>"))
    assert first is None and pipeline.pending == 1
    for i in range(3):
        await feed(raw(f"b{i}", f"Globex posted record profit number {i}"))
    assert pipeline.should_flush()  # batch_size 4 reached
    results = await pipeline.flush()
    assert [r.outcome for r in results] == [Outcome.STORED] * 4
    assert pipeline.positions == {("news.raw", 0): 4}
    assert stored_ids(store) == ["a", "b0", "b1", "b2"]
    row = store.query(f"SELECT text FROM {DOCUMENTS} FINAL WHERE doc_id = 'a'")[0]
    assert row["text"] == "Shares of Acme fell after results"
    preds = store.query(f"SELECT doc_id, model_version FROM {PREDICTIONS} FINAL ORDER BY doc_id")
    assert [(p["doc_id"], p["model_version"]) for p in preds] == [(i, "rules-1") for i in ("a", "b0", "b1", "b2")]
    spans = store.query(f"SELECT text, start, end FROM {ENTITY_MENTIONS} FINAL WHERE doc_id = 'a' ORDER BY start")
    assert [(s["text"], row["text"][s["start"]:s["end"]]) for s in spans] == [("Shares", "Shares"), ("Acme", "Acme")]
    assert predictor.calls == [4]
    assert metrics.registry.get_sample_value(
        "finmon_documents_total", {"source": "wire", "kind": "news", "outcome": "stored"}) == 4
    assert letters.letters == []


MALFORMED = {
    "invalid_json": b'{"id": "x", "text": ',
    "not_utf8": b'{"id": "x", "text": "caf\xe9"}',
    "not_an_object": b'["a list"]',
    "missing_field:text": json.dumps({"id": "m", "source": "s", "kind": "news",
                                      "published_at": NOW.isoformat()}).encode(),
    "bad_timestamp": raw("n", "naive time", published_at="2026-11-29T10:00:00"),
    "implausible_timestamp": raw("f", "from the future", published_at="2999-01-01T00:00:00+00:00"),
    "too_large": raw("big", "x" * 5000),
    "text_too_long": raw("long", "word " * 200),
    "invalid_field:kind": raw("k", "wrong kind", kind="tweet"),
    "empty_text": raw("e", "<p>  </p>"),
    "unsupported_schema_version": raw("v", "from the future", schema_version=7),
}


async def test_malformed_input_is_dead_lettered_with_reason_and_origin(parts, store: Store) -> None:
    pipeline, _, letters, _, metrics = parts
    feed = Feeder(pipeline, topic="posts.raw")
    for reason, payload in MALFORMED.items():
        message, result = await feed(payload)
        assert result is not None and result.outcome is Outcome.DEAD_LETTER and result.reason == reason
    await feed(raw("ok", "One good post"))
    await pipeline.flush()
    assert stored_ids(store) == ["ok"]
    assert [(topic, letter.reason) for topic, letter in letters.letters] == [("posts.dlq", r) for r in MALFORMED]
    for offset, (_, letter) in enumerate(letters.letters):
        assert (letter.topic, letter.partition, letter.offset) == ("posts.raw", 0, offset)
        assert letter.payload() == list(MALFORMED.values())[offset]  # byte-exact, also when not UTF-8
    assert pipeline.positions == {("posts.raw", 0): len(MALFORMED) + 1}
    assert metrics.registry.get_sample_value("finmon_dead_letters_total", {"reason": "empty_text"}) == 1


async def test_duplicates_by_id_and_by_content_are_not_stored_twice(parts, store: Store) -> None:
    pipeline, _, _, _, _ = parts
    feed = Feeder(pipeline)
    await feed(raw("a", "Acme beats estimates https://t.co/abc"))
    _, again = await feed(raw("a", "Acme beats estimates https://t.co/abc"))
    _, repost = await feed(raw("b", "ACME beats  estimates https://t.co/xyz"))
    _, later = await feed(raw("c", "Acme beats estimates", published_at=(NOW + timedelta(days=-3)).isoformat()))
    assert (again.outcome, again.reason) == (Outcome.DUPLICATE, "duplicate_id")
    assert (repost.outcome, repost.reason) == (Outcome.DUPLICATE, "duplicate_content")
    assert later is None  # same content outside the 24 h window is news again
    await pipeline.flush()
    assert stored_ids(store) == ["a", "c"]


async def test_partial_batch_flushes_after_the_timeout(parts) -> None:
    pipeline, *_ = parts
    feed = Feeder(pipeline)
    await feed(raw("a", "Lonely document"))
    assert not pipeline.should_flush()
    import asyncio

    await asyncio.sleep(0.06)
    assert pipeline.should_flush()


@pytest.mark.parametrize("failure", ["model", "clickhouse"])
async def test_unavailable_downstream_is_backpressure_and_loses_nothing(parts, store: Store, failure: str) -> None:
    pipeline, predictor, _, flaky, _ = parts
    feed = Feeder(pipeline)
    for i in range(3):
        await feed(raw(f"d{i}", f"Document number {i}"))
    predictor.down, flaky.down = failure == "model", failure == "clickhouse"
    for _ in range(2):
        with pytest.raises(Backpressure) as info:
            await pipeline.flush()
        assert info.value.cause == failure
        assert pipeline.pending == 3 and pipeline.positions == {}  # nothing may be committed
    predictor.down = flaky.down = False
    results = await pipeline.flush()
    assert sorted(r.doc_id for r in results) == ["d0", "d1", "d2"]
    assert stored_ids(store) == ["d0", "d1", "d2"]
    assert pipeline.positions == {("news.raw", 0): 3}
    # predictions made before ClickHouse failed are reused, not recomputed
    assert predictor.calls == [3]


async def test_one_unreadable_text_is_dead_lettered_and_the_rest_stored(parts, store: Store) -> None:
    pipeline, _, letters, _, _ = parts
    feed = Feeder(pipeline)
    for text in ("Fine one", "poison pill", "Fine two"):
        await feed(raw(text.replace(" ", "-"), text))
    results = await pipeline.flush()
    assert sorted((r.outcome.value, r.reason or "") for r in results) == [
        ("dead_letter", "inference_error"), ("stored", ""), ("stored", "")]
    assert stored_ids(store) == ["Fine-one", "Fine-two"]
    assert letters.letters[0][1].offset == 1


async def test_dead_letter_sink_down_means_the_message_is_not_admitted(parts) -> None:
    pipeline, _, letters, _, _ = parts

    async def broken(topic: str, letter: object) -> None:
        raise ConnectionError("broker unreachable")

    working, letters.send = letters.send, broken  # type: ignore[method-assign]
    message = Message(b"not json", "news.raw", 0, 0)
    with pytest.raises(Backpressure):
        await pipeline.feed(message)
    await pipeline.flush()
    assert pipeline.positions == {}
    letters.send = working  # type: ignore[method-assign]
    result = await pipeline.feed(message)
    assert result.outcome is Outcome.DEAD_LETTER
    await pipeline.flush()
    assert pipeline.positions == {("news.raw", 0): 1}


async def test_a_discarded_batch_is_not_a_duplicate_when_redelivered(parts, store: Store) -> None:
    pipeline, *_ = parts
    feed = Feeder(pipeline)
    await feed(raw("a", "Revoked before it was stored"))
    pipeline.discard()
    feed.offset = 0
    _, again = await feed(raw("a", "Revoked before it was stored"))
    assert again is None
    await pipeline.flush()
    assert stored_ids(store) == ["a"]


REFUSE = "CHECK positionCaseInsensitive(text, 'refuse-me') = 0"


@pytest.mark.parametrize("company", [0, 2], ids=["alone", "among-others"])
async def test_a_row_clickhouse_refuses_is_dead_lettered_not_backed_off_on(parts, store: Store, company: int) -> None:
    """A refused document alone in its (timeout) flush must not look like an outage and stall its partition."""
    pipeline, _, letters, _, metrics = parts
    store.command(f"ALTER TABLE {DOCUMENTS} ADD CONSTRAINT refuse {REFUSE}")
    feed = Feeder(pipeline)
    for i in range(company):
        await feed(raw(f"ok{i}", f"Fine document {i}"))
    await feed(raw("bad", "Please refuse-me"))
    results = await pipeline.flush()
    assert sorted((r.outcome.value, r.reason or "") for r in results) == sorted(
        [("dead_letter", "store_refused:VIOLATED_CONSTRAINT")] + [("stored", "")] * company)
    assert stored_ids(store) == [f"ok{i}" for i in range(company)]
    assert pipeline.positions == {("news.raw", 0): company + 1}  # the partition moves on
    (topic, letter), = letters.letters
    assert topic == "news.dlq" and letter.offset == company and "VIOLATED_CONSTRAINT" in letter.error
    assert metrics.registry.get_sample_value("finmon_backpressure_pauses_total", {"cause": "clickhouse"}) is None


async def test_refused_rows_in_a_large_batch_are_found_by_halving(parts, store: Store, monkeypatch) -> None:
    """Two refused documents of 32: both dead-lettered, the 30 others stored, in 19 writes, not 1 + 32."""
    pipeline, _, letters, flaky, _ = parts
    store.command(f"ALTER TABLE {DOCUMENTS} ADD CONSTRAINT refuse {REFUSE}")
    writes: list[int] = []
    write = flaky.write_batch
    monkeypatch.setattr(flaky, "write_batch", lambda docs: (writes.append(len(docs)), write(docs))[1])
    feed = Feeder(pipeline)
    bad = {3, 20}
    for i in range(32):
        await feed(raw(f"d{i:02d}", f"Please refuse-me {i}" if i in bad else f"Fine document {i}"))
    results = await pipeline.flush()
    assert sorted(r.doc_id for r in results if r.outcome is Outcome.STORED) == [
        f"d{i:02d}" for i in range(32) if i not in bad]
    assert stored_ids(store) == [f"d{i:02d}" for i in range(32) if i not in bad]
    assert sorted(letter.offset for _, letter in letters.letters) == sorted(bad)
    assert pipeline.positions == {("news.raw", 0): 32}
    # the batch, its two halves, then two refused parts halved four times (2 writes each): 1 + 2 + 4 * 4
    assert writes[0] == 32 and len(writes) == 19


async def test_a_store_error_that_is_not_the_rows_fault_is_backpressure(parts, store: Store) -> None:
    pipeline, _, letters, _, _ = parts
    feed = Feeder(pipeline)
    await feed(raw("a", "Nothing wrong with me"))
    store.command(f"RENAME TABLE {DOCUMENTS} TO documents_away")  # a missing table: an operator's fault
    with pytest.raises(Backpressure) as info:
        await pipeline.flush()
    assert info.value.cause == "clickhouse" and pipeline.positions == {} and not letters.letters
    store.command(f"RENAME TABLE documents_away TO {DOCUMENTS}")
    await pipeline.flush()
    assert stored_ids(store) == ["a"] and pipeline.positions == {("news.raw", 0): 1}
