"""Story grouping (ingest.stories) and the story-aware counts (migration 3, ingest.story_queries)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from inference.decoding.prediction import EntitySpan

from ingest import queries, story_queries
from ingest.schema import _V1, DOCUMENTS, MIGRATIONS, MIGRATIONS_DDL, MIGRATIONS_TABLE
from ingest.store import Store
from ingest.stories import StoryGrouper, shingles
from tests.fixtures.clickhouse import enriched

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WIRE = "Wells Fargo cuts its earnings outlook after loan losses widen"


def _doc(i: int, text: str, minutes: int = 0, **kw):  # type: ignore[no-untyped-def]
    return enriched(f"d{i}", T0 + timedelta(minutes=minutes), text=text, **kw)


def test_reposts_of_one_wire_story_are_one_story_and_other_news_is_not() -> None:
    grouper = StoryGrouper()
    docs = grouper.assign([
        _doc(1, f"BREAKING: {WIRE} $WFC https://t.co/abc"),
        _doc(2, f"$WFC - {WIRE} https://t.co/xyz", 1),  # another prefix, another short link
        _doc(3, f"{WIRE}?! $WFC holders in pain", 2),
        _doc(4, "Wells Fargo slashes full-year net interest income guidance $WFC", 3),
        _doc(5, "Apple unveils a new phone at its autumn event", 4),
    ])
    ids = [d.story_id for d in docs]
    assert ids[0] == ids[1] == ids[2]
    assert len({ids[0], ids[3], ids[4]}) == 3
    assert shingles("See https://t.co/a NOW") == {"see", "now"}


def test_story_ids_survive_a_restart_and_a_replay_without_changing_counts(store: Store) -> None:
    first = [_doc(1, f"BREAKING: {WIRE} $WFC", sentiment="negative", topic="Financials"),
             _doc(2, "Oil prices jump as supply tightens", 1, sentiment="neutral", topic="Energy")]
    store.write_batch(StoryGrouper(store).assign(first))
    stored = {r["doc_id"]: r["story_id"] for r in store.query(f"SELECT doc_id, story_id FROM {DOCUMENTS} FINAL")}

    def counts() -> list[dict]:
        return story_queries.topic_story_counts(store, bucket_seconds=None)

    before = counts()
    restarted = StoryGrouper(store)  # a new process: indexes the stored documents on its first batch
    replayed = restarted.assign(first + [_doc(3, f"{WIRE} $WFC https://t.co/q", 5, sentiment="negative",
                                              topic="Financials")])
    assert {d.doc_id: d.story_id for d in replayed[:2]} == stored
    assert replayed[2].story_id == stored["d1"]  # a re-post after the restart joins the story from before
    store.write_batch(replayed[:2])
    assert counts() == before
    store.write_batch(replayed[2:])
    financials = [r for r in counts() if r["topic"] == "Financials"]
    assert [r["stories"] for r in financials] == [1]  # two documents, one story
    assert story_queries.story_count(store) == 2 and queries.document_count(store) == 3


def test_an_entity_is_counted_once_per_document_whatever_the_topic(store: Store) -> None:
    docs = [
        enriched("a", T0, topic="Macro", sentiment="negative", text="Freedonia, Freedonia and again Freedonia",
                 entities=(("Freedonia", "LOC", None),)),
        enriched("b", T0, topic="Politics", sentiment="negative", text="Freedonia votes",
                 entities=(("Freedonia", "LOC", None),)),
        enriched("c", T0, topic="Energy", sentiment="negative", text="Freedonia mines",
                 entities=(("Freedonia", "LOC", None),)),
    ]
    # the fixture spans only the first occurrence; add the other two mentions of "a"
    a = docs[0]
    extra = [EntitySpan(i, i + 9, "LOC", "Freedonia", 0.9) for i in (11, 31)]
    docs[0] = a.model_copy(update={"prediction": replace(a.prediction, entities=[*a.prediction.entities, *extra])})
    assert [e.text for e in docs[0].prediction.entities] == ["Freedonia"] * 3
    store.write_batch(StoryGrouper().assign(docs))
    rows = queries.entity_counts(store, bucket_seconds=None)
    assert [(r["entity_key"], r["sentiment"], r["docs"]) for r in rows] == [("freedonia", "negative", 3)]
    stories = story_queries.entity_story_counts(store, bucket_seconds=None)
    assert [(r["entity_key"], r["stories"]) for r in stories] == [("freedonia", 3)]


def test_migration_3_alone_on_version_1_backfills_the_story_counts(store_dsn: tuple[str, str]) -> None:
    dsn, database = store_dsn
    with Store.open(dsn, database) as store:
        store.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        store.command(MIGRATIONS_DDL.format(db=database))
        for statement in _V1:  # a store written by the first version
            store.command(statement.format(db=database))
        store.command(f"INSERT INTO {database}.{MIGRATIONS_TABLE} VALUES (1, 'v1', now64(3))")
        old = [enriched(f"o{i}", T0, topic="Macro", sentiment="negative") for i in range(3)]
        v1_columns = "doc_id, model_version, published_at, source, kind, topic, topic_score, sentiment, " \
                     "sentiment_score, p_negative, p_neutral, p_positive, topic_probs, truncated, ingested_at"
        for d in old:
            store.command(
                f"INSERT INTO {database}.predictions ({v1_columns}) VALUES ({{id:String}}, 'm', "
                "{at:DateTime64(3, 'UTC')}, 'twitter', 'post', 'Macro', 0.7, 'negative', 0.8, 0.8, 0.1, 0.1, "
                "map(), 0, now64(3))", {"id": d.doc_id, "at": d.doc.published_at})
        applied = store.migrate()
        assert 3 in applied and applied == [m.version for m in MIGRATIONS if m.version != 1]
        rows = story_queries.topic_story_counts(store, bucket_seconds=None)
        assert [(r["topic"], r["sentiment"], r["stories"]) for r in rows] == [("Macro", "negative", 3)]
        assert store.migrate() == []
