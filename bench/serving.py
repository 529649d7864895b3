"""Inference throughput and latency: Triton per-document requests, Triton with client batching, in-process.

    python -m bench.serving [--docs 512] [--concurrency 32] [--url HOST:PORT] [--protocol grpc|http]

Without ``--url`` it starts the bundled CPU tritonserver on the shipped export (models/triton) and stops it at
the end. Every caller sends ONE document and awaits it (as the pipeline's callers do); latency is per caller.
Texts are real tweets from the shared training data when present. The in-process predictor runs the same
ONNX file with onnxruntime at ``--threads`` (default 1, like the one CPU Triton instance).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.serving.predictor import OnnxPredictor
from inference.settings import ModelSettings
from inference.serving.triton_client import TritonPredictor
from inference.serving.triton_repository import GPU_REPOSITORY, assemble_cpu_repository, latest_version
from inference.serving.triton_server import TritonServer
from inference.serving.triton_settings import TritonSettings

TOPIC_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "twitter_financial_news_topic" / "topic_train.csv"


@dataclass
class Row:
    mode: str
    docs: int
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]

    def cells(self) -> list[str]:
        lat = np.asarray(self.latencies_ms)
        return [self.mode, str(self.docs), str(self.concurrency), str(self.requests),
                f"{self.docs / self.seconds:,.1f}", f"{np.percentile(lat, 50):.1f}", f"{np.percentile(lat, 99):.1f}"]


def texts(n: int) -> list[str]:
    if TOPIC_CSV.is_file():
        from inference.training.data import read_topic_csv

        pool = [e.text for e in read_topic_csv(TOPIC_CSV)]
    else:
        pool = [f"Company {i} shares moved {i % 17}% after results; the CEO spoke in London." for i in range(997)]
    return [pool[(i * 7919) % len(pool)] for i in range(n)]


async def callers(predict: Callable[[list[str]], Awaitable[object]], docs: Sequence[str],
                  concurrency: int) -> tuple[float, list[float]]:
    """``concurrency`` callers working through ``docs`` one document each; (wall seconds, per-call ms)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for d in docs:
        queue.put_nowait(d)
    latencies: list[float] = []

    async def caller() -> None:
        while not queue.empty():
            doc = queue.get_nowait()
            t0 = time.perf_counter()
            await predict([doc])
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def bench_triton(url: str, protocol: str, model: ModelSettings, docs: list[str], concurrency: int) -> list[Row]:
    rows = []
    for mode, max_batch, conc in (("triton, per-document requests, 1 caller", 1, 1),
                                  ("triton, per-document requests", 1, concurrency),
                                  ("triton, client batching (32, 5 ms)", 32, concurrency)):
        settings = TritonSettings(url=url, protocol=protocol, max_batch=max_batch, max_delay_ms=5,
                                  max_in_flight=max(4, conc if max_batch == 1 else 4))
        with TritonPredictor.from_settings(settings, model) as predictor:
            predictor.predict(docs[:8])  # warm-up
            sent = predictor.requests_sent
            subset = docs if conc > 1 else docs[: max(32, len(docs) // 8)]
            seconds, lat = asyncio.run(callers(predictor.apredict, subset, conc))
            rows.append(Row(f"{mode} ({protocol})", len(subset), conc, predictor.requests_sent - sent, seconds, lat))
    return rows


def bench_in_process(model: ModelSettings, docs: list[str], threads: int) -> list[Row]:
    predictor = OnnxPredictor(latest_version(model.repository, model.name).path, max_length=model.max_length,
                              batch_size=32, threads=threads)
    predictor.predict(docs[:8])
    rows = []
    for size in (1, 32):
        lat, start = [], time.perf_counter()
        for i in range(0, len(docs), size):
            t0 = time.perf_counter()
            predictor.predict(docs[i : i + size])
            lat.append((time.perf_counter() - t0) * 1000)
        rows.append(Row(f"in-process onnxruntime, batches of {size} ({threads} thread)", len(docs), 1,
                        len(lat), time.perf_counter() - start, lat))
    return rows


def table(rows: list[Row]) -> str:
    head = ["mode", "docs", "callers", "requests", "docs/s", "p50 ms", "p99 ms"]
    body = [r.cells() for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", default=None, help="a running Triton (default: start the bundled CPU server)")
    parser.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    parser.add_argument("--repository", type=Path, default=GPU_REPOSITORY, help="exported model repository")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the in-process predictor")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model = ModelSettings(repository=args.repository)
    docs = texts(args.docs)
    rows = bench_in_process(model, docs, args.threads)
    if args.url:
        rows = bench_triton(args.url, args.protocol, model, docs, args.concurrency) + rows
    else:
        with tempfile.TemporaryDirectory() as tmp, TritonServer(assemble_cpu_repository(Path(tmp), args.repository)) as server:
            url = server.grpc_url if args.protocol == "grpc" else server.http_url
            rows = bench_triton(url, args.protocol, model, docs, args.concurrency) + rows
    version = latest_version(args.repository).model_version
    print(f"model {version}; {len(docs)} documents; {time.strftime('%Y-%m-%d %H:%M')}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
