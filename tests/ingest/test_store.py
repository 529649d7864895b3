"""The ClickHouse store on embedded chdb (or CLICKHOUSE_URL): migrations, idempotent writes, exact aggregates."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from inference.labels import ENTITY_TYPES, SENTIMENTS
from inference.decoding.prediction import EntitySpan
from ingest import queries
from ingest.schema import MIGRATIONS
from ingest.store import (
    DOCUMENTS,
    ENTITY_MENTIONS,
    PREDICTION_WRITES,
    PREDICTIONS,
    Store,
    StoreError,
    StoreRefused,
    TICKER,
    StoreUnavailable,
    entity_key,
)
from tests.fixtures.clickhouse import ChdbHttpFront, enriched

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["chdb", "http"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """The same tests on embedded chdb and over clickhouse-connect's HTTP client (test-only chdb HTTP front)."""
    return request.getfixturevalue("store" if request.param == "chdb" else "http_store")


def _corpus(n: int = 300, seed: int = 7) -> list:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        ents = rng.sample([("Apple", "ORG", "AAPL"), ("$AAPL", "TICKER", "AAPL"), ("Fed", "ORG", None),
                           ("$TSLA", "TICKER", None), ("Powell", "PER", None)], k=rng.randint(0, 3))
        docs.append(enriched(
            f"d{i}", T0 + timedelta(seconds=rng.randint(0, 3 * 3600)), topic=rng.choice(["Markets", "Macro", "IPO"]),
            sentiment=rng.choice(SENTIMENTS), source=rng.choice(["twitter", "newswire"]),
            kind=rng.choice(["news", "post"]), entities=tuple(ents),
        ))
    return docs


def _all_answers(store: Store) -> dict:
    """Every read a dashboard or an alert makes, over several ranges and bucket sizes."""
    mid = T0 + timedelta(minutes=77)
    return {
        "topic_min": queries.topic_counts(store),
        "topic_hour_src": queries.topic_counts(store, T0, mid, bucket_seconds=3600, by_source=True),
        "topic_tot": queries.topic_counts(store, bucket_seconds=None, topics=["Macro"]),
        "entity_min": queries.entity_counts(store),
        "entity_tot": queries.entity_counts(store, mid, None, bucket_seconds=None),
        "top": queries.top_entities(store, limit=10),
        "count": queries.document_count(store),
        "count_range": queries.document_count(store, T0, mid),
        "examples": queries.example_documents(store, topic="Macro", sentiment="negative", limit=50),
        "examples_entity": [r["doc_id"] for r in queries.example_documents(store, entity_key="AAPL", limit=500)],
        "raw": store.query(f"SELECT count() AS n FROM {PREDICTIONS} FINAL")[0]["n"],
    }


def test_migrate_is_versioned_and_idempotent(any_store: Store) -> None:
    store = any_store
    assert store.migrate() == []  # the fixture already applied everything
    assert store.applied_versions() == [m.version for m in MIGRATIONS]
    tables = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = {db:String}",
                                             {"db": store.database})}
    assert {DOCUMENTS, PREDICTIONS, ENTITY_MENTIONS, "topic_sentiment_minute", "entity_sentiment_minute"} <= tables


def test_replays_in_different_batch_splits_never_double_count(any_store: Store) -> None:
    store = any_store
    docs = _corpus()
    store.write_batch(docs[:100])
    store.write_batch(docs[100:])
    once = _all_answers(store)
    assert once["count"] == once["raw"] == len(docs)
    assert sum(r["docs"] for r in once["topic_min"]) == len(docs)

    # at-least-once delivery: the same documents again, split differently, shuffled, with duplicates in a batch
    rng = random.Random(1)
    replay = docs[50:250] + docs[:20]
    rng.shuffle(replay)
    for i in range(0, len(replay), 37):
        store.write_batch(replay[i:i + 37] + replay[i:i + 3])
    # the replays really reached ClickHouse (the unmerged base table holds the copies) ...
    assert store.query(f"SELECT count() AS n FROM {DOCUMENTS}")[0]["n"] > len(docs)
    # ... but predictions stored before are not written again (the first prediction wins) ...
    assert store.query(f"SELECT count() AS n FROM {PREDICTION_WRITES}")[0]["n"] == len(docs)
    # ... and no answer changed
    assert _all_answers(store) == once
    store.command(f"OPTIMIZE TABLE {PREDICTIONS} FINAL")  # merges must not change answers either
    assert _all_answers(store) == once


