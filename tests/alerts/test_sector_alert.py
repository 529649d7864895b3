"""Sector roll-ups in the alerts worker: negative posts about three different banks stay below each bank's
entity alert (fewer negatives each than the floor of eight) while the Financials sector alert fires; sector and company alerts are
routed by the rules (``sectors: [Financials]``, ``companies: [TSLA]``). Documents are linked by the real linker
over a small graph and written through the real Store, so the per-sector view counts as in production."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts.errors import RulesError
from alerts.rules import parse
from alerts.runner import Runner
from alerts.settings import alerts_settings
from inference.linking.graph import COMPANY, Graph, Node
from inference.linking.linker import EntityLinker
from ingest import queries
from tests.fixtures.clickhouse import enriched

START = datetime(2026, 11, 2, tzinfo=UTC)
SURGE = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
BANKS = {"JPM": "JPMorgan Chase", "BAC": "Bank of America", "WFC": "Wells Fargo"}
GRAPH = Graph({
    **{t: Node(t, COMPANY, n, tickers=(t,), sector="Financials", industry="Diversified Banks", rank=2)
       for t, n in BANKS.items()},
    "TSLA": Node("TSLA", COMPANY, "Tesla", tickers=("TSLA",), sector="Consumer Discretionary", rank=2),
})
RULES = {
    "channels": {"banks": {"type": "console"}, "tesla": {"type": "console"}, "ops": {"type": "console"}},
    "routes": [{"name": "sector", "match": {"sectors": ["Financials"]}, "channels": ["banks"]},
               {"name": "tesla", "match": {"companies": ["TSLA"]}, "channels": ["tesla"]},
               {"name": "fed", "match": {"entities": ["Federal Reserve"]}, "channels": ["ops"]}],
}


def _doc(i: int, at: datetime, name: str, negative: bool):
    doc = enriched(f"d{i}", at, topic="Financials" if name in BANKS.values() else "Stock Movement",
                   sentiment="negative" if negative else "neutral", entities=((name, "ORG", None),),
                   text=f"post {i} about {name}")
    linked = EntityLinker(GRAPH).link(doc.prediction.entities, doc.prediction.topic)
    return doc.model_copy(update={"prediction": replace(doc.prediction, entities=linked)})


@pytest.fixture
def seeded(store):
    rng = np.random.default_rng(7)
    docs, i, t = [], 0, START
    while t < SURGE + 8 * STEP:
        surge = SURGE <= t < SURGE + 2 * STEP
        for name in [*BANKS.values(), "Tesla"]:
            for _ in range(rng.poisson(1.0)):  # ~4 documents an hour per company, one in five negative
                docs.append(_doc(i, t + timedelta(seconds=int(rng.integers(0, 900))), name, rng.random() < 0.2))
                i += 1
            extra = 2 if name in BANKS.values() else 30  # banks: under the negative floor each; Tesla: a surge
            for _ in range(extra if surge else 0):
                docs.append(_doc(i, t + timedelta(seconds=int(rng.integers(0, 900))), name, True))
                i += 1
        t += STEP
    store.write_batch(docs)
    return store


def test_three_banks_fire_the_sector_not_each_bank_and_routes_follow_the_rules(seeded) -> None:
    rules = parse(RULES)
    runner = Runner(seeded, rules, alerts_settings())
    events = runner.detect(SURGE + 6 * STEP, SURGE - 4 * STEP)
    firing = {(e.subject.kind, e.subject.name) for e in events if e.status == "firing"}
    assert ("sector", "Financials") in firing
    assert not firing & {("entity", t) for t in BANKS}  # each bank alone stays below the entity alert
    assert ("entity", "TSLA") in firing
    # the sector really is the sum of its banks, counted once per document
    surge = queries.sector_counts(seeded, SURGE, SURGE + 2 * STEP, bucket_seconds=None, sectors=["Financials"])
    banks = queries.graph_entity_counts(seeded, SURGE, SURGE + 2 * STEP, bucket_seconds=None, entity_ids=list(BANKS))
    negative = lambda rows: sum(r["docs"] for r in rows if r["sentiment"] == "negative")  # noqa: E731
    assert negative(surge) == negative(banks) >= 12
    for event in events:
        channels = [c.name for c, _ in rules.targets(event)]
        if event.subject.kind == "sector" and event.subject.name == "Financials":
            assert channels == ["banks"]
        elif event.subject.kind == "entity" and event.subject.name == "TSLA":
            assert channels == ["tesla"] and event.subject.title == "Tesla"
        else:
            assert channels == []  # the Consumer Discretionary sector (Tesla's) has no route


def test_sector_rules_name_known_sectors() -> None:
    with pytest.raises(RulesError, match="unknown sectors"):
        parse({"channels": {"c": {"type": "console"}}, "routes": [{"match": {"sectors": ["Financial"]},
                                                                    "channels": ["c"]}]})
