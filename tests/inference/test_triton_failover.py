"""Triton goes away and comes back: the client fails fast and recovers, and the Kafka ingest worker pauses,
resumes and stores every document exactly once (real tritonserver, real Kafka broker, real ClickHouse/chdb).

Stream size: FINMON_TEST_TRITON_STREAM_SIZE (default 1,500 messages; tests/ingest/stream_data.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from inference.errors import ModelUnavailable
from inference.serving.resilience import BreakerState
from inference.serving.triton_client import TritonPredictor
from inference.serving.triton_server import TritonServer
from inference.serving.triton_settings import TritonSettings

pytestmark = pytest.mark.triton
STREAM_SIZE = int(os.environ.get("FINMON_TEST_TRITON_STREAM_SIZE", "1500"))
TEXTS = ["Globex shares fell 12% after weak guidance", "Wonka beat earnings estimates by 3 cents"]


def _settings(server: TritonServer, protocol: str = "grpc", **overrides: object) -> TritonSettings:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    values = {"url": url, "protocol": protocol, "retries": 1, "backoff_base_s": 0.05, "breaker_failures": 2,
              "breaker_reset_s": 0.5, "request_timeout_s": 5.0, **overrides}
    return TritonSettings(**values)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_client_fails_fast_while_the_server_is_down_and_recovers_after_restart(
    triton_server_factory, model_settings_for_tests, protocol: str
) -> None:
    server = triton_server_factory()
    with TritonPredictor.from_settings(_settings(server, protocol), model_settings_for_tests) as predictor:
        before = predictor.predict(TEXTS)
        server.kill()
        with pytest.raises(ModelUnavailable) as first:
            predictor.predict(TEXTS)
        assert first.value.code in {"UNAVAILABLE", "UNREACHABLE", "BREAKER_OPEN"}
        assert predictor.breaker.state is BreakerState.OPEN
        with pytest.raises(ModelUnavailable) as fast:
            predictor.predict(TEXTS)  # no network call: the breaker answers
        assert fast.value.code == "BREAKER_OPEN"

        server.start()  # same ports: the client's channel reconnects
        deadline = time.monotonic() + 30
        while True:
            try:
                after = predictor.predict(TEXTS)
                break
            except ModelUnavailable:
                assert time.monotonic() < deadline, "the client never recovered"
                time.sleep(0.2)
        assert predictor.breaker.state is BreakerState.CLOSED
        assert [(p.topic, p.sentiment) for p in after] == [(p.topic, p.sentiment) for p in before]
        for a, b in zip(after, before):
            assert a.topic_probs == pytest.approx(b.topic_probs, abs=1e-5)


def _recovered(predictor: TritonPredictor, timeout_s: float = 30) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return predictor.predict(TEXTS)
        except ModelUnavailable:
            assert time.monotonic() < deadline, "the client never recovered"
            time.sleep(0.2)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_hanging_server_is_unavailable_after_the_request_timeout_not_a_hang(
    triton_server_factory, model_settings_for_tests, protocol: str
) -> None:
    """The server process is frozen (SIGSTOP: it accepts connections and never answers, like a stuck GPU): each
    call ends with ModelUnavailable after its timeout and retries; it recovers when the server thaws."""
    server = triton_server_factory()
    settings = _settings(server, protocol, request_timeout_s=1.0, breaker_failures=1, breaker_reset_s=0.5)
    with TritonPredictor.from_settings(settings, model_settings_for_tests) as predictor:
        before = predictor.predict(TEXTS)
        assert server.pid is not None
        os.killpg(server.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ModelUnavailable) as hung:
                predictor.predict(TEXTS)
            assert hung.value.code in {"TIMEOUT", "UNAVAILABLE", "UNREACHABLE", "DEADLINE_EXCEEDED", "BREAKER_OPEN"}
            with pytest.raises(ModelUnavailable) as fast:
                predictor.predict(TEXTS)
            assert fast.value.code == "BREAKER_OPEN"
        finally:
            os.killpg(server.pid, signal.SIGCONT)
        after = _recovered(predictor)
        assert [(p.topic, p.sentiment) for p in after] == [(p.topic, p.sentiment) for p in before]


def test_start_waits_for_a_server_that_is_still_starting(cpu_repository, tmp_path, model_settings_for_tests) -> None:
    server = TritonServer(cpu_repository, log_file=tmp_path / "late.log")
    later = threading.Timer(1.5, server.start)
    later.start()
    try:
        with TritonPredictor.from_settings(_settings(server, ready_timeout_s=60), model_settings_for_tests) as p:
            assert len(p.predict(TEXTS)) == 2
    finally:
        later.join()
        server.stop()


@pytest.mark.kafka
async def test_worker_pauses_while_triton_is_down_and_every_document_lands_once(
    triton_server_factory, model_settings_for_tests, ingest_topics, store
) -> None:
    from ingest.metrics import IngestMetrics
    from ingest.settings import IngestSettings
    from ingest.worker import Worker
    from tests.ingest.kafka_checks import check_dead_letters, check_store, consumer_lag
    from tests.ingest.stream_data import MAX_MESSAGE_BYTES, build_stream
    from tests.ingest.test_worker_kafka import produce

    stream = build_stream(STREAM_SIZE)
    produce(ingest_topics, stream.messages)
    server = triton_server_factory()
    predictor = TritonPredictor.from_settings(_settings(server, retries=2), model_settings_for_tests)
    settings = IngestSettings(**ingest_topics.settings(), max_message_bytes=MAX_MESSAGE_BYTES, batch_size=32,
                              metrics_port=0, backoff_initial_s=0.2, backoff_max_s=1.0)
    metrics = IngestMetrics(CollectorRegistry())
    worker = Worker(settings, predictor, store, metrics)

    def stored() -> float:
        return sum(metrics.registry.get_sample_value("finmon_documents_total",
                                                     {"source": s, "kind": k, "outcome": "stored"}) or 0
                   for s, k in (("wire", "news"), ("social", "post")))

    run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=3.0))
    try:
        deadline = time.monotonic() + 600
        while stored() < len(stream.expected_ids) / 3:
            assert not run.done(), run.exception() if run.done() else None
            assert time.monotonic() < deadline, "the worker made no progress"
            await asyncio.sleep(0.05)
        server.kill()
        at_kill = stored()
        deadline = time.monotonic() + 60
        while worker.consuming:  # the worker notices and pauses its partitions
            assert time.monotonic() < deadline, "the worker never paused"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # down for a while: nothing may be stored (no prediction, no insert)
        assert stored() == at_kill
        assert metrics.registry.get_sample_value("finmon_backpressure_pauses_total", {"cause": "model"}) >= 1

        await asyncio.to_thread(server.start)
        await asyncio.wait_for(run, timeout=600)
    finally:
        if not run.done():
            run.cancel()
        predictor.close()

    assert at_kill < len(stream.expected_ids), "the kill came too late to test anything"
    check_store(store, stream, predictor.model_version)
    check_dead_letters(ingest_topics, stream, exact=True)
    assert set(consumer_lag(ingest_topics).values()) == {0}
