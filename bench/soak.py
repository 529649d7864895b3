"""Soak: a sustained stream at the measured capacity through real Kafka -> `finmon worker` -> ClickHouse (chdb),
loopback only, bounded in time. Prints a table of samples and the verdict.

    python -m bench.soak [--minutes 10] [--load 0.9] [--calibration-docs 3000] [--out soak.json]

1. starts a broker (scripts/kafka, temp dir), fresh topics, and one `finmon worker` subprocess (in-process model,
   embedded ClickHouse in a temp dir, /metrics on a free port);
2. measures the capacity: a backlog of ``--calibration-docs`` documents, timed from first to last stored;
3. produces unique documents at ``--load`` x capacity for ``--minutes``, sampling every ``--sample-s`` seconds the
   consumer lag (the worker's gauge), documents stored, and the worker's RSS (/proc/PID/status VmRSS);
4. stops producing and times how long the lag takes to reach 0 (recovery);
5. stops the worker with SIGTERM (exit 0 expected), reads ClickHouse: every produced document stored exactly once
   (raw row count, no FINAL) and greps the worker's log for ERROR lines.

Pass: RSS at the end within ``--rss-tolerance`` (10 %) of the start of the sustained phase, lag back to 0, no ERROR
logged, every document once. Exit code 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ingest.produce import Pacer, kafka_producer
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store

REPO = Path(__file__).resolve().parents[1]
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Holdings", "Stark Industries", "Wayne Enterprises",
             "Hooli", "Vandelay Imports", "Wonka", "Cyberdyne Systems")
EVENTS = ("shares fell {n}% after weak guidance", "beat earnings estimates by {n} cents",
          "announced a ${n} million buyback", "cut its dividend by {n}%", "faces a probe over accounting",
          "raised prices by {n}% amid strong demand", "plans to cut {n} jobs", "stock jumps {n}% on takeover talk")


@dataclass
class Sample:
    t_s: float
    produced: int
    stored: int
    lag: int
    rss_mb: float


@dataclass
class Report:
    minutes: float
    capacity_docs_s: float
    rate_docs_s: float
    produced: int = 0
    stored_rows: int = 0
    stored_distinct: int = 0
    max_lag: int = 0
    recovery_s: float | None = None
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    worker_exit: int | None = None
    error_lines: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def failures(self, rss_tolerance: float) -> list[str]:
        """What did not hold (empty: the soak passed)."""
        failed = []
        if self.rss_start_mb <= 0 or abs(self.rss_end_mb / self.rss_start_mb - 1) > rss_tolerance:
            failed.append(f"worker RSS {self.rss_start_mb:.0f} -> {self.rss_end_mb:.0f} MB is not within "
                          f"{rss_tolerance:.0%}")
        if self.recovery_s is None:
            failed.append("the lag did not return to 0")
        if self.error_lines:
            failed.append(f"{len(self.error_lines)} ERROR lines logged, e.g. {self.error_lines[0]}")
        if not (self.stored_rows == self.stored_distinct == self.produced):
            failed.append(f"produced {self.produced}, stored {self.stored_rows} rows of {self.stored_distinct} ids")
        if self.worker_exit != 0:
            failed.append(f"the worker exited with {self.worker_exit} on SIGTERM")
        return failed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _document(i: int, run: str) -> bytes:
    company, event = COMPANIES[i % len(COMPANIES)], EVENTS[(i // len(COMPANIES)) % len(EVENTS)].format(n=i % 97 + 1)
    kind = "news" if i % 3 else "post"
    return json.dumps({"id": f"{run}-{i:08d}", "source": "soak", "kind": kind,
                       "published_at": datetime.now(UTC).isoformat(),
                       "text": f"{company} {event} (update {i})"}).encode()


class Worker:
    """The `finmon worker` subprocess and its /metrics."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        self.port, self.log_path = port, log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "finmon"), "worker"], env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    def metrics(self) -> tuple[int, int]:
        """(documents stored, total consumer lag) from /metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        stored = lag = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "finmon_documents_total" and s.labels.get("outcome") == "stored":
                    stored += s.value
                elif s.name == "finmon_consumer_lag":
                    lag += s.value
        return int(stored), int(lag)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the worker exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit("the worker did not become ready")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(120)
        finally:
            self._log.close()


class Producer(threading.Thread):
    """Sends unique documents at ``rate`` per second until stopped (or ``count`` documents, when given)."""

    def __init__(self, settings: IngestSettings, run: str, start: int, rate: float | None,
                 count: int | None = None) -> None:
        super().__init__(daemon=True)
        self._settings, self._run, self._next, self._rate, self._count = settings, run, start, rate, count
        self.sent = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        producer = kafka_producer(self._settings)
        pacer = Pacer(rate=self._rate) if self._rate else None
        topics = {"news": self._settings.news_topic, "post": self._settings.posts_topic}
        try:
            while not self.stop_event.is_set() and (self._count is None or self.sent < self._count):
                if pacer:
                    pacer.wait(None)
                i = self._next + self.sent
                producer.send(topics["news" if i % 3 else "post"], value=_document(i, self._run),
                              key=f"{self._run}-{i:08d}".encode())
                self.sent += 1
            producer.flush()
        finally:
            producer.close()


def _wait(predicate, timeout_s: float, every_s: float = 0.5) -> float | None:  # noqa: ANN001
    """Seconds until ``predicate()`` held, or None after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(every_s)
    return None


