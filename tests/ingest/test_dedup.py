"""Dedup by id and by content within a window; bounded memory; seeding from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.dedup import Deduplicator, Duplicate, seed_from_store
from ingest.store import Store
from tests.fixtures.clickhouse import enriched

T = datetime(2026, 11, 29, tzinfo=UTC)


def test_id_and_content_duplicates_within_the_window() -> None:
    d = Deduplicator(window_s=3600, max_entries=100)
    assert d.check("a", "h1", T) is None
    assert d.check("a", "h-other", T) is Duplicate.ID
    assert d.check("b", "h1", T + timedelta(minutes=30)) is Duplicate.CONTENT
    assert d.check("c", "h1", T + timedelta(hours=2)) is None  # outside the window: a new story


def test_memory_is_bounded_oldest_first() -> None:
    d = Deduplicator(window_s=3600, max_entries=3)
    for i in range(5):
        d.check(f"id{i}", f"h{i}", T)
    assert len(d) == 3
    assert d.check("id0", "h0", T) is None  # evicted, so seen as new
    assert d.check("id4", "h4", T) is Duplicate.ID


def test_forget_undoes_a_check_of_an_unstored_document() -> None:
    d = Deduplicator(window_s=3600, max_entries=10)
    d.check("a", "h1", T)
    d.forget("a", "h1")
    assert d.check("a", "h1", T) is None


def test_seed_from_store_recognises_what_a_previous_run_stored(store: Store) -> None:
    store.write_batch([enriched("old", T), enriched("older", T - timedelta(hours=1))])
    d = Deduplicator(window_s=86400, max_entries=100)
    assert seed_from_store(d, store, window_s=86400, limit=100) == 2
    assert d.check("old", "anything", T) is Duplicate.ID
    assert d.check("repost", "h-older", T) is Duplicate.CONTENT
