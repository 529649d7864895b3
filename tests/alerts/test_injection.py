"""SQL injection strings as topics, sources, entity names and ids, company ids, rule companies and channel names,
end to end through a real (embedded) ClickHouse: the pipeline stores them, the shared read queries find them
exactly, the alerts runner detects a surge about such an entity, routes it by such a rule and records its delivery;
every table is still there and holds what was written."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from alerts import delivery, history
from alerts.rules import parse
from alerts.runner import Runner
from alerts.settings import alerts_settings
from ingest import queries
from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message, Pipeline
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store
from tests.alerts.seeding import STEP, SURGE, SURGE_STEPS, seed
from tests.fixtures.clickhouse import enriched
from tests.ingest.doubles import RulePredictor

INJECTIONS = (
    "x'); DROP TABLE documents; --",
    "' OR '1'='1",
    "{start:DateTime64(3, 'UTC')}",
    "\\'; SELECT version(); --",
    "`finmon`.`documents`",
    'Robert"); DROP DATABASE finmon;--',
)
ENTITY = "Bobby'); DROP TABLE entity_mentions;-- Bank"  # surface text of the entity
COMPANY = "co' OR 1=1; DROP TABLE alert_events; --"  # its company id: the alert subject's name
SOURCE = "src'); TRUNCATE TABLE documents; --"
CHANNEL = "hook'; DROP TABLE alert_deliveries; --"


def _tables(store: Store) -> set[str]:
    return {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}


async def test_injection_strings_go_through_the_pipeline_byte_for_byte(store: Store) -> None:
    before = _tables(store)
    pipeline = Pipeline(RulePredictor(), store, ListDeadLetters(), IngestSettings(batch_size=100),
                        IngestMetrics(CollectorRegistry()))
    for i, value in enumerate(INJECTIONS):
        doc = {"id": f"{value}-{i}", "source": value, "kind": "news", "published_at": SURGE.isoformat(),
               "text": f"Acme said {value} today {i}", "title": value, "author": value, "url": value,
               "meta": {value: value}}
        await pipeline.feed(Message(json.dumps(doc).encode(), "news.raw", 0, i))
    await pipeline.flush()
    assert _tables(store) == before
    rows = store.query(f"SELECT doc_id, source, title, author, url, meta FROM {DOCUMENTS} FINAL ORDER BY doc_id")
    assert sorted((r["doc_id"], r["source"], r["title"], r["author"], r["url"]) for r in rows) == sorted(
        (f"{v}-{i}", v, v, v, v) for i, v in enumerate(INJECTIONS))
    assert {json.loads(r["meta"]).popitem()[0] for r in rows} == set(INJECTIONS)
    for value in INJECTIONS:  # each filter matches exactly its own rows: no string widens or breaks a query
        counts = queries.topic_counts(store, bucket_seconds=None, by_source=True, sources=[value])
        assert sum(r["docs"] for r in counts) == 1 and {r["source"] for r in counts} == {value}


@pytest.fixture
def seeded(store: Store) -> Store:
    seed(store)
    surge = [enriched(f"inj-{i}", SURGE + timedelta(minutes=i % 45, seconds=i), topic=INJECTIONS[i % 2],
                      sentiment="negative", source=SOURCE, entities=((ENTITY, "ORG", COMPANY),),
                      text=f"{ENTITY} hit by a probe, {INJECTIONS[i % len(INJECTIONS)]} {i}")
             for i in range(60)]
    store.write_batch(surge)
    return store


def test_injection_strings_in_entities_sources_topics_rules_and_channels(seeded: Store, receiver, monkeypatch) -> None:
    store = seeded
    history.migrate(store)
    before = _tables(store)
    documents = store.query(f"SELECT count() AS n FROM {DOCUMENTS} FINAL")[0]["n"]

    counts = queries.entity_counts(store, bucket_seconds=None, entity_keys=[COMPANY])
    assert sum(r["docs"] for r in counts) == 60 and {r["name"] for r in counts} == {ENTITY}
    assert queries.entity_counts(store, bucket_seconds=None, entity_keys=[INJECTIONS[1]]) == []
    assert sum(r["docs"] for r in queries.topic_counts(store, bucket_seconds=None, topics=[INJECTIONS[0]])) == 30
    assert sum(r["docs"] for r in queries.topic_counts(store, bucket_seconds=None, sources=[SOURCE])) == 60
    examples = queries.example_documents(store, entity_key=COMPANY, topic=INJECTIONS[1], limit=100)
    assert len(examples) == 30 and all(e["source"] == SOURCE for e in examples)
    assert any(r["entity_key"] == COMPANY for r in queries.top_entities(store, limit=50))

    monkeypatch.setenv("T_INJ_URL", f"{receiver.url}/hook")
    rules = parse({"channels": {CHANNEL: {"type": "webhook", "url_env": "T_INJ_URL"}},
                   "routes": [{"name": INJECTIONS[0], "channels": [CHANNEL], "match": {"companies": [COMPANY]}}]})
    settings = alerts_settings(backoff_seconds=0.0)
    runner = Runner(store, rules, settings)
    events = runner.detect(SURGE + (SURGE_STEPS + 2) * STEP, SURGE - 4 * STEP)
    assert ("entity", COMPANY) in {(e.subject.kind, e.subject.name) for e in events if e.status == "firing"}
    assert delivery.deliver_due(store, rules, settings)["delivered"] >= 1

    assert COMPANY in {r["subject_name"] for r in history.events(store)}
    sent = store.query(f"SELECT DISTINCT channel FROM {history.DELIVERIES} WHERE state = 'delivered'")
    assert [r["channel"] for r in sent] == [CHANNEL]
    assert any(a["subject"]["name"] == COMPANY for r in receiver.paths("/hook") for a in r.json()["alerts"])
    assert _tables(store) == before
    assert store.query(f"SELECT count() AS n FROM {DOCUMENTS} FINAL")[0]["n"] == documents
