"""The archive reader behind `finmon pretrain --from-clickhouse`: date range, one text per content hash, no
held-out (dev / evaluation) text, on a real ClickHouse (chdb, or CLICKHOUSE_URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inference.training.data import near_duplicate_key
from ingest.archive import archive_texts
from tests.fixtures.clickhouse import enriched

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _doc(doc_id: str, minutes: int, text: str, content_hash: str | None = None):
    d = enriched(doc_id, T0 + timedelta(minutes=minutes), text=text)
    return d.model_copy(update={"content_hash": content_hash or f"h-{doc_id}"})


def test_reads_a_date_range_once_per_content_hash_without_held_out_text(store):
    dev_text = "Fed holds rates steady, signals two cuts  https://t.co/abc"
    store.write_batch([
        _doc("a", 0, "Apple beats on revenue"),
        _doc("a-copy", 5, "Apple beats on revenue", content_hash="h-a"),  # same story from a second feed
        _doc("b", 10, "Oil slumps 4% as U.S. benchmark slides"),
        _doc("c", 20, "FED HOLDS RATES STEADY, SIGNALS TWO CUTS https://t.co/other"),  # a dev text, other URL
        _doc("d", 90, "Gold hits a 15-month low"),  # outside the range below
        _doc("e", -30, "Tesla recalls 2 million cars"),  # before it
    ])
    store.write_batch([_doc("b", 10, "Oil slumps 4% as U.S. benchmark slides")])  # redelivered: one row (FINAL)
    texts = archive_texts(store, T0, T0 + timedelta(hours=1), exclude={near_duplicate_key(dev_text)})
    assert texts == ["Apple beats on revenue", "Oil slumps 4% as U.S. benchmark slides"]
    everything = archive_texts(store)
    assert everything[0] == "Tesla recalls 2 million cars" and len(everything) == 5  # oldest first, hash-deduped
    assert archive_texts(store, end=T0) == ["Tesla recalls 2 million cars"]  # the end is exclusive
    assert archive_texts(store, limit=2) == ["Tesla recalls 2 million cars", "Apple beats on revenue"]