def _flipped(d):
    """The same document re-predicted differently (another model version after a crash): other labels."""
    p = d.prediction
    topic = {"Markets": "Macro", "Macro": "IPO", "IPO": "Markets"}[p.topic]
    sentiment = SENTIMENTS[(SENTIMENTS.index(p.sentiment) + 1) % len(SENTIMENTS)]
    ents = tuple((e.text, e.label, e.company_id) for e in p.entities)
    return enriched(d.doc.id, d.doc.published_at, topic=topic, sentiment=sentiment, source=d.doc.source,
                    kind=d.doc.kind, entities=ents, model_version="test-2", text=d.doc.text)


def _labels_counted(store: Store) -> tuple[dict, dict]:
    topics = {(r["topic"], r["sentiment"]): r["docs"] for r in queries.topic_counts(store, bucket_seconds=None)}
    entities = {(r["entity_key"], r["sentiment"]): r["docs"] for r in queries.entity_counts(store, bucket_seconds=None)}
    return topics, entities


def _expected_labels(docs: list) -> tuple[dict, dict]:
    topics: dict = {}
    entities: dict = {}
    for d in docs:
        key = (d.prediction.topic, d.prediction.sentiment)
        topics[key] = topics.get(key, 0) + 1
        for k in {entity_key(e) for e in d.prediction.entities}:
            entities[(k, d.prediction.sentiment)] = entities.get((k, d.prediction.sentiment), 0) + 1
    return topics, entities


@pytest.mark.parametrize("crash_after", [None, 1, 2], ids=["after-commit-window", "after-predictions",
                                                            "after-mentions"])
def test_a_replay_predicted_differently_is_counted_under_its_first_labels_only(
    any_store: Store, crash_after: int | None
) -> None:
    """A crash before the offset commit replays a batch; the model may now predict other labels. Whatever insert
    of ``write_batch`` the crash interrupted, each document is counted once, under the labels first stored."""
    store = any_store
    docs = _corpus(90, seed=11)
    if crash_after is None:  # every insert done, the offsets not yet committed
        store.write_batch(docs)
    else:
        real, done = store._client.insert, []

        def crashing(table, *args, **kwargs):
            if len(done) == crash_after:
                raise ConnectionError("the worker died here")
            done.append(table)
            return real(table, *args, **kwargs)

        store._client.insert = crashing
        with pytest.raises(ConnectionError):
            store.write_batch(docs)
        store._client.insert = real
        assert done[0] == PREDICTIONS
    replay = [_flipped(d) for d in docs]
    assert _expected_labels(replay) != _expected_labels(docs)
    store.write_batch(replay)
    assert _labels_counted(store) == _expected_labels(docs)
    assert queries.document_count(store) == len(docs)
    writes = store.query(f"SELECT doc_id, count() AS n FROM {PREDICTION_WRITES} GROUP BY doc_id HAVING n > 1")
    assert writes == [] and store.query(f"SELECT count() AS n FROM {PREDICTION_WRITES}")[0]["n"] == len(docs)
    mentions = store.query(f"SELECT DISTINCT doc_id, sentiment FROM {ENTITY_MENTIONS} FINAL")
    first = {d.doc.id: d.prediction.sentiment for d in docs}
    assert mentions and all(first[m["doc_id"]] == m["sentiment"] for m in mentions)


