"""`finmon bench e2e`: the real path, Kafka -> ingest worker -> ClickHouse, against the model alone.

1. model: the in-process predictor (built as ``load_predictor`` builds it: model batches of
   ``FINMON_MODEL_BATCH_SIZE``) on the same texts (tag included), in the worker's batches (``model_docs_per_s``);
2. capacity: a backlog of ``--docs`` documents is produced first, then the worker (the production ``Worker``, in
   this process, on an embedded ClickHouse) drains it: ``pipeline_docs_per_s`` (from its first insert to the one
   before the last, which carries the partial batch the timeout released) and ``fraction`` of the model's;
3. latency: documents are produced at 50 % and 100 % of that capacity for a while; each one's produce -> queryable
   time is the time from the producer's send to the return of the store's insert that carried it (chdb inserts
   are synchronous: a SELECT issued then sees the rows; the final count is checked by a query). The producer is
   a process of its own (``python -m bench.e2e --produce``), as a feed is.

``fraction_per_cpu_s`` compares docs per CPU-second of this process (worker + embedded ClickHouse; the broker
and the producer are other processes and not counted) with the model's alone: on a loaded machine, the
wall-clock ``fraction`` also measures how the scheduler shared the cores with the broker and everyone else.

Kafka is started with scripts/kafka unless ``--bootstrap`` names a running broker. Texts are real tweets made
unique (the dedup stage would drop repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from bench.corpus import texts
from bench.report import REPO, Report, cpu_seconds
from inference.serving.predictor import OnnxPredictor
from inference.settings import model_settings
from inference.serving.triton_repository import latest_version
from ingest.dedup import Deduplicator
from ingest.metrics import IngestMetrics
from ingest.produce import kafka_producer
from ingest.records import EnrichedDocument
from ingest.settings import IngestSettings, ingest_settings
from ingest.store import DOCUMENTS, Store
from ingest.worker import Worker


class TimedStore:
    """The real store, noting when each document's insert returned (= when it became queryable)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stored_at: dict[str, float] = {}

    def write_batch(self, docs: Sequence[EnrichedDocument]) -> None:
        self.store.write_batch(docs)
        now = time.time()
        for d in docs:
            self.stored_at[d.doc.id] = now


@contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    script = REPO / "scripts" / "kafka"
    with tempfile.TemporaryDirectory() as run_dir:
        started = subprocess.run([str(script), "start", "--dir", run_dir], capture_output=True, text=True, timeout=240)
        if started.returncode != 0:
            raise RuntimeError(f"scripts/kafka start failed: {started.stderr[-2000:]}")
        try:
            yield started.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run([str(script), "stop", "--dir", run_dir], capture_output=True, timeout=120)


def _topics(bootstrap: str) -> dict[str, str]:
    from kafka.admin import KafkaAdminClient, NewTopic

    tag = uuid.uuid4().hex[:8]
    names = {"news_topic": f"bench.news.{tag}", "posts_topic": f"bench.posts.{tag}",
             "news_dlq_topic": f"bench.news.dlq.{tag}", "posts_dlq_topic": f"bench.posts.dlq.{tag}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="finmon-bench")
    try:
        admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names.values()])
    finally:
        admin.close()
    return {**names, "group_id": f"finmon-bench-{tag}"}


def _message(doc_id: str, text: str) -> bytes:
    return json.dumps({"schema_version": 1, "id": doc_id, "source": "bench", "kind": "post",
                       "published_at": datetime.now(UTC).isoformat(), "text": text}).encode()


