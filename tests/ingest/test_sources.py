"""RSS/Atom and JSON pollers against a local HTTP server that serves feed files with ETag / Last-Modified."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.records import RawDocument
from ingest.sources import JsonSource, Politeness, RssSource, run_pollers
from tests.fixtures.feeds import FeedServer

FEEDS = Path(__file__).parent / "feeds"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    s = FeedServer()
    s.files["/markets.rss"] = ((FEEDS / "markets.rss").read_bytes(), "application/rss+xml")
    s.files["/company.atom"] = ((FEEDS / "company.atom").read_bytes(), "application/atom+xml")
    yield s
    s.stop()


def no_wait() -> Politeness:
    return Politeness(delay_s=0.0)


def test_rss_items_become_documents_and_a_second_poll_is_a_conditional_get(server: FeedServer) -> None:
    source = RssSource(f"{server.url}/markets.rss", source="wire", politeness=no_wait())
    docs = source.poll()
    assert [d.title for d in docs] == ["Acme Corp shares slide after guidance cut",
                                       "Globex beats third-quarter estimates", "Fed officials signal patience on rates"]
    assert docs[0].published_at == datetime(2026, 11, 29, 7, 1, tzinfo=UTC)  # +0100 converted to UTC
    assert docs[0].author == "Jane Doe" and docs[0].url.endswith("/acme-guidance-cut")
    assert "Acme Corp" in docs[0].text and all(d.kind == "news" and d.source == "wire" for d in docs)
    source.mark_seen(docs)
    assert source.poll() == []
    assert server.requests[-1][1]["If-None-Match"] == source.etag


def test_ids_are_stable_across_restarts_and_only_new_items_are_returned(server: FeedServer) -> None:
    url = f"{server.url}/markets.rss"
    first = RssSource(url, source="wire", politeness=no_wait())
    docs = first.poll()
    first.mark_seen(docs)
    assert [d.id for d in RssSource(url, source="wire", politeness=no_wait()).poll()] == [d.id for d in docs]
    assert len({d.id for d in docs}) == 3
    body = server.files["/markets.rss"][0].replace(b"<item>", b"""<item>
      <title>Initech names new CFO</title><link>https://news.example.test/markets/initech-cfo</link>
      <guid>wire-2026-11-29-0003</guid><pubDate>Sun, 29 Nov 2026 08:04:00 GMT</pubDate>
      <description>Initech appointed a new chief financial officer.</description></item><item>""", 1)
    server.files["/markets.rss"] = (body, "application/rss+xml")
    new = first.poll()  # the ETag changed: the whole feed is fetched, but only the new item is new
    assert [d.title for d in new] == ["Initech names new CFO"]


def test_atom_entries_with_html_content(server: FeedServer) -> None:
    docs = RssSource(f"{server.url}/company.atom", kind="news", politeness=no_wait()).poll()
    assert [d.title for d in docs] == ["Initech announces $500 million share buyback",
                                       "Initech to present at investor conference"]
    assert "<em>Initech</em>" in docs[0].text  # HTML is kept here and stripped by the worker's normaliser
    assert docs[1].published_at == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert docs[0].source == server.url.removeprefix("http://")


def test_json_api_with_last_modified_only(server: FeedServer) -> None:
    payload = {"data": {"posts": [
        {"post_id": 17, "body": "$ACME to the moon", "created": "2026-11-29T08:00:00+00:00", "user": "trader1"},
        {"post_id": 18, "body": "Selling my Globex shares", "created": "2026-11-29T08:02:00Z", "user": "trader2"},
    ]}}
    server.files["/api/posts"] = (json.dumps(payload).encode(), "application/json")
    server.use_etag = False
    source = JsonSource(f"{server.url}/api/posts", source="forum", kind="post", items_path="data.posts",
                        fields={"key": "post_id", "text": "body", "published_at": "created", "author": "user"},
                        politeness=no_wait())
    docs = source.poll()
    assert [(d.text, d.author, d.kind) for d in docs] == [("$ACME to the moon", "trader1", "post"),
                                                          ("Selling my Globex shares", "trader2", "post")]
    source.mark_seen(docs)
    assert source.poll() == []
    assert "If-Modified-Since" in server.requests[-1][1] and "If-None-Match" not in server.requests[-1][1]


def test_politeness_spaces_requests_to_one_host() -> None:
    now, slept = [100.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    polite = Politeness(delay_s=2.0, clock=lambda: now[0], sleep=sleep)
    polite.wait("http://a.test/feed1")
    polite.wait("http://b.test/feed")  # another host: no wait
    now[0] += 0.5
    polite.wait("http://a.test/feed2")
    polite.back_off("http://a.test/x", 30)
    polite.wait("http://a.test/feed1")
    assert slept == [1.5, 30.0]


def test_state_file_keeps_validators_and_seen_ids(server: FeedServer, tmp_path: Path) -> None:
    url, state = f"{server.url}/markets.rss", tmp_path / "markets.json"
    source = RssSource(url, politeness=no_wait(), state_path=state)
    source.mark_seen(source.poll())
    server.use_etag = False  # the restarted poller must fall back to Last-Modified... and still find nothing new
    assert RssSource(url, politeness=no_wait(), state_path=state).poll() == []


@pytest.mark.kafka
def test_finmon_poll_sends_new_items_to_kafka(server: FeedServer, ingest_topics, tmp_path: Path) -> None:
    from tests.ingest.kafka_checks import read_topic

    finmon = str(Path(sys.executable).parent / "finmon")
    for _ in range(2):  # the second run finds the same items: stable ids, the worker will deduplicate them
        done = subprocess.run([finmon, "poll", "rss", f"{server.url}/markets.rss", "--once", "--source", "wire"],
                              env=ingest_topics.env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    records = read_topic(ingest_topics.bootstrap_servers, ingest_topics.news_topic)
    docs = [RawDocument.parse_json(v) for v in records.values()]
    assert len(docs) == 6 and len({d.id for d in docs}) == 3


def test_run_pollers_marks_items_seen_only_after_the_producer_flushed(server: FeedServer) -> None:
    class Producer:
        def __init__(self) -> None:
            self.pending, self.flushed = [], []

        def send(self, topic: str, value: bytes, key: bytes) -> None:
            self.pending.append((topic, key))

        def flush(self) -> None:
            self.flushed += self.pending
            self.pending = []

    producer = Producer()
    source = RssSource(f"{server.url}/markets.rss", politeness=no_wait())
    assert run_pollers([source], producer, "news.raw", once=True) == 3
    assert len(producer.flushed) == 3 and run_pollers([source], producer, "news.raw", once=True) == 0