def test_refused_rows_are_told_from_other_errors(any_store: Store) -> None:
    store = any_store
    store.command(f"ALTER TABLE {DOCUMENTS} ADD CONSTRAINT refuse CHECK positionCaseInsensitive(text, 'refuse-me') = 0")
    with pytest.raises(StoreRefused) as info:
        store.write_batch([enriched("r", T0, text="please refuse-me")])
    assert info.value.code == 469 and info.value.name == "VIOLATED_CONSTRAINT"
    store.command(f"DROP TABLE {DOCUMENTS}")
    with pytest.raises(StoreError) as other:
        store.write_batch([enriched("s", T0)])
    assert other.value.code == 60 and not isinstance(other.value, StoreRefused | StoreUnavailable)


def test_counts_match_what_was_written(any_store: Store) -> None:
    store = any_store
    docs = _corpus(120, seed=3)
    store.write_batch(docs)
    expected: dict[tuple[str, str], int] = {}
    for d in docs:
        key = (d.prediction.topic, d.prediction.sentiment)
        expected[key] = expected.get(key, 0) + 1
    got = {(r["topic"], r["sentiment"]): r["docs"] for r in queries.topic_counts(store, bucket_seconds=None)}
    assert got == expected
    newswire = queries.topic_counts(store, bucket_seconds=None, by_source=True, sources=["newswire"], topics=["IPO"])
    assert {r["source"] for r in newswire} == {"newswire"}
    assert sum(r["docs"] for r in newswire) == sum(
        d.doc.source == "newswire" and d.prediction.topic == "IPO" for d in docs)
    tickers = queries.entity_counts(store, bucket_seconds=None, labels=["TICKER"])
    assert {r["entity_key"] for r in tickers} == {"AAPL", "TSLA"}
    tsla = sum(any(e.text == "$TSLA" for e in d.prediction.entities) for d in docs)
    assert sum(r["docs"] for r in tickers if r["entity_key"] == "TSLA") == tsla

    # Apple (ORG) and $AAPL (TICKER) are linked to one company: a doc mentioning both counts once
    aapl = {d.doc.id for d in docs if any(e.company_id == "AAPL" for e in d.prediction.entities)}
    top = {r["entity_key"]: r for r in queries.top_entities(store, limit=100)}
    assert top["AAPL"]["docs"] == len(aapl)
    assert top["AAPL"]["company_id"] == "AAPL"
    assert sum(top["AAPL"][s] for s in SENTIMENTS) == len(aapl)
    assert set(queries.example_documents(store, entity_key="AAPL", limit=500)[i]["doc_id"]
               for i in range(len(aapl))) == aapl


