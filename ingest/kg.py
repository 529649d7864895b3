"""The knowledge graph in ClickHouse (``finmon kg load``): ``kg_entities`` (one row per node) and
``kg_relations`` (company -sector-> sector, company -industry-> industry, industry -part_of-> sector,
company -listed_as-> ticker, institution -country-> place). Dashboards join on them by id.

A load inserts the whole graph with one ``loaded_at`` and then deletes the rows of earlier loads, so a reader
sees the old graph or the new one, never a half of each, and a node dropped from the graph disappears.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from inference.linking.graph import COMPANY, Graph
from ingest.schema import KG_ENTITIES, KG_RELATIONS
from ingest.store import Store, StoreError

log = logging.getLogger(__name__)

ENTITY_COLUMNS = ("id", "kind", "name", "legal_name", "aliases", "tickers", "exchange", "cik", "sector", "industry",
                  "etf", "country", "loaded_at")
RELATION_COLUMNS = ("subject", "relation", "object", "loaded_at")


def relations(graph: Graph) -> list[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for n in graph.nodes.values():
        if n.kind == COMPANY:
            out.update((n.id, "listed_as", t) for t in n.tickers)
            if n.sector:
                out.add((n.id, "sector", n.sector))
            if n.industry:
                out.add((n.id, "industry", n.industry))
                out.add((n.industry, "part_of", n.sector))
        if n.country:
            out.add((n.id, "country", n.country))
    return sorted(out)


def load_graph(store: Store, graph: Graph) -> dict[str, int]:
    """Replace the graph tables' content with ``graph``; returns row counts. The schema must be migrated."""
    if not {KG_ENTITIES, KG_RELATIONS} <= {r["name"] for r in store.query("SHOW TABLES")}:
        raise StoreError(f"{store.database} has no knowledge-graph tables: run `finmon migrate` first")
    now = datetime.now(UTC)
    entities = [[n.id, n.kind, n.name, n.legal_name, list(n.aliases), list(n.tickers), n.exchange, n.cik or 0,
                 n.sector, n.industry, int(n.etf), n.country, now] for n in graph.nodes.values()]
    rels = [[s, r, o, now] for s, r, o in relations(graph)]
    store.insert(KG_ENTITIES, entities, ENTITY_COLUMNS)
    store.insert(KG_RELATIONS, rels, RELATION_COLUMNS)
    for table in (KG_ENTITIES, KG_RELATIONS):  # the previous loads' rows; what this load wrote stays
        store.command(f"DELETE FROM {table} WHERE loaded_at < {{at:DateTime64(3, 'UTC')}}", {"at": now})
    log.info("loaded knowledge graph: %d entities, %d relations", len(entities), len(rels))
    return {"entities": len(entities), "relations": len(rels)}
