"""The fault matrix on a real broker and a real ClickHouse (chdb; over HTTP where the server must go away).

Each fault ends with the same verdict: every valid document exactly once in what queries read (and predicted by
one insert only), every malformed message in a dead-letter topic, every produced message resolved once across
the workers (nothing replayed, nothing silently dropped), and no lag. The worker SIGKILL and the Triton restart
faults live in test_worker_kafka.py and tests/inference/serving (see RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store
from ingest.worker import Worker
from tests.fixtures.clickhouse import ChdbHttpFront
from tests.fixtures.kafka import KAFKA_SCRIPT, IngestTopics
from tests.ingest.doubles import FlakyStore, RulePredictor, SharedStore
from tests.ingest.kafka_checks import check_dead_letters, check_no_replay, check_store, consumer_lag, produce
from tests.ingest.stream_data import MAX_MESSAGE_BYTES, Stream, build_stream

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _settings(topics: IngestTopics, **more: object) -> IngestSettings:
    base = dict(max_message_bytes=MAX_MESSAGE_BYTES, batch_size=16, max_poll_records=50, backoff_initial_s=0.05,
                backoff_max_s=0.5, metrics_port=0)
    return IngestSettings(**topics.settings(), **{**base, **more})


def _worker(settings: IngestSettings, store: object) -> Worker:
    return Worker(settings, RulePredictor(), store, IngestMetrics(CollectorRegistry()))  # type: ignore[arg-type]


def _stored(worker: Worker) -> float:
    value = worker.metrics.registry.get_sample_value
    return sum(value("finmon_documents_total", {"source": s, "kind": k, "outcome": "stored"}) or 0
               for s, k in (("wire", "news"), ("social", "post")))


def _pauses(worker: Worker, cause: str) -> float:
    return worker.metrics.registry.get_sample_value("finmon_backpressure_pauses_total", {"cause": cause}) or 0


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _verdict(topics: IngestTopics, store: Store, stream: Stream, *workers: Worker) -> int:
    """Every valid document exactly once, nothing replayed or dropped, every bad one dead-lettered, lag 0."""
    stored = check_store(store, stream, RulePredictor.model_version, one_worker=len(workers) == 1)
    check_no_replay(stream, stored, *(w.metrics for w in workers))
    check_dead_letters(topics, stream, exact=True)
    assert set(consumer_lag(topics).values()) == {0}
    return stored


async def test_one_worker_joins_and_another_leaves_mid_stream(ingest_topics: IngestTopics, store: Store) -> None:
    """The leaver flushes and commits before it goes; the one that stays takes its partitions over."""
    stream = build_stream(2000, seed=21)
    produce(ingest_topics, stream.messages)
    settings, shared = _settings(ingest_topics), SharedStore(store)
    leaver, stayer = _worker(settings, shared), _worker(settings, shared)
    leave = asyncio.Event()
    run_leaver = asyncio.create_task(leaver.run(leave))
    await _until(lambda: _stored(leaver) >= 300, "the first worker stored 300")
    run_stayer = asyncio.create_task(stayer.run(asyncio.Event(), exit_when_idle_s=2.0))
    await _until(lambda: _stored(stayer) >= 200, "the joining worker stored 200")
    leave.set()
    await asyncio.wait_for(run_leaver, timeout=120)
    left_after = _stored(leaver)
    await asyncio.wait_for(run_stayer, timeout=600)

    assert _stored(leaver) == left_after and left_after < len(stream.expected_ids)
    assert _stored(stayer) > 200, "the worker that stayed did not take the partitions over"
    _verdict(ingest_topics, store, stream, leaver, stayer)


async def test_an_idle_worker_waits_for_partitions_another_member_holds(ingest_topics: IngestTopics,
                                                                         store: Store) -> None:
    """``exit_when_idle_s`` means the group's stream is drained, not this member's share: while another member
    holds partitions with records nobody committed, an idle worker keeps running; once that member leaves, it
    takes them over, reads them and only then exits (it used to exit on its own share: documents left unread)."""
    stream = build_stream(400, seed=31)
    produce(ingest_topics, stream.messages)
    holder = AIOKafkaConsumer(ingest_topics.news_topic, ingest_topics.posts_topic, group_id=ingest_topics.group_id,
                              bootstrap_servers=ingest_topics.bootstrap_servers, enable_auto_commit=False)
    await holder.start()
    try:
        await _until(lambda: bool(holder.assignment()), "the holder joined the group")
        worker = _worker(_settings(ingest_topics), store)
        run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=0.5))
        await _until(lambda: _stored(worker) > 0 or run.done(), "the worker stored its share")
        held = holder.assignment()
        assert held and worker.consumer is not None and not held & worker.consumer.assignment()
        await asyncio.sleep(4)  # many idle periods of 0.5 s on its own, drained share
        assert not run.done(), "the worker exited while the group still had partitions to read"
        assert _stored(worker) < len(stream.expected_ids)
    finally:
        await holder.stop()  # leaves the group: its partitions go to the worker
    await asyncio.wait_for(run, timeout=300)
    _verdict(ingest_topics, store, stream, worker)


@pytest.fixture
def clickhouse_front(tmp_path: Path) -> Iterator[dict[str, ChdbHttpFront]]:
    """A ChdbHttpFront that a test may stop and bring back on the same port (``fronts["now"]`` is the live one)."""
    fronts = {"now": ChdbHttpFront(tmp_path / "chdb-front").start()}
    try:
        yield fronts
    finally:
        fronts["now"].stop()


async def test_clickhouse_unavailable_for_a_while(ingest_topics: IngestTopics, clickhouse_front, tmp_path: Path) -> None:
    """The real HTTP front of ClickHouse goes away mid-stream: the worker pauses, commits nothing more, and
    resumes when the server is back at its address."""
    stream = build_stream(1500, seed=23)
    produce(ingest_topics, stream.messages)
    front = clickhouse_front["now"]
    store = Store.open(front.url, "faults")
    store.migrate()
    worker = _worker(_settings(ingest_topics), store)
    run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=2.0))
    await _until(lambda: _stored(worker) >= 300, "300 documents stored")
    front.stop()
    await _until(lambda: _pauses(worker, "clickhouse") >= 1, "a clickhouse backpressure pause")
    lag = sum((await asyncio.to_thread(consumer_lag, ingest_topics)).values())
    await asyncio.sleep(3)  # retries meanwhile, with backoff
    assert not worker.ready() and not run.done()
    assert sum((await asyncio.to_thread(consumer_lag, ingest_topics)).values()) == lag > 0  # nothing committed
    clickhouse_front["now"] = ChdbHttpFront(tmp_path / "chdb-front", port=front.port).start()
    await asyncio.wait_for(run, timeout=300)
    _verdict(ingest_topics, store, stream, worker)
    store.close()


def _set_topic_config(bootstrap: str, topics: list[str], **configs: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs=configs) for t in topics])
    finally:
        admin.close()


async def test_dead_letter_topic_unwritable(ingest_topics: IngestTopics, store: Store) -> None:
    """The broker refuses every dead letter (the topics take no record that large): a bad message is not
    admitted, consumption pauses on it, and nothing behind it is committed until the letters go through."""
    stream = build_stream(1000, seed=27)
    dlqs = [ingest_topics.news_dlq_topic, ingest_topics.posts_dlq_topic]
    await asyncio.to_thread(_set_topic_config, ingest_topics.bootstrap_servers, dlqs, **{"max.message.bytes": "64"})
    produce(ingest_topics, stream.messages)
    worker = _worker(_settings(ingest_topics), store)
    run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=2.0))
    await _until(lambda: _pauses(worker, "dead_letter") >= 1, "a dead_letter backpressure pause")
    await asyncio.sleep(2)
    assert not worker.ready() and not run.done()
    assert set((await asyncio.to_thread(consumer_lag, ingest_topics)).values()) != {0}
    await asyncio.to_thread(_set_topic_config, ingest_topics.bootstrap_servers, dlqs,
                            **{"max.message.bytes": str(1024 * 1024)})
    await asyncio.wait_for(run, timeout=300)
    _verdict(ingest_topics, store, stream, worker)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A broker of this test alone (it is stopped and restarted): {"dir", "bootstrap"}."""
    run_dir = tmp_path / "kafka"
    started = subprocess.run([str(KAFKA_SCRIPT), "start", "--dir", str(run_dir)], capture_output=True, text=True,
                             timeout=180)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        yield {"dir": str(run_dir), "bootstrap": started.stdout.strip().splitlines()[-1]}
    finally:
        subprocess.run([str(KAFKA_SCRIPT), "stop", "--dir", str(run_dir)], capture_output=True, timeout=60)