def test_time_ranges_are_half_open_and_timezone_correct(any_store: Store) -> None:
    store = any_store
    store.write_batch([enriched("a", T0), enriched("b", T0 + timedelta(minutes=1, seconds=30))])
    plus2 = timezone(timedelta(hours=2))
    assert queries.document_count(store, T0.astimezone(plus2), T0 + timedelta(minutes=1)) == 1
    rows = queries.topic_counts(store, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert [(r["bucket"], r["docs"]) for r in rows] == [(T0 + timedelta(minutes=1), 1)]
    with pytest.raises(ValueError):
        queries.document_count(store, datetime(2026, 1, 1))


def test_rows_keep_every_field(any_store: Store) -> None:
    store = any_store
    d = enriched("x1", T0 + timedelta(milliseconds=123), topic="IPO", sentiment="positive", source="newswire",
                 text="Arm files for IPO; $ARM up", entities=(("Arm", "ORG", "ARM"), ("$ARM", "TICKER", None)))
    store.write_batch([d])
    doc = store.query(f"SELECT * FROM {DOCUMENTS} FINAL")[0]
    assert doc["published_at"] == d.doc.published_at and doc["url"] == d.doc.url and doc["title"] == ""
    pred = store.query(f"SELECT * FROM {PREDICTIONS} FINAL")[0]
    assert (pred["topic"], pred["sentiment"], pred["model_version"]) == ("IPO", "positive", "test-1")
    assert pred["p_positive"] == pytest.approx(0.8) and pred["topic_probs"]["IPO"] == pytest.approx(0.7)
    mentions = store.query(f"SELECT * FROM {ENTITY_MENTIONS} FINAL ORDER BY start")
    assert [(m["text"], m["entity_key"], m["company_id"]) for m in mentions] == [("Arm", "ARM", "ARM"),
                                                                                ("$ARM", "ARM", "")]
    assert d.doc.text[mentions[1]["start"]:mentions[1]["end"]] == "$ARM"


def test_entity_keys_normalise_surface_forms() -> None:
    assert TICKER in ENTITY_TYPES
    assert entity_key(EntitySpan(0, 5, "TICKER", "$aapl")) == "AAPL"
    assert entity_key(EntitySpan(0, 5, "ORG", "Goldman  Sachs")) == entity_key(EntitySpan(0, 5, "ORG", "goldman sachs"))
    assert entity_key(EntitySpan(0, 5, "ORG", "Apple Inc", company_id="AAPL")) == "AAPL"


def test_errors_are_wrapped_with_their_code(any_store: Store) -> None:
    store = any_store
    with pytest.raises(StoreError) as info:
        store.query("SELECT * FROM no_such_table")
    assert info.value.code == 60 and not isinstance(info.value, StoreUnavailable)
    with pytest.raises(StoreError):
        Store.open("mysql://nope")
    with pytest.raises(StoreError):
        Store.open("chdb:///tmp/x", database="bad; DROP")


def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(StoreUnavailable) as info:
        Store.open("http://default:secret@127.0.0.1:1")
    assert "secret" not in str(info.value) and "default:***@127.0.0.1:1" in str(info.value)


def test_reopen_in_same_process_and_lock_from_another(store_dsn: tuple[str, str]) -> None:
    dsn, database = store_dsn
    with Store.open(dsn, database) as s:
        s.migrate()
        s.write_batch([enriched("a", T0)])
    with Store.open(dsn, database) as s:  # a store closed in one place re-opens later in the same process
        assert queries.document_count(s) == 1
        assert s.migrate() == []
        if dsn.startswith("chdb:"):
            probe = (
                "import sys\nfrom ingest.store import Store, StoreUnavailable\n"
                "try:\n    Store.open(sys.argv[1])\nexcept StoreUnavailable:\n    sys.exit(3)\n"
            )
            assert subprocess.run([sys.executable, "-c", probe, dsn], capture_output=True).returncode == 3


def test_another_process_writes_over_http(clickhouse_http: str) -> None:
    """A worker in another process reaches the data dir this process holds, through the HTTP interface."""
    with Store.open(clickhouse_http, "shared") as store:
        store.migrate()
        store.write_batch([enriched("here", T0)])
        writer = (
            "import sys\nfrom datetime import datetime, UTC\nfrom ingest.store import Store\n"
            "from tests.fixtures.clickhouse import enriched\n"
            "with Store.open(sys.argv[1], 'shared') as s:\n"
            "    s.write_batch([enriched('there', datetime(2026, 11, 2, 9, 5, tzinfo=UTC)), enriched('here', "
            "datetime(2026, 11, 2, 9, 0, tzinfo=UTC))])\n"
        )
        done = subprocess.run([sys.executable, "-c", writer, clickhouse_http], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert queries.document_count(store) == 2
        assert sum(r["docs"] for r in queries.topic_counts(store)) == 2


def test_server_going_away_is_unavailable(tmp_path) -> None:
    front = ChdbHttpFront(tmp_path / "db").start()
    try:
        store = Store.open(front.url, "gone")
        store.migrate()
    finally:
        front.stop()
    with pytest.raises(StoreUnavailable):
        store.write_batch([enriched("a", T0)])
    store.close()