def soak(args: argparse.Namespace, work: Path) -> Report:
    kafka_dir = work / "kafka"
    started = subprocess.run([str(REPO / "scripts" / "kafka"), "start", "--dir", str(kafka_dir)], check=True,
                             capture_output=True, text=True, timeout=180)
    bootstrap = started.stdout.strip().splitlines()[-1]
    worker: Worker | None = None
    try:
        from kafka.admin import KafkaAdminClient, NewTopic

        run = uuid.uuid4().hex[:6]
        topics = {"news_topic": f"soak.news.{run}", "posts_topic": f"soak.posts.{run}",
                  "news_dlq_topic": f"soak.news.dlq.{run}", "posts_dlq_topic": f"soak.posts.dlq.{run}"}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1)
                             for t in topics.values()])
        admin.close()
        values = {**topics, "bootstrap_servers": bootstrap, "group_id": f"soak-{run}",
                  "clickhouse_dsn": f"chdb://{work / 'chdb'}", "batch_size": str(args.batch_size),
                  "metrics_port": str(_free_port())}
        settings = IngestSettings(**values)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINMON_INGEST_")}
        env.update({f"FINMON_INGEST_{k.upper()}": v for k, v in values.items()})
        worker = Worker(env, work / "worker.log", settings.metrics_port)
        worker.wait_ready(300)

        # capacity: a backlog drained as fast as the worker can
        backlog = Producer(settings, run, 0, None, args.calibration_docs)
        backlog.start()
        first = _wait(lambda: worker.metrics()[0] > 0, 300, 0.1)
        t0 = time.monotonic()
        if first is None or _wait(lambda: worker.metrics()[0] >= args.calibration_docs, 900, 0.2) is None:
            raise SystemExit("the calibration backlog was not stored")
        backlog.join()
        capacity = (args.calibration_docs - 1) / max(time.monotonic() - t0, 1e-6)
        rate = capacity * args.load
        report = Report(args.minutes, capacity, rate)
        print(f"capacity {capacity:.1f} docs/s; sustaining {rate:.1f} docs/s for {args.minutes} min", flush=True)

        stream = Producer(settings, run, args.calibration_docs, rate)
        report.rss_start_mb = worker.rss_mb()
        began = time.monotonic()
        stream.start()
        while (elapsed := time.monotonic() - began) < args.minutes * 60:
            time.sleep(min(args.sample_s, max(0.0, args.minutes * 60 - elapsed)))
            stored, lag = worker.metrics()
            sample = Sample(round(time.monotonic() - began, 1), backlog.sent + stream.sent, stored, lag,
                            round(worker.rss_mb(), 1))
            report.samples.append(sample)
            report.max_lag = max(report.max_lag, lag)
            print(f"{sample.t_s:8.1f}s produced {sample.produced:8d} stored {sample.stored:8d} lag {lag:6d} "
                  f"rss {sample.rss_mb:7.1f} MB", flush=True)
        report.rss_end_mb = worker.rss_mb()
        stream.stop_event.set()
        stream.join()
        report.produced = backlog.sent + stream.sent
        report.recovery_s = _wait(lambda: worker.metrics() == (report.produced, 0), args.recovery_timeout_s)
        report.worker_exit = worker.stop()
        worker = None
        report.error_lines = [line for line in (work / "worker.log").read_text().splitlines() if " ERROR " in line]
        with Store.open(f"chdb://{work / 'chdb'}") as store:
            row = store.query(f"SELECT count() AS n, uniqExact(doc_id) AS ids FROM {DOCUMENTS}")[0]
        report.stored_rows, report.stored_distinct = int(row["n"]), int(row["ids"])
        return report
    finally:
        if worker is not None:
            worker.stop()
        subprocess.run([str(REPO / "scripts" / "kafka"), "stop", "--dir", str(kafka_dir)], capture_output=True,
                       timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.9, help="fraction of the measured capacity to sustain")
    parser.add_argument("--calibration-docs", type=int, default=3000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sample-s", type=float, default=15.0)
    parser.add_argument("--recovery-timeout-s", type=float, default=300.0)
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--keep", type=Path, help="work in this directory (kept) instead of a temporary one")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = soak(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="finmon-soak-") as tmp:
            report = soak(args, Path(tmp))
    failed = report.failures(args.rss_tolerance)
    rows = [("minutes sustained", f"{report.minutes:g}"), ("capacity (docs/s)", f"{report.capacity_docs_s:.1f}"),
            ("sustained rate (docs/s)", f"{report.rate_docs_s:.1f}"), ("documents produced", report.produced),
            ("rows stored / distinct ids", f"{report.stored_rows} / {report.stored_distinct}"),
            ("max consumer lag (msgs)", report.max_lag),
            ("lag back to 0 after the stream (s)", "never" if report.recovery_s is None else f"{report.recovery_s:.1f}"),
            ("worker RSS start -> end (MB)", f"{report.rss_start_mb:.0f} -> {report.rss_end_mb:.0f} "
                                             f"({(report.rss_end_mb / max(report.rss_start_mb, 1e-9) - 1):+.1%})"),
            ("ERROR lines in the worker log", len(report.error_lines)), ("worker exit on SIGTERM", report.worker_exit),
            ("verdict", "PASS" if not failed else "FAIL: " + "; ".join(failed))]
    width = max(len(name) for name, _ in rows)
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    if args.out:
        args.out.write_text(json.dumps(asdict(report), indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
