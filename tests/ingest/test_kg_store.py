"""Migration 2 (knowledge graph) on a real ClickHouse: it applies alone on top of version 1, rows written before
it stay readable, the per-entity and per-sector roll-ups count each document once whatever the replays, and
``finmon kg load``'s loader replaces the graph tables' content."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from inference.linking.graph import COMPANY, Graph, Node
from inference.linking.linker import EntityLinker
from inference.linking.world import curated_nodes
from ingest import queries, store as store_module
from ingest.kg import load_graph
from ingest.schema import ENTITY_ID_MINUTE, KG_ENTITIES, KG_RELATIONS, MIGRATIONS, SECTOR_MINUTE
from ingest.store import ENTITY_MENTIONS, Store
from tests.fixtures.clickhouse import enriched

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
GRAPH = Graph({n.id: n for n in [
    Node("JPM", COMPANY, "JPMorgan Chase", ("JPMorgan",), ("JPM",), sector="Financials", industry="Diversified Banks",
         rank=2),
    Node("BAC", COMPANY, "Bank of America", ("BofA",), ("BAC",), sector="Financials", industry="Diversified Banks",
         rank=2),
    Node("TSLA", COMPANY, "Tesla", (), ("TSLA",), sector="Consumer Discretionary", rank=2),
    *curated_nodes(),
]})
V1_COLUMNS = ("doc_id", "published_at", "source", "kind", "topic", "start", "end", "label", "text", "entity_key",
              "company_id", "score", "sentiment", "ingested_at")


def _linked(doc_id: str, at: datetime, names: tuple[tuple[str, str], ...], sentiment: str = "negative"):
    text = " ".join(n for n, _ in names)
    doc = enriched(doc_id, at, topic="Financials", sentiment=sentiment, text=text,
                   entities=tuple((n, label, None) for n, label in names))
    spans = [replace(s, company_id=s.text.lstrip("$")) if s.label == "TICKER" else s for s in doc.prediction.entities]
    linked = EntityLinker(GRAPH).link(spans, "Financials")
    return doc.model_copy(update={"prediction": replace(doc.prediction, entities=linked)})


def test_migration_2_applies_alone_on_top_of_version_1(store_dsn, monkeypatch) -> None:
    dsn, database = store_dsn
    with Store.open(dsn, database) as s:
        monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
        assert s.migrate() == [1]
        s.insert(ENTITY_MENTIONS, [["old", T0, "twitter", "post", "Markets", 0, 4, "ORG", "Acme", "acme", "", 0.9,
                                    "neutral", T0]], V1_COLUMNS)
        monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:2])  # 3 and 4 (stories, audit) come later
        assert s.migrate() == [2] and s.migrate() == []
        for statement in MIGRATIONS[1].statements:  # every statement is idempotent: a half-applied run can resume
            s.command(statement.format(db=database))
        old = s.query(f"SELECT name, entity_kind, sector FROM {ENTITY_MENTIONS} WHERE doc_id = 'old'")
        assert old == [{"name": "Acme", "entity_kind": "ORG", "sector": ""}]
        monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)  # the writer writes every column of today
        assert s.migrate() == [m.version for m in MIGRATIONS[2:]]
        s.write_batch([_linked("new", T0, (("JPMorgan", "ORG"),))])
        row = s.query(f"SELECT entity_key, name, entity_kind, sector FROM {ENTITY_MENTIONS} WHERE doc_id = 'new'")
        assert row == [{"entity_key": "JPM", "name": "JPMorgan Chase", "entity_kind": "company",
                        "sector": "Financials"}]
        tables = {r["name"] for r in s.query("SHOW TABLES")}
        assert {KG_ENTITIES, KG_RELATIONS, ENTITY_ID_MINUTE, SECTOR_MINUTE} <= tables


def test_rollups_count_each_document_once(store: Store) -> None:
    docs = [
        # one document naming the same bank twice (name and cashtag) and a second bank: one document each,
        # one document for Financials
        _linked("a", T0, (("JPMorgan", "ORG"), ("$JPM", "TICKER"), ("BofA", "ORG"), ("U.S.", "LOC"))),
        _linked("b", T0 + timedelta(minutes=1), (("JPMorgan Chase", "ORG"),)),
        _linked("c", T0 + timedelta(minutes=2), (("Bank of America", "ORG"), ("US", "LOC")), sentiment="neutral"),
        _linked("d", T0 + timedelta(minutes=3), (("Tesla", "ORG"), ("Elon Musk", "PER"))),
    ]
    store.write_batch(docs)
    store.write_batch(docs[:2])  # at-least-once delivery: replays in other batch splits
    store.write_batch(docs[1:][::-1])
    sectors = {(r["sector"], r["sentiment"]): r["docs"] for r in queries.sector_counts(store, bucket_seconds=None)}
    assert sectors == {("Financials", "negative"): 2, ("Financials", "neutral"): 1,
                       ("Consumer Discretionary", "negative"): 1}
    top = {r["entity_id"]: r for r in queries.top_graph_entities(store, limit=30)}
    assert {k: top[k]["docs"] for k in ("JPM", "BAC", "loc:US", "TSLA", "elon musk")} == {
        "JPM": 2, "BAC": 2, "loc:US": 2, "TSLA": 1, "elon musk": 1}
    assert len(top) == 5  # "U.S." and "US", "JPMorgan" and "$JPM" are one row each
    assert top["loc:US"]["name"] == "United States" and top["loc:US"]["kind"] == "place"
    assert queries.entity_title(top["JPM"]) == "JPMorgan Chase (JPM)" and top["JPM"]["sector"] == "Financials"
    assert queries.entity_title(top["elon musk"]) == "Elon Musk"
    exact = store.query(f"SELECT uniqExact(doc_id) AS n FROM {ENTITY_MENTIONS} FINAL WHERE sector = 'Financials'")
    assert exact[0]["n"] == sum(v for (s, _), v in sectors.items() if s == "Financials")
    share = queries.linked_share(store)
    assert share["ORG"] == {"mentions": 5, "linked": 5} and share["TICKER"] == {"mentions": 1, "linked": 1}


def test_graph_load_replaces_the_graph_tables(store: Store) -> None:
    assert load_graph(store, GRAPH)["entities"] == len(GRAPH.nodes)
    assert load_graph(store, GRAPH)["entities"] == len(GRAPH.nodes)  # twice: still one row per node
    n = store.query(f"SELECT count() AS n FROM {KG_ENTITIES} FINAL")[0]["n"]
    assert n == len(GRAPH.nodes)
    rels = {(r["subject"], r["relation"], r["object"]) for r in store.query(f"SELECT * FROM {KG_RELATIONS} FINAL")}
    assert {("JPM", "sector", "Financials"), ("JPM", "industry", "Diversified Banks"),
            ("Diversified Banks", "part_of", "Financials"), ("JPM", "listed_as", "JPM"),
            ("org:FED", "country", "loc:US")} <= rels
    smaller = Graph({k: v for k, v in GRAPH.nodes.items() if k != "TSLA"})
    load_graph(store, smaller)
    ids = {r["id"] for r in store.query(f"SELECT id FROM {KG_ENTITIES} FINAL")}
    assert "TSLA" not in ids and "JPM" in ids and len(ids) == len(smaller.nodes)


def test_graph_load_needs_the_migration(store_dsn) -> None:
    dsn, database = store_dsn
    with Store.open(dsn, database) as s:
        s.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        s.command(f"USE {database}")
        with pytest.raises(store_module.StoreError, match="finmon migrate"):
            load_graph(s, GRAPH)