class Bench:
    def __init__(self, settings: IngestSettings, predictor: OnnxPredictor, store: TimedStore) -> None:
        self.settings, self.store = settings, store
        self.worker = Worker(settings, predictor, store, IngestMetrics(CollectorRegistry()),  # type: ignore[arg-type]
                             Deduplicator(settings.dedup_window_s, settings.dedup_max_entries))
        self.sent_at: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="bench-worker", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.worker.run(self._stop))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def produce(self, batch: Sequence[tuple[str, str]], rate: float | None) -> None:
        """Send ``(id, text)`` pairs, at ``rate`` per second (None: as fast as the producer goes), from a producer
        process of its own, as a real feed is: in this one it shared the worker's GIL and sent in bursts."""
        request = {"bootstrap": self.settings.bootstrap_servers, "topic": self.settings.posts_topic, "rate": rate,
                   "docs": [list(pair) for pair in batch]}
        timeout = 120 + (len(batch) / rate if rate else 0)
        done = subprocess.run([sys.executable, "-m", "bench.e2e", "--produce"], input=json.dumps(request), text=True,
                              capture_output=True, timeout=timeout, cwd=REPO)
        if done.returncode != 0:
            raise RuntimeError(f"the producer process failed: {done.stderr[-2000:]}")
        self.sent_at.update(json.loads(done.stdout))

    def wait_stored(self, ids: Sequence[str], timeout_s: float) -> float:
        """Seconds until every id was stored (raises on timeout)."""
        start, deadline = time.perf_counter(), time.perf_counter() + timeout_s
        while not all(i in self.store.stored_at for i in ids):
            if time.perf_counter() > deadline:
                missing = sum(i not in self.store.stored_at for i in ids)
                raise RuntimeError(f"{missing} of {len(ids)} documents not stored after {timeout_s:.0f}s")
            time.sleep(0.05)
        return time.perf_counter() - start

    def latencies(self, ids: Sequence[str]) -> np.ndarray:
        return np.array([self.store.stored_at[i] - self.sent_at[i] for i in ids])


