"""The monitor's own archive as unlabelled text: stored documents in a date range, one per content hash.

A running monitor collects exactly the text the model must read, so ``finmon pretrain --from-clickhouse`` adapts
the encoder to it. Documents are read with ``FINAL`` (one row per doc_id), grouped by ``content_hash`` (the
pipeline's dedup key: the same story from two feeds counts once), and every text whose near-duplicate key is in
``exclude`` (dev and evaluation texts, see inference.training.corpus) is dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime

from inference.training.corpus import unique
from ingest.schema import DOCUMENTS
from ingest.store import Store

log = logging.getLogger(__name__)


def archive_texts(store: Store, start: datetime | None = None, end: datetime | None = None, *,
                  exclude: set[str] | frozenset[str] = frozenset(), limit: int = 0) -> list[str]:
    """Texts (what the pipeline gives the model: the document text) of documents published in ``[start, end)``
    (open ends allowed), oldest first; ``limit`` caps the content hashes read."""
    where, params = ["1"], {}
    if start is not None:
        where.append("published_at >= {start:DateTime64(3, 'UTC')}")
        params["start"] = start
    if end is not None:
        where.append("published_at < {end:DateTime64(3, 'UTC')}")
        params["end"] = end
    sql = (f"SELECT content_hash, argMin(text, published_at) AS text, "
           f"min(published_at) AS first FROM {store.database}.{DOCUMENTS} FINAL WHERE {' AND '.join(where)} "
           f"GROUP BY content_hash ORDER BY first, content_hash")
    if limit:
        sql += " LIMIT {limit:UInt64}"
        params["limit"] = limit
    rows = store.query(sql, params)
    texts = unique((r["text"] for r in rows), set(exclude))
    log.info("archive: %d content hashes -> %d texts after removing near-duplicates and held-out texts",
             len(rows), len(texts))
    return texts
