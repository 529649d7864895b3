"""Deduplication by document id and by normalised-content hash within a time window.

State is in memory and bounded (least recently seen entries are evicted first). It can be seeded from the store
at start-up, so a restarted worker still recognises reposts of what it stored before. Entries of a batch that
was never stored are ``forget``-ten, so a redelivered message is not mistaken for its own duplicate.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.store import Store


class Duplicate(StrEnum):
    ID = "duplicate_id"
    CONTENT = "duplicate_content"


class Deduplicator:
    def __init__(self, window_s: float, max_entries: int) -> None:
        self._window = timedelta(seconds=window_s)
        self._max = max_entries
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._hashes: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # hash -> (doc id, published_at)

    def check(self, doc_id: str, content_hash: str, published_at: datetime) -> Duplicate | None:
        """Return why the document is a duplicate, or None after recording it as seen."""
        if doc_id in self._ids:
            self._ids.move_to_end(doc_id)
            return Duplicate.ID
        seen = self._hashes.get(content_hash)
        if seen is not None and seen[0] != doc_id and abs(published_at - seen[1]) <= self._window:
            return Duplicate.CONTENT
        self._remember(doc_id, content_hash, published_at)
        return None

    def seed(self, entries: Iterable[tuple[str, str, datetime]]) -> int:
        """Record (doc id, content hash, published_at) triples already stored; return how many."""
        count = 0
        for doc_id, digest, published_at in entries:
            self._remember(doc_id, digest, published_at)
            count += 1
        return count

    def forget(self, doc_id: str, content_hash: str) -> None:
        """Undo ``check`` for a document whose batch was discarded before it was stored."""
        self._ids.pop(doc_id, None)
        seen = self._hashes.get(content_hash)
        if seen is not None and seen[0] == doc_id:
            del self._hashes[content_hash]

    def __len__(self) -> int:
        return len(self._ids)

    def _remember(self, doc_id: str, digest: str, published_at: datetime) -> None:
        self._ids[doc_id] = None
        self._ids.move_to_end(doc_id)
        self._hashes[digest] = (doc_id, published_at)
        self._hashes.move_to_end(digest)
        while len(self._ids) > self._max:
            self._ids.popitem(last=False)
        while len(self._hashes) > self._max:
            self._hashes.popitem(last=False)


def seed_from_store(dedup: Deduplicator, store: Store, window_s: float, limit: int) -> int:
    """Seed ``dedup`` with the documents ingested in the last ``window_s`` seconds (newest ``limit`` of them)."""
    from ingest.store import DOCUMENTS

    rows = store.query(
        f"SELECT doc_id, content_hash, published_at FROM {DOCUMENTS} "
        "WHERE ingested_at >= {since:DateTime64(3, 'UTC')} ORDER BY ingested_at DESC LIMIT {limit:UInt64}",
        {"since": datetime.now(UTC) - timedelta(seconds=window_s), "limit": limit},
    )
    return dedup.seed((r["doc_id"], r["content_hash"], r["published_at"]) for r in reversed(rows))
