"""Backpressure on a real broker: while the model or ClickHouse is down the worker pauses, commits nothing and
reports not-ready; when it comes back everything is stored once and the lag drains to 0."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store
from ingest.worker import Worker
from tests.fixtures.kafka import IngestTopics
from tests.ingest.doubles import FlakyStore, RulePredictor
from tests.ingest.kafka_checks import check_store, consumer_lag, produce
from tests.ingest.stream_data import MAX_MESSAGE_BYTES, build_stream

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("failure", ["model", "clickhouse"])
async def test_outage_pauses_consumption_then_resumes_without_loss(
    ingest_topics: IngestTopics, store: Store, failure: str
) -> None:
    stream = build_stream(400, seed=11)
    produce(ingest_topics, stream.messages)
    predictor, flaky = RulePredictor(), FlakyStore(store)
    predictor.down, flaky.down = failure == "model", failure == "clickhouse"
    settings = IngestSettings(**ingest_topics.settings(), max_message_bytes=MAX_MESSAGE_BYTES, batch_size=32,
                              backoff_initial_s=0.05, backoff_max_s=0.2, metrics_port=0)
    metrics = IngestMetrics(CollectorRegistry())
    worker = Worker(settings, predictor, flaky, metrics)
    run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=1.0))

    pauses = {"cause": failure}
    for _ in range(600):
        if (metrics.registry.get_sample_value("finmon_backpressure_pauses_total", pauses) or 0) >= 1:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("no backpressure pause was reported")
    await asyncio.sleep(1.0)  # several retries happen meanwhile
    assert not worker.ready()
    # the first batch never reached ClickHouse, so not one offset may have been committed
    lag = await asyncio.to_thread(consumer_lag, ingest_topics)
    assert sum(lag.values()) == len(stream.messages) and not run.done()
    assert store.query(f"SELECT count() AS n FROM {DOCUMENTS}")[0]["n"] == 0

    predictor.down = flaky.down = False
    await asyncio.wait_for(run, timeout=300)
    check_store(store, stream, predictor.model_version)
    assert set((await asyncio.to_thread(consumer_lag, ingest_topics)).values()) == {0}
    assert metrics.registry.get_sample_value("finmon_backpressure_pauses_total", pauses) >= 1
