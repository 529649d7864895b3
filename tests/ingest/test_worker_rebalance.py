"""A consumer group on a real broker: a second worker joins mid-stream, partitions move between them (the
first flushes and commits before it lets them go), and every document still lands exactly once."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.store import Store
from ingest.worker import Worker
from tests.fixtures.kafka import IngestTopics
from tests.ingest.doubles import RulePredictor, SharedStore
from tests.ingest.kafka_checks import check_dead_letters, check_no_replay, check_store, consumer_lag, produce
from tests.ingest.stream_data import MAX_MESSAGE_BYTES, build_stream

pytestmark = pytest.mark.kafka


async def test_a_worker_joining_the_group_mid_stream(ingest_topics: IngestTopics, store: Store) -> None:
    stream = build_stream(3000, seed=5)
    produce(ingest_topics, stream.messages)
    settings = IngestSettings(**ingest_topics.settings(), max_message_bytes=MAX_MESSAGE_BYTES, batch_size=16,
                              max_poll_records=50, metrics_port=0)
    shared = SharedStore(store)
    first, second = (Worker(settings, RulePredictor(), shared, IngestMetrics(CollectorRegistry())) for _ in range(2))

    def stored(worker: Worker) -> float:
        value = worker.metrics.registry.get_sample_value
        return sum(value("finmon_documents_total", {"source": s, "kind": k, "outcome": "stored"}) or 0
                   for s, k in (("wire", "news"), ("social", "post")))

    run_first = asyncio.create_task(first.run(asyncio.Event(), exit_when_idle_s=2.0))
    for _ in range(1200):
        if stored(first) >= 300:
            break
        await asyncio.sleep(0.05)
    run_second = asyncio.create_task(second.run(asyncio.Event(), exit_when_idle_s=2.0))
    await asyncio.wait_for(asyncio.gather(run_first, run_second), timeout=600)

    assert stored(first) < len(stream.expected_ids), "the first worker finished before the second joined"
    assert stored(second) > 0, "the second worker never got a partition"
    stored_docs = check_store(store, stream, RulePredictor.model_version, one_worker=False)
    check_no_replay(stream, stored_docs, first.metrics, second.metrics)  # what each worker did adds up
    check_dead_letters(ingest_topics, stream, exact=False)
    assert set(consumer_lag(ingest_topics).values()) == {0}