def model_docs_per_s(predictor: OnnxPredictor, corpus: list[str], batch_size: int) -> tuple[float, float]:
    """(docs/s, docs per CPU-second of this process) of the predictor alone."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i in range(0, len(corpus), batch_size):
        predictor.predict(corpus[i : i + batch_size])
    return len(corpus) / (time.perf_counter() - t0), len(corpus) / max(cpu_seconds() - c0, 1e-9)


def run(docs: int, bootstrap: str | None, batch_size: int, repository: Path, latency_s: float,
        batch_timeout_s: float) -> Report:
    version = latest_version(repository)
    predictor = OnnxPredictor(version.path, batch_size=model_settings().batch_size)  # as load_predictor builds it
    corpus = texts(docs)
    report = Report("e2e", ["phase", "docs", "rate asked/s", "docs/s", "p50 s", "p99 s"])
    run_tag = uuid.uuid4().hex[:6]
    unique = lambda phase, texts_: [(f"{run_tag}-{phase}-{i}", f"{t} [{run_tag}{phase}{i}]")  # noqa: E731
                                    for i, t in enumerate(texts_)]
    backlog = unique("cap", corpus)
    # the model alone reads the very texts the pipeline reads: the unique tag adds ~10 tokens to a ~44-token
    # tweet, and measuring the model on the untagged corpus made it look ~12 % faster than the work it is given
    model_texts = [t for _, t in backlog]
    predictor.predict(model_texts[:batch_size])
    model_before = model_docs_per_s(predictor, model_texts, batch_size)
    with kafka(bootstrap) as servers, tempfile.TemporaryDirectory() as tmp:
        dsn = f"chdb://{Path(tmp) / 'ch'}"
        settings = ingest_settings(bootstrap_servers=servers, clickhouse_dsn=dsn, batch_size=batch_size,
                                   batch_timeout_s=batch_timeout_s, metrics_port=0, **_topics(servers))
        with Store.open(dsn) as raw_store:
            raw_store.migrate()
            store = TimedStore(raw_store)
            bench = Bench(settings, predictor, store)
            bench.produce(backlog, None)  # a backlog on a fresh topic, before the worker starts
            bench.start()
            try:
                cpu_start = cpu_seconds()
                bench.wait_stored([i for i, _ in backlog], 1800)
                pipeline_per_cpu = len(backlog) / max(cpu_seconds() - cpu_start, 1e-9)  # start-up included
                done = sorted(store.stored_at[i] for i, _ in backlog)
                # from the first insert (its documents include the start-up) to the one before the last: the last
                # is the backlog's partial batch, which waited batch_timeout_s for documents that never came
                first, last = done.count(done[0]), done.count(done[-1])
                middle = len(done) - first - last
                capacity = (middle / max(done[-last - 1] - done[0], 1e-9) if middle > 0
                            else (len(done) - first) / max(done[-1] - done[0], 1e-9))
                model_after = model_docs_per_s(predictor, model_texts, batch_size)
                model_rate = (model_before[0] + model_after[0]) / 2
                model_per_cpu = (model_before[1] + model_after[1]) / 2
                report.add("model alone (in-process, same texts and batches; mean of before and after)",
                           len(corpus), "-", model_rate, "-", "-")
                report.add("pipeline, backlog drained", len(backlog), "-", capacity, "-", "-")
                p99 = {}
                for share in (0.5, 1.0):
                    rate = capacity * share
                    paced = unique(f"load{int(share * 100)}", texts(max(batch_size, int(rate * latency_s))))
                    ids = [i for i, _ in paced]
                    bench.produce(paced, rate)
                    bench.wait_stored(ids, 600)
                    lat = bench.latencies(ids)
                    p99[share] = float(np.percentile(lat, 99))
                    # first send to last insert: the producer process's start-up is not the pipeline's
                    span = max(store.stored_at[i] for i in ids) - min(bench.sent_at[i] for i in ids)
                    report.add(f"pipeline at {share:.0%} of capacity", len(paced), rate, len(paced) / span,
                               float(np.percentile(lat, 50)), p99[share])
            finally:
                bench.stop()
            stored = raw_store.query(f"SELECT count() AS n FROM {DOCUMENTS} FINAL WHERE source = {{s:String}}",
                                     {"s": "bench"})[0]["n"]
    expected = len(store.stored_at)
    report.figures.update({
        "model_version": version.model_version, "batch_size": batch_size, "batch_timeout_s": batch_timeout_s,
        "model_docs_per_s": model_rate, "pipeline_docs_per_s": capacity, "fraction": capacity / model_rate,
        "model_docs_per_cpu_s": model_per_cpu, "pipeline_docs_per_cpu_s": pipeline_per_cpu,
        "fraction_per_cpu_s": pipeline_per_cpu / model_per_cpu,
        "p99_latency_s_at_half_load": p99[0.5], "p99_latency_s_at_full_load": p99[1.0],
        "rows_queryable": int(stored), "rows_expected": expected,
    })
    if int(stored) != expected:
        report.notes.append(f"WARNING: {stored} rows queryable, {expected} inserted")
    return report


def main(args: argparse.Namespace) -> Report:
    return run(args.docs or (600 if args.quick else 2000), args.bootstrap, args.batch_size, args.repository,
               latency_s=10 if args.quick else 30, batch_timeout_s=args.batch_timeout)


def _produce() -> None:
    """The producer process of ``Bench.produce``: a JSON request on stdin, {id: send time} on stdout."""
    request = json.load(sys.stdin)
    producer = kafka_producer(ingest_settings(bootstrap_servers=request["bootstrap"]))
    rate, sent_at = request["rate"], {}
    start = time.perf_counter()
    for i, (doc_id, text) in enumerate(request["docs"]):
        if rate:
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sent_at[doc_id] = time.time()
        producer.send(request["topic"], value=_message(doc_id, text), key=doc_id.encode())
    producer.flush()
    producer.close()
    json.dump(sent_at, sys.stdout)


if __name__ == "__main__" and sys.argv[1:] == ["--produce"]:
    _produce()
