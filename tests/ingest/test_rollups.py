"""Migration 5 on a real ClickHouse: the six per-minute aggregates become two roll-ups (the old names views over
them). A store written by version 4 reads the same numbers after it, through every reader; a half-applied run
resumes; writes after it still count each document and story once; a batch writes six parts, not ten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ingest import queries, story_queries, store as store_module
from ingest.records import EnrichedDocument
from ingest.schema import ENTITY_ROLLUP, MIGRATIONS, TOPIC_ROLLUP
from ingest.store import Store
from tests.fixtures.clickhouse import enriched
from tests.ingest.test_kg_store import T0, _linked


def _stream() -> list[EnrichedDocument]:
    """Linked and unlinked names (graph name != surface text, mentions without a sector), two sources, three
    months of minutes, and stories of several documents."""
    docs = [
        _linked("a", T0, (("JPMorgan", "ORG"), ("$JPM", "TICKER"), ("BofA", "ORG"), ("U.S.", "LOC"))),
        _linked("b", T0 + timedelta(minutes=1), (("JPMorgan Chase", "ORG"), ("Acme Widgets", "ORG"))),
        _linked("c", T0 + timedelta(minutes=1), (("Bank of America", "ORG"), ("US", "LOC")), sentiment="neutral"),
        _linked("d", T0 + timedelta(days=40), (("Tesla", "ORG"), ("Elon Musk", "PER"))),
        enriched("e", T0, topic="Macro", sentiment="negative", source="rss", text="Acme Widgets cuts jobs",
                 entities=(("Acme Widgets", "ORG", None),)),
        enriched("f", T0 + timedelta(seconds=20), topic="Macro", sentiment="negative", source="rss"),
        enriched("g", T0 + timedelta(days=70), topic="Macro", sentiment="positive"),
    ]
    story = {"b": "a", "c": "a", "f": "e"}  # b and c re-post a's story, f e's
    return [d.model_copy(update={"story_id": story.get(d.doc_id, d.doc_id)}) for d in docs]


def _readings(store: Store) -> dict[str, Any]:
    """What every reader of the aggregates returns, per minute and over the whole range."""
    out: dict[str, Any] = {}
    for bucket in (60, None):
        out[f"topics {bucket}"] = queries.topic_counts(store, bucket_seconds=bucket, by_source=True)
        out[f"entities {bucket}"] = queries.entity_counts(store, bucket_seconds=bucket)
        out[f"graph {bucket}"] = queries.graph_entity_counts(store, bucket_seconds=bucket)
        out[f"sectors {bucket}"] = queries.sector_counts(store, bucket_seconds=bucket)
        out[f"topic stories {bucket}"] = story_queries.topic_story_counts(store, bucket_seconds=bucket)
        out[f"entity stories {bucket}"] = story_queries.entity_story_counts(store, bucket_seconds=bucket)
    out["top entities"] = queries.top_entities(store, limit=30)
    out["top graph"] = queries.top_graph_entities(store, limit=30)
    return out


def test_migration_5_keeps_every_reader_s_numbers(store_dsn, monkeypatch) -> None:
    dsn, database = store_dsn
    docs = _stream()
    with Store.open(dsn, database) as store:
        monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:4])
        assert store.migrate() == [1, 2, 3, 4]
        store.write_batch(docs)
        store.write_batch(docs[2:5])  # a replay in another split
        before = _readings(store)
        # the stream shows what a wrong view would change: surface text vs graph name, mentions with no sector,
        # stories of several documents
        names = {r["entity_key"]: r["name"] for r in before["entities None"] if r["sentiment"] == "negative"}
        graph = {r["entity_id"]: r for r in before["graph None"] if r["sentiment"] == "negative"}
        assert (names["JPM"], graph["JPM"]["name"]) == ("JPMorgan", "JPMorgan Chase")
        assert {r["sector"] for r in before["sectors None"]} == {"Financials", "Consumer Discretionary"}
        assert graph["acme widgets"]["sector"] == ""  # a mention without a sector: not in any sector's count
        stories = {r["entity_key"]: r["stories"] for r in before["entity stories None"] if r["sentiment"] == "negative"}
        assert (graph["JPM"]["docs"], stories["JPM"]) == (2, 1)  # a and b, one story

        monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
        assert store.migrate() == [5] and store.migrate() == []
        assert _readings(store) == before
        for statement in MIGRATIONS[4].statements:  # a half-applied run resumes: every statement is idempotent
            store.command(statement.format(db=database))
        assert _readings(store) == before

        store.write_batch(docs)  # replays after the migration: nothing counts twice
        assert _readings(store) == before
        late = _linked("h", T0 + timedelta(minutes=1), (("JPMorgan", "ORG"),))
        store.write_batch([late])
        after = {(r["entity_id"], r["sentiment"]): r["docs"] for r in queries.graph_entity_counts(
            store, bucket_seconds=None)}
        was = {(r["entity_id"], r["sentiment"]): r["docs"] for r in before["graph None"]}
        assert after == {**was, ("JPM", "negative"): was[("JPM", "negative")] + 1}
        sectors = {r["sector"]: r["docs"] for r in queries.sector_counts(store, bucket_seconds=None)
                   if r["sentiment"] == "negative"}
        assert sectors["Financials"] == 3  # a, b and h: a names two banks and counts once


def _active_parts(store: Store) -> dict[str, int]:
    rows = store.query("SELECT table, count() AS n FROM system.parts WHERE database = currentDatabase() AND active "
                       "GROUP BY table")
    return {r["table"]: r["n"] for r in rows}


def test_a_batch_writes_one_part_per_table_and_two_roll_ups(store: Store) -> None:
    before = _active_parts(store)
    store.write_batch([d for d in _stream() if d.doc.published_at.month == T0.month])  # one month: one partition
    after = _active_parts(store)
    added = {table: n - before.get(table, 0) for table, n in after.items() if n != before.get(table, 0)}
    assert added == {"documents": 1, "predictions": 1, "entity_mentions": 1, "prediction_writes": 1,
                     TOPIC_ROLLUP: 1, ENTITY_ROLLUP: 1}
    views = store.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                        "AND engine = 'MaterializedView' ORDER BY name")
    assert [v["name"] for v in views] == [f"{ENTITY_ROLLUP}_mv", "prediction_writes_mv", f"{TOPIC_ROLLUP}_mv"]
