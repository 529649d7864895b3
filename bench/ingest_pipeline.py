"""Throughput of the ingest pipeline (validate -> dedup -> batch -> model -> embedded ClickHouse), in-process, on
the bundled demo stream, for a few batch sizes. Prints a table.

    python -m bench.ingest_pipeline [--limit 2000] [--batch-sizes 16,64,128]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from finmon.demo import BUNDLED_STREAM, TEN_YEARS_S
from inference.serving.predictor import load_predictor
from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message, Pipeline
from ingest.produce import read_lines
from ingest.settings import ingest_settings
from ingest.store import Store


def _histogram_sum(metrics: IngestMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(f"{name}_sum") or 0.0


async def _run(pipeline: Pipeline, lines: list[bytes]) -> None:
    for offset, line in enumerate(lines):
        await pipeline.feed(Message(line, "bench", 0, offset))
        if pipeline.should_flush():
            await pipeline.flush()
    await pipeline.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="16,64,128")
    args = parser.parse_args()
    lines = list(read_lines(BUNDLED_STREAM))[: args.limit]
    predictor = load_predictor()
    predictor.predict(["warm-up"])
    rows = []
    for size in (int(s) for s in args.batch_sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            dsn = f"chdb://{Path(tmp) / 'ch'}"
            settings = ingest_settings(clickhouse_dsn=dsn, batch_size=size, max_future_skew_s=TEN_YEARS_S)
            metrics = IngestMetrics(CollectorRegistry())
            with Store.open(dsn) as store:
                store.migrate()
                pipeline = Pipeline(predictor, store, ListDeadLetters(), settings, metrics)
                started = time.perf_counter()
                asyncio.run(_run(pipeline, lines))
                seconds = time.perf_counter() - started
        rows.append((size, len(lines), seconds, len(lines) / seconds,
                     _histogram_sum(metrics, "finmon_inference_seconds"),
                     _histogram_sum(metrics, "finmon_clickhouse_insert_seconds")))
    print(f"{'batch':>6} {'msgs':>6} {'seconds':>8} {'msgs/s':>8} {'model s':>8} {'insert s':>8}")
    for size, n, seconds, rate, model_s, insert_s in rows:
        print(f"{size:>6} {n:>6} {seconds:>8.1f} {rate:>8.0f} {model_s:>8.1f} {insert_s:>8.1f}")


if __name__ == "__main__":
    main()