async def test_broker_stopped_30_s_and_restarted(own_broker: dict[str, str], store: Store,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    bootstrap = own_broker["bootstrap"]
    names = [f"{p}.{uuid.uuid4().hex[:8]}" for p in ("news.raw", "posts.raw", "news.dlq", "posts.dlq")]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1) for n in names])
    admin.close()
    topics = IngestTopics(bootstrap, *names, group_id=f"finmon-test-{uuid.uuid4().hex[:8]}")
    stream = build_stream(1500, seed=29)
    produce(topics, stream.messages)
    worker = _worker(_settings(topics, batch_timeout_s=0.2), store)
    run = asyncio.create_task(worker.run(asyncio.Event(), exit_when_idle_s=3.0))
    await _until(lambda: _stored(worker) >= 300, "300 documents stored")
    stop = await asyncio.to_thread(subprocess.run, [str(KAFKA_SCRIPT), "stop", "--dir", own_broker["dir"]],
                                   capture_output=True, timeout=60)
    assert stop.returncode == 0
    down_at = _stored(worker)
    await asyncio.sleep(30)
    assert not run.done(), "the worker gave up while the broker was down"
    port = bootstrap.rsplit(":", 1)[1]
    started = await asyncio.to_thread(subprocess.run, [str(KAFKA_SCRIPT), "start", "--dir", own_broker["dir"],
                                                       "--port", port], capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-3000:]
    await asyncio.wait_for(run, timeout=300)
    assert _stored(worker) > down_at
    _verdict(topics, store, stream, worker)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("ingest", "finmon"))]


