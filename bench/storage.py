"""`finmon bench storage`: insert rows/s through the project's writer (``Store.write_batch``) into an embedded
ClickHouse (chdb), by batch size. A document is three inserts (documents, predictions, entity_mentions); the
rows/s column counts documents. clickhouse-connect's insert path is largely pure Python (its #106), so batching
is what matters; a small batch pays the per-insert cost three times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.corpus import texts
from bench.report import Report, cpu_seconds
from inference.decoding.prediction import EntitySpan, Prediction
from inference.labels import SENTIMENTS, TOPICS
from ingest.records import EnrichedDocument, RawDocument
from ingest.store import Store


def documents(n: int, tag: str) -> list[EnrichedDocument]:
    now = datetime.now(UTC)
    out = []
    for i, text in enumerate(texts(n)):
        topic, sentiment = TOPICS[i % len(TOPICS)], SENTIMENTS[i % len(SENTIMENTS)]
        prediction = Prediction(topic, {topic: 0.9}, sentiment, 0.8, {sentiment: 0.8},
                                [EntitySpan(0, min(5, len(text)), "ORG", text[:5] or "x")], "bench")
        raw = RawDocument(id=f"{tag}-{i}", source="bench", kind="post", published_at=now - timedelta(seconds=i),
                          text=text)
        out.append(EnrichedDocument(doc=raw, prediction=prediction, content_hash=f"h{tag}{i}", ingested_at=now))
    return out


def run(rows: int, batch_sizes: list[int]) -> Report:
    report = Report("storage", ["batch", "documents", "seconds", "docs/s", "docs/CPU-s"])
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp, Store.open(f"chdb://{Path(tmp) / 'ch'}") as store:
        store.migrate()
        store.write_batch(documents(8, "warm"))
        for size in batch_sizes:
            docs = documents(rows, f"b{size}")
            t0, c0 = time.perf_counter(), cpu_seconds()
            for i in range(0, len(docs), size):
                store.write_batch(docs[i : i + size])
            seconds = time.perf_counter() - t0
            rate = len(docs) / seconds
            best = max(best, rate)
            report.add(size, len(docs), seconds, rate, len(docs) / max(cpu_seconds() - c0, 1e-9))
    report.figures["insert_docs_per_s"] = best
    return report


def main(args: argparse.Namespace) -> Report:
    return run(args.rows or (5000 if args.quick else 20000), [int(s) for s in args.batch_sizes.split(",")])
