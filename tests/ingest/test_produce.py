"""Replaying JSONL into Kafka: routing by kind, raw bytes kept, pacing; `finmon produce` on a real broker."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.produce import Pacer, read_lines

T = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_read_lines_keeps_bytes_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b'{"a": 1}\r\n\n   \n{"b": "\xff"}\n')
    assert list(read_lines(path)) == [b'{"a": 1}', b'{"b": "\xff"}']


class FakeClock:
    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_pacer_at_a_fixed_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=4, sleep=clock.sleep, clock=lambda: clock.now)
    for _ in range(3):
        pacer.wait(None)
    assert clock.slept == [0.25, 0.25]


def test_pacer_in_real_time_follows_published_at_with_speedup() -> None:
    clock = FakeClock()
    pacer = Pacer(realtime=True, speedup=60, sleep=clock.sleep, clock=lambda: clock.now)
    for minutes in (0, 1, 1, 3):
        pacer.wait(T + timedelta(minutes=minutes))
    assert clock.slept == [1.0, 2.0]  # one minute of the stream is one second of replay


@pytest.mark.kafka
def test_finmon_produce_routes_by_kind_and_sends_unroutable_lines_to_the_fallback(ingest_topics, tmp_path) -> None:
    from tests.ingest.kafka_checks import read_topic

    lines = [json.dumps({"id": f"n{i}", "kind": "news", "text": "t"}).encode() for i in range(3)]
    lines += [json.dumps({"id": "p1", "kind": "post", "text": "t"}).encode(), b"not json \xff", b'{"kind": "tweet"}']
    path = tmp_path / "stream.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    finmon = str(Path(sys.executable).parent / "finmon")
    done = subprocess.run([finmon, "produce", str(path), "--rate", "1000"], env=ingest_topics.env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    news = read_topic(ingest_topics.bootstrap_servers, ingest_topics.news_topic)
    posts = read_topic(ingest_topics.bootstrap_servers, ingest_topics.posts_topic)
    assert sorted(news.values()) == sorted(lines[:3] + lines[4:])
    assert list(posts.values()) == [lines[3]]
