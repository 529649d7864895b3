"""Fair consumption on a real Kafka broker: a backlog of news must not hold posts back. The worker summary on
stop says what the run stored, de-duplicated and dead-lettered, and the lag it leaves."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.records import RawDocument
from ingest.settings import IngestSettings
from ingest.store import Store
from ingest.worker import Worker
from tests.fixtures.kafka import IngestTopics
from tests.ingest.doubles import RulePredictor
from tests.ingest.kafka_checks import produce

pytestmark = pytest.mark.kafka
NEWS, POSTS = 3000, 60
T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)


class RecordingStore:
    """The real store, recording the order in which documents were written."""

    def __init__(self, store: Store) -> None:
        self.store, self.order = store, []

    def write_batch(self, docs: list) -> None:
        self.store.write_batch(docs)
        self.order.extend(d.doc.kind for d in docs)


def _doc(i: int, kind: str) -> bytes:
    return RawDocument(id=f"{kind}-{i}", source="wire" if kind == "news" else "social", kind=kind,
                       published_at=T0 + timedelta(seconds=i), text=f"{kind} number {i} about Markets").to_json(
    ).encode()


async def test_a_news_backlog_does_not_hold_posts_back(ingest_topics: IngestTopics, store: Store, caplog) -> None:
    messages = [_doc(i, "news") for i in range(NEWS)] + [_doc(i, "post") for i in range(POSTS)]
    messages.append(messages[0])  # one resend: de-duplicated
    messages.append(b"{not json")  # one malformed line: dead-lettered
    produce(ingest_topics, messages)  # the news backlog is on the broker before the first post
    settings = IngestSettings(**ingest_topics.settings(), batch_size=50, max_poll_records=300, metrics_port=0)
    recorder = RecordingStore(store)
    worker = Worker(settings, RulePredictor(), recorder, IngestMetrics(CollectorRegistry()))
    with caplog.at_level(logging.INFO, logger="ingest.worker"):
        await asyncio.wait_for(worker.run(asyncio.Event(), exit_when_idle_s=1.0), timeout=300)

    assert recorder.order.count("news") == NEWS and recorder.order.count("post") == POSTS
    last_post = max(i for i, kind in enumerate(recorder.order) if kind == "post")
    news_before = recorder.order[:last_post].count("news")
    assert news_before < NEWS / 4, f"posts waited for {news_before} of {NEWS} news"  # drained one after the other
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("worker stopped"))
    assert f"{NEWS + POSTS} stored, 1 de-duplicated, 1 dead-lettered; lag 0" in summary
