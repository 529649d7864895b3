"""Pollers that turn RSS/Atom feeds and JSON-over-HTTP APIs into raw documents for Kafka.

Each poller keeps stable document ids (derived from the item's guid/link/id, so every poll and every restart
gives an item the same id), makes conditional GETs (ETag / Last-Modified, 304 = nothing new), deduplicates items
across polls, and waits a politeness delay between requests to one host (longer when the server says
Retry-After). Optional ``state_path`` keeps validators and seen ids across restarts.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from ingest.records import RawDocument, RecordError

log = logging.getLogger(__name__)
USER_AGENT = "finmon/0.1 (financial opinion monitor; polite poller)"
_SEEN_LIMIT = 50_000


class Politeness:
    """At most one request per ``delay_s`` to each host (shared by every poller of a run)."""

    def __init__(self, delay_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.delay_s, self._clock, self._sleep = delay_s, clock, sleep
        self._next: dict[str, float] = {}

    def wait(self, url: str) -> None:
        host = urlsplit(url).netloc
        pause = self._next.get(host, 0.0) - self._clock()
        if pause > 0:
            self._sleep(pause)
        self._next[host] = self._clock() + self.delay_s

    def back_off(self, url: str, seconds: float) -> None:
        host = urlsplit(url).netloc
        self._next[host] = max(self._next.get(host, 0.0), self._clock() + seconds)


class HttpSource:
    """Conditional GET + stable ids + dedup across polls; subclasses turn a response body into item dicts."""

    def __init__(self, url: str, *, source: str | None = None, kind: str = "news",
                 client: httpx.Client | None = None, politeness: Politeness | None = None,
                 state_path: Path | None = None) -> None:
        self.url, self.kind = url, kind
        self.source = source or urlsplit(url).netloc or "http"
        self._client = client or httpx.Client(timeout=30, follow_redirects=True, headers={"User-Agent": USER_AGENT})
        self._politeness = politeness or Politeness()
        self._state_path = state_path
        self.etag: str | None = None
        self.last_modified: str | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._load_state()

    def poll(self) -> list[RawDocument]:
        """New documents since the last poll (empty on 304 or when every item was seen)."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        self._politeness.wait(self.url)
        response = self._client.get(self.url, headers=headers)
        if response.status_code == 304:
            return []
        if response.status_code in (429, 503):
            retry = response.headers.get("Retry-After", "")
            self._politeness.back_off(self.url, float(retry) if retry.isdigit() else 60.0)
            log.warning("%s answered %d; backing off", self.url, response.status_code)
            return []
        response.raise_for_status()
        docs = []
        for item in self.items(response.content):
            doc = self._document(item)
            if doc is not None and doc.id not in self._seen:
                docs.append(doc)
        self.etag = response.headers.get("ETag") or self.etag
        self.last_modified = response.headers.get("Last-Modified") or self.last_modified
        return docs

    def mark_seen(self, docs: Iterable[RawDocument]) -> None:
        """Record documents as delivered (called once Kafka acknowledged them)."""
        for doc in docs:
            self._seen[doc.id] = None
        while len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        self._save_state()

    def items(self, body: bytes) -> list[dict[str, Any]]:
        """(id key, title, text, url, author, published_at) dicts of the items in ``body``."""
        raise NotImplementedError

    def _document(self, item: dict[str, Any]) -> RawDocument | None:
        key = item.get("key") or item.get("url") or f"{item.get('title')}|{item.get('text')}"
        doc_id = f"{self.source}:{hashlib.sha256(str(key).encode()).hexdigest()[:24]}"
        try:
            return RawDocument(id=doc_id, source=self.source, kind=self.kind, text=item.get("text") or "",
                               title=item.get("title"), url=item.get("url"), author=item.get("author"),
                               published_at=item.get("published_at") or datetime.now(UTC),
                               meta={"feed": self.url, "key": str(key)})
        except (ValueError, RecordError) as exc:  # an item we cannot represent (no text...): log, skip
            log.warning("skipping an item of %s: %s", self.url, exc)
            return None

    def _load_state(self) -> None:
        if self._state_path and self._state_path.exists():
            state = json.loads(self._state_path.read_text())
            self.etag, self.last_modified = state.get("etag"), state.get("last_modified")
            self._seen = OrderedDict.fromkeys(state.get("seen", []))

    def _save_state(self) -> None:
        if self._state_path:
            state = {"url": self.url, "etag": self.etag, "last_modified": self.last_modified, "seen": list(self._seen)}
            self._state_path.write_text(json.dumps(state))


class RssSource(HttpSource):
    """RSS 0.9x/1.0/2.0 and Atom feeds (feedparser)."""

    def items(self, body: bytes) -> list[dict[str, Any]]:
        feed = feedparser.parse(body)
        if feed.bozo and not feed.entries:
            raise ValueError(f"{self.url} is not a feed: {feed.get('bozo_exception')}")
        out = []
        for e in feed.entries:
            content = e.get("content")
            text = content[0].get("value") if content else e.get("summary") or e.get("title")
            stamp = e.get("published_parsed") or e.get("updated_parsed")
            out.append({
                "key": e.get("id") or e.get("link"), "title": e.get("title"), "text": text, "url": e.get("link"),
                "author": e.get("author"),
                "published_at": datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None,
            })
        return out


class JsonSource(HttpSource):
    """A JSON API returning a list of items (at ``items_path``, dotted; "" for a top-level list).

    ``fields`` maps document fields to item keys; the defaults fit most news APIs.
    """

    DEFAULT_FIELDS = {"key": "id", "title": "title", "text": "text", "url": "url", "author": "author",
                      "published_at": "published_at"}

    def __init__(self, url: str, *, items_path: str = "items", fields: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        self.items_path = items_path
        self.fields = {**self.DEFAULT_FIELDS, **(fields or {})}
        super().__init__(url, **kwargs)

    def items(self, body: bytes) -> list[dict[str, Any]]:
        data: Any = json.loads(body)
        for part in filter(None, self.items_path.split(".")):
            data = data.get(part, []) if isinstance(data, dict) else []
        if not isinstance(data, list):
            raise ValueError(f"{self.url}: {self.items_path!r} is not a list")
        return [{name: item.get(key) for name, key in self.fields.items()} for item in data if isinstance(item, dict)]


def run_pollers(sources: list[HttpSource], producer: Any, topic: str, interval_s: float = 300.0,
                once: bool = False, sleep: Callable[[float], None] = time.sleep) -> int:
    """Poll every source, send new documents to ``topic`` (key = id), repeat every ``interval_s``."""
    sent = 0
    while True:
        for source in sources:
            try:
                docs = source.poll()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("polling %s failed: %s", source.url, exc)
                continue
            for doc in docs:
                producer.send(topic, value=doc.to_json().encode("utf-8"), key=doc.id.encode())
            producer.flush()
            source.mark_seen(docs)
            sent += len(docs)
            log.info("%s: %d new documents", source.url, len(docs))
        if once:
            return sent
        sleep(interval_s)
