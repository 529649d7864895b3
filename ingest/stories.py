"""Story grouping: near-duplicate and same-story documents (a wire story re-posted by many accounts, a retweet
with its link changed) get one ``story_id``, found with MinHash locality-sensitive hashing (``datasketch``).

A document's shingles are the word 3-grams of its text, lower-cased, with links and punctuation dropped (so a
re-post with another short link or a "BREAKING:" prefix is the same story). A new document joins the story of
the earliest indexed document whose estimated Jaccard similarity is above ``threshold``; otherwise it starts a
story whose id is derived from its own doc id.

Stable across a restart and a replay: a document already in the store keeps the story id stored with it (one
lookup per batch), and on its first batch the grouper re-indexes the documents of the last ``window_s`` seconds
from the store, so a new document after a restart joins the stories from before it. A replayed document thus
writes the same story id again and the distinct-story aggregates do not change.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from datasketch import MinHash, MinHashLSH

from ingest.records import EnrichedDocument
from ingest.schema import DOCUMENTS

log = logging.getLogger(__name__)

_LINK = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
SHINGLE = 3
SEED = 1  # MinHash permutations must be the same in every process


@runtime_checkable
class StoryLookup(Protocol):
    """What the grouper needs of the store (``ingest.store.Store`` has it)."""

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


def shingles(text: str) -> set[str]:
    """Word 3-grams of the normalised text (the words themselves for a text shorter than that)."""
    words = _WORD.findall(_LINK.sub(" ", text.lower()))
    if len(words) < SHINGLE:
        return set(words)
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def new_story_id(doc_id: str) -> str:
    return hashlib.sha256(f"story|{doc_id}".encode()).hexdigest()[:20]


class StoryGrouper:
    def __init__(
        self, lookup: StoryLookup | None = None, *, threshold: float = 0.5, num_perm: int = 64,
        window_s: float = 48 * 3600, max_entries: int = 200_000,
    ) -> None:
        self._lookup = lookup
        self._threshold, self._num_perm = threshold, num_perm
        self._window = timedelta(seconds=window_s)
        self._max_entries = max_entries
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._story: dict[str, str] = {}  # indexed doc_id -> story_id
        self._order: dict[str, tuple[datetime, str]] = {}  # indexed doc_id -> (published_at, doc_id)
        self._expiry: deque[tuple[datetime, str]] = deque()
        self._newest: datetime | None = None
        self._warm = lookup is None
        self._empty: MinHash | None = None

    @property
    def indexed(self) -> int:
        return len(self._story)

    def assign(self, docs: Sequence[EnrichedDocument]) -> list[EnrichedDocument]:
        """The documents with their ``story_id`` set (in the order given). Blocking: may query the store."""
        if not self._warm:
            self._warm_up()
        known = self._stored_ids([d.doc_id for d in docs]) if self._lookup is not None else {}
        out: dict[str, str] = {}
        for d in sorted(docs, key=lambda d: (d.doc.published_at, d.doc_id)):
            story = known.get(d.doc_id) or self._story.get(d.doc_id)
            indexed = d.doc_id in self._story
            signature = None if indexed else self._signature(" ".join(filter(None, (d.doc.title, d.doc.text))))
            if story is None:
                story = self._match(signature) or new_story_id(d.doc_id)
            self._index(d.doc_id, signature, d.doc.published_at, story)
            out[d.doc_id] = story
        return [d.model_copy(update={"story_id": out[d.doc_id]}) for d in docs]

    # -- internals ------------------------------------------------------------------------------------------------

    def _signature(self, text: str) -> MinHash | None:
        """The text's MinHash (None for a text without words), computed once per document. Copied from one empty
        MinHash: datasketch draws the permutations again for every MinHash built from a seed."""
        grams = shingles(text)
        if not grams:
            return None
        if self._empty is None:
            self._empty = MinHash(num_perm=self._num_perm, seed=SEED)
        m = self._empty.copy()
        m.update_batch([s.encode() for s in sorted(grams)])
        return m

    def _match(self, signature: MinHash | None) -> str | None:
        if signature is None:
            return None
        candidates = self._lsh.query(signature)
        if not candidates:
            return None
        earliest = min(candidates, key=lambda key: self._order[key])
        return self._story[earliest]

    def _index(self, doc_id: str, signature: MinHash | None, at: datetime, story: str) -> None:
        if doc_id in self._story:
            self._story[doc_id] = story
            return
        if signature is not None:
            self._lsh.insert(doc_id, signature, check_duplication=False)
        self._story[doc_id], self._order[doc_id] = story, (at, doc_id)
        self._expiry.append((at, doc_id))
        self._newest = at if self._newest is None else max(self._newest, at)
        self._expire()

    def _expire(self) -> None:
        """Drop documents older than the window (by the newest time seen: a replay of old data works too)."""
        assert self._newest is not None
        horizon = self._newest - self._window
        while self._expiry and (self._expiry[0][0] < horizon or len(self._story) > self._max_entries):
            _, doc_id = self._expiry.popleft()
            if doc_id in self._lsh:
                self._lsh.remove(doc_id)
            self._story.pop(doc_id, None)
            self._order.pop(doc_id, None)

    def _stored_ids(self, doc_ids: list[str]) -> dict[str, str]:
        assert self._lookup is not None
        rows = self._lookup.query(
            f"SELECT doc_id, if(story_id = '', doc_id, story_id) AS story_id FROM {DOCUMENTS} FINAL "
            "WHERE has({ids:Array(String)}, doc_id)", {"ids": doc_ids})
        return {r["doc_id"]: r["story_id"] for r in rows}

    def _warm_up(self) -> None:
        """Index the stored documents of the last window (before the newest one stored)."""
        assert self._lookup is not None
        rows = self._lookup.query(
            f"SELECT doc_id, title, text, published_at, if(story_id = '', doc_id, story_id) AS story_id "
            f"FROM {DOCUMENTS} FINAL WHERE published_at >= (SELECT max(published_at) FROM {DOCUMENTS}) "
            "- toIntervalSecond({window:UInt32}) ORDER BY published_at, doc_id LIMIT {limit:UInt32}",
            {"window": int(self._window.total_seconds()), "limit": self._max_entries})
        for r in rows:
            self._index(r["doc_id"], self._signature(" ".join(filter(None, (r["title"], r["text"])))),
                        r["published_at"], r["story_id"])
        self._warm = True
        if rows:
            log.info("story grouping: re-indexed %d stored documents", len(rows))

