"""`finmon run` end to end, as an operator runs it: a local RSS feed -> the real model -> an embedded ClickHouse ->
the alerts runner (1-minute steps) -> a local webhook receiver; a feed that the test makes surge raises and
delivers an alert; SIGTERM stops it cleanly; a restart stores no document twice and sends no alert twice.

The feed's texts are the bundled demo stream's: its ordinary flow (time-compressed 15x, so one 15-minute step of
the demo is one minute here) and its Wells Fargo surge, all of it published in one minute."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from finmon.demo import BUNDLED_STREAM
from ingest.store import DOCUMENTS, Store
from tests.fixtures.feeds import FeedServer
from tests.ingest.stream_data import bundled_documents

FINMON = str(Path(sys.executable).parent / "finmon")
MANIFEST = json.loads(BUNDLED_STREAM.with_name("demo_stream.json").read_text())
SURGE_START = datetime.fromisoformat(MANIFEST["surge"]["start"])
BASELINE_FROM = SURGE_START - timedelta(hours=6)
pytestmark = pytest.mark.slow


def _demo_items() -> tuple[list[dict], list[dict]]:
    """(ordinary items of the 6 hours before the surge, the surge's items) from the bundled stream."""
    surge_ids, ordinary, surge, seen = set(MANIFEST["surge"]["ids"]), [], [], set()
    for key, at, text in bundled_documents(BUNDLED_STREAM):
        if key in seen:
            continue
        seen.add(key)
        if key in surge_ids:
            surge.append({"id": key, "text": text, "at": at})
        elif BASELINE_FROM <= at < SURGE_START:
            ordinary.append({"id": key, "text": text, "at": at})
    return ordinary, surge


def _rss(items: list[dict]) -> bytes:
    entries = "".join(
        f"<item><guid>{escape(i['id'])}</guid><title>{escape(i['text'][:80])}</title>"
        f"<description>{escape(i['text'])}</description><link>https://feed.example/{escape(i['id'])}</link>"
        f"<pubDate>{format_datetime(i['at'], usegmt=True)}</pubDate></item>" for i in items)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>desk</title>{entries}</channel></rss>"
            ).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """`finmon run ...` in a subprocess, its log lines collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([FINMON, "run", *args], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "finmon run exited:\n" + "".join(self.lines[-40:])
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n" + "".join(self.lines[-40:])
            time.sleep(0.2)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=5)
        return code


def _delivered(receiver) -> list:
    return [r for r in receiver.requests if r.path == "/hook"]


def test_a_surging_feed_raises_a_delivered_alert_and_a_restart_repeats_nothing(tmp_path: Path, receiver) -> None:
    ordinary, surge = _demo_items()
    now = datetime.now(UTC)
    base_end = now - timedelta(seconds=30)
    shift = lambda at: base_end - (SURGE_START - at) / 15  # noqa: E731 (the demo's 15-minute steps -> 1 minute)
    baseline = [{**i, "at": shift(i["at"])} for i in ordinary]
    feed = FeedServer()
    feed.files["/desk.rss"] = (_rss(baseline), "application/rss+xml")
    rules = tmp_path / "rules.yaml"
    rules.write_text("channels:\n  hook: {type: webhook, url_env: T_HOOK_URL, secret_env: T_HOOK_SECRET}\n"
                     "routes:\n  - channels: [hook]\n")
    port = _free_port()
    env = {**os.environ, "T_HOOK_URL": f"{receiver.url}/hook", "T_HOOK_SECRET": "s3cret",
           "FINMON_ALERTS_STEP_MINUTES": "1", "FINMON_ALERTS_POLL_SECONDS": "1", "FINMON_ALERTS_HISTORY_DAYS": "1",
           "FINMON_ALERTS_BACKOFF_SECONDS": "0.5", "FINMON_INGEST_BATCH_TIMEOUT_S": "0.2"}
    args = ["--rss", f"{feed.url}/desk.rss", "--rules", str(rules), "--dsn", f"chdb://{tmp_path / 'ch'}",
            "--dir", str(tmp_path / "run"), "--interval", "1", "--politeness", "0", "--metrics-port", str(port),
            "--since", (base_end - timedelta(minutes=30)).isoformat()]
    try:
        run = Process(args, env)
        run.wait_for("feeds: first round polled", timeout=300)
        run.wait_for("alerts: first pass done", timeout=120)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        time.sleep(2)  # a few more passes over the baseline
        assert not any("WFC" in r.body.decode() for r in _delivered(receiver)), "an alert before the surge"

        # The surge: every Wells Fargo item of the demo, published within one minute (this one, or the next
        # when this one is nearly over, so that the documents are stored before the step is scored).
        at = datetime.now(UTC).replace(second=0, microsecond=0)
        at += timedelta(minutes=1 if datetime.now(UTC).second > 30 else 0)
        surging = [{**i, "at": at + timedelta(seconds=k % 50)} for k, i in enumerate(surge)]
        feed.files["/desk.rss"] = (_rss(baseline + surging), "application/rss+xml")
        deadline = time.monotonic() + 180
        while not any("WFC" in r.body.decode() for r in _delivered(receiver)):
            assert run.proc.poll() is None and time.monotonic() < deadline, "".join(run.lines[-40:])
            time.sleep(0.5)
        alert = next(r.json() for r in _delivered(receiver) if "WFC" in r.body.decode())
        subjects = {a["subject"]["name"] for a in alert["alerts"]}
        assert "WFC" in subjects and all(a["status"] == "firing" for a in alert["alerts"])
        time.sleep(1.5)  # let the surge's documents all be stored and the pass settle
        assert run.stop() == 0
        assert any("stopped: feeds" in line for line in run.lines)
        errors = [line for line in run.lines if " ERROR " in line or "Traceback" in line]
        assert not errors, "".join(errors)
        sent = len(_delivered(receiver))

        again = Process(args, env)  # the restart: same store, same feed state, same outbox
        again.wait_for("feeds: first round polled", timeout=300)
        again.wait_for("alerts: first pass done", timeout=120)
        time.sleep(2)
        assert again.stop() == 0
    finally:
        feed.stop()
        for p in ("run", "again"):
            proc = locals().get(p)
            if proc is not None and proc.proc.poll() is None:
                proc.proc.kill()

    ids = [r.headers["x-finmon-delivery"] for r in _delivered(receiver)]
    assert len(ids) == len(set(ids)) and len(ids) >= sent  # no delivery twice (a resolution may follow)
    with Store.open(f"chdb://{tmp_path / 'ch'}") as store:
        row = store.query(f"SELECT count() AS n, uniqExact(doc_id) AS ids FROM {DOCUMENTS}")[0]
    assert row["n"] == row["ids"] == len(baseline) + len(surging)  # every item, none stored twice


@pytest.mark.kafka
def test_run_consumes_kafka_when_configured(tmp_path: Path, ingest_topics) -> None:
    from ingest.records import RawDocument
    from tests.ingest.kafka_checks import produce, stored_so_far

    at = datetime.now(UTC) - timedelta(hours=1)
    produce(ingest_topics, [RawDocument(id=f"k{i}", source="wire", kind="news" if i % 2 else "post",
                                        published_at=at, text=f"Markets story number {i}").to_json().encode()
                            for i in range(20)])
    port = _free_port()
    env = {**ingest_topics.env(), "FINMON_ALERTS_POLL_SECONDS": "1"}
    run = Process(["--kafka", "--dsn", f"chdb://{tmp_path / 'ch'}", "--dir", str(tmp_path / "run"),
                   "--metrics-port", str(port)], env)
    try:
        deadline = time.monotonic() + 300
        while stored_so_far(port) < 20:
            assert run.proc.poll() is None and time.monotonic() < deadline, "".join(run.lines[-40:])
            time.sleep(0.5)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert run.stop() == 0
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert any("worker stopped: 20 stored, 0 de-duplicated, 0 dead-lettered; lag 0" in line for line in run.lines)
    with Store.open(f"chdb://{tmp_path / 'ch'}") as store:
        assert store.query(f"SELECT count() AS n FROM {DOCUMENTS}")[0]["n"] == 20