async def test_stop_during_an_outage_commits_nothing_and_returns(ingest_topics: IngestTopics, store: Store) -> None:
    """Asked to stop while ClickHouse is down: the worker returns at once; the unflushed batch stays
    uncommitted (the next run consumes it), nothing is lost."""
    stream = build_stream(400, seed=31)
    produce(ingest_topics, stream.messages)
    flaky = FlakyStore(store)
    flaky.down = True
    settings = _settings(ingest_topics)
    worker, stop = _worker(settings, flaky), asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    await _until(lambda: _pauses(worker, "clickhouse") >= 1, "a clickhouse backpressure pause")
    stop.set()
    await asyncio.wait_for(run, timeout=30)
    assert sum(consumer_lag(ingest_topics).values()) == len(stream.messages)
    assert store.query(f"SELECT count() AS n FROM {DOCUMENTS}")[0]["n"] == 0
    again = _worker(settings, store)
    await asyncio.wait_for(again.run(asyncio.Event(), exit_when_idle_s=2.0), timeout=300)
    stored = check_store(store, stream, RulePredictor.model_version)
    assert stored > 0 and set(consumer_lag(ingest_topics).values()) == {0}


async def test_a_failed_commit_is_retried_by_the_next_one(ingest_topics: IngestTopics, store: Store,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The group coordinator rejects two commits (as during a rebalance): the worker logs it and goes on; the
    next commit carries the offsets, so nothing is replayed and the lag still drains to 0."""
    stream = build_stream(600, seed=33)
    produce(ingest_topics, stream.messages)
    worker = _worker(_settings(ingest_topics), store)
    failures = []

    async def start_failing() -> None:
        await _until(lambda: worker.consumer is not None and _stored(worker) > 0, "the first batch stored")
        consumer = worker.consumer
        assert consumer is not None
        real = consumer.commit

        async def commit(offsets=None):  # noqa: ANN001
            if len(failures) < 2:
                failures.append(offsets)
                raise CommitFailedError("the group rebalanced")
            return await real(offsets)

        consumer.commit = commit  # type: ignore[method-assign]

    failing = asyncio.create_task(start_failing())
    await asyncio.wait_for(worker.run(asyncio.Event(), exit_when_idle_s=2.0), timeout=300)
    await failing
    assert len(failures) == 2
    assert sum("commit of" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records) == 2
    _verdict(ingest_topics, store, stream, worker)
