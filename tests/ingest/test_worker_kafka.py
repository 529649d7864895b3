"""The ingest worker on a real Kafka broker and a real ClickHouse (chdb): exactly once, dead letters, lag 0,
and a SIGKILL in the middle of the stream.

Stream size: FINMON_TEST_STREAM_SIZE (default 10,000 messages: 2% malformed, 1% resends, 1% reposts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from inference.serving.predictor import Predictor
from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.store import Store
from ingest.worker import Worker
from tests.fixtures.kafka import IngestTopics
from tests.ingest.kafka_checks import check_dead_letters, check_store, consumer_lag, produce, stored_so_far
from tests.ingest.stream_data import MAX_MESSAGE_BYTES, build_stream

pytestmark = pytest.mark.kafka
STREAM_SIZE = int(os.environ.get("FINMON_TEST_STREAM_SIZE", "10000"))


@pytest.fixture(scope="module")
def stream():
    return build_stream(STREAM_SIZE)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    from inference.serving.predictor import load_predictor

    return load_predictor()  # the real shipped model, as the worker subprocess loads it


async def test_every_valid_document_once_every_malformed_one_dead_lettered_lag_zero(
    ingest_topics: IngestTopics, store: Store, stream, predictor: Predictor
) -> None:
    produce(ingest_topics, stream.messages)
    settings = IngestSettings(**ingest_topics.settings(), max_message_bytes=MAX_MESSAGE_BYTES, batch_size=64,
                              metrics_port=0)
    metrics = IngestMetrics(CollectorRegistry())
    worker = Worker(settings, predictor, store, metrics)
    await asyncio.wait_for(worker.run(asyncio.Event(), exit_when_idle_s=2.0), timeout=900)

    stored = check_store(store, stream, predictor.model_version)
    check_dead_letters(ingest_topics, stream, exact=True)
    assert set(consumer_lag(ingest_topics).values()) == {0}
    lag = [s.value for m in metrics.consumer_lag.collect() for s in m.samples]
    assert lag and set(lag) == {0}
    value = metrics.registry.get_sample_value
    total_stored = sum(value("finmon_documents_total", {"source": s, "kind": k, "outcome": "stored"}) or 0
                       for s, k in (("wire", "news"), ("social", "post")))
    assert total_stored == stored
    assert value("finmon_dead_letters_total", {"reason": "not_utf8"}) == stream.malformed["not_utf8"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_in_the_middle_and_restart_still_exactly_once(
    ingest_topics: IngestTopics, tmp_path: Path, stream, predictor: Predictor
) -> None:
    produce(ingest_topics, stream.messages)
    port = _free_port()
    env = ingest_topics.env(clickhouse_dsn=f"chdb://{tmp_path / 'chdb'}", max_message_bytes=MAX_MESSAGE_BYTES,
                            batch_size=64, metrics_port=port)
    command = [str(Path(sys.executable).parent / "finmon"), "worker"]
    log_file = (tmp_path / "worker.log").open("w")
    first = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while stored_so_far(port) < len(stream.expected_ids) / 3:
            assert first.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert set(consumer_lag(ingest_topics).values()) != {0}, "the kill came too late to test anything"

    second = subprocess.run([*command, "--exit-when-idle", "2"], env=env, stdout=log_file,
                            stderr=subprocess.STDOUT, timeout=900)
    assert second.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert set(consumer_lag(ingest_topics).values()) == {0}

    with Store.open(f"chdb://{tmp_path / 'chdb'}") as store:  # the worker has exited: the data dir is free
        check_store(store, stream, predictor.model_version)
    check_dead_letters(ingest_topics, stream, exact=False)
