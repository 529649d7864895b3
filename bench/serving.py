"""`finmon bench serving`: in-process onnxruntime vs Triton with client batching vs one request per document.

Without ``--url`` it starts the bundled CPU tritonserver on the shipped export (models/triton) and stops it at
the end. Every caller sends ONE document and awaits it (as the pipeline's callers do); latency is per caller.
In-process runs the same ONNX file with ``OnnxPredictor`` in batches of 32 (what the pipeline hands it). Both
sides run onnxruntime at ``--threads`` (0: onnxruntime's default, one per core). CPU seconds count this process
and its children (tritonserver and its Python-backend stub), so docs/CPU-s is comparable across modes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import numpy as np

from bench.corpus import texts
from bench.report import Report, cpu_seconds
from inference.serving.predictor import OnnxPredictor
from inference.serving.triton_client import TritonPredictor
from inference.serving.triton_config import read_config, render, write_config
from inference.serving.triton_repository import assemble_cpu_repository, latest_version
from inference.serving.triton_server import TritonServer
from inference.serving.triton_settings import TritonSettings
from inference.settings import ModelSettings
from inference.tensors import MODEL_NAME

COLUMNS = ["mode", "docs", "callers", "requests", "docs/s", "docs/CPU-s", "p50 ms", "p99 ms"]


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


def _row(report: Report, mode: str, docs: int, conc: int, requests: int, seconds: float, cpu: float,
         latencies: list[float]) -> float:
    lat = np.asarray(latencies)
    rate = docs / seconds
    report.add(mode, docs, conc, requests, rate, docs / max(cpu, 1e-9), float(np.percentile(lat, 50)),
               float(np.percentile(lat, 99)))
    return rate


def bench_triton(report: Report, url: str, protocol: str, model: ModelSettings, docs: list[str],
                 concurrency: int) -> dict[str, float]:
    """Three modes: one caller sending one document at a time (nothing to batch), many such callers (Triton's
    dynamic batcher merges their requests server-side), and the client batching them into requests of 32."""
    rates = {}
    for key, mode, max_batch, conc, subset in (
            ("per_request_serial", "triton, one request per document", 1, 1, docs[: max(32, len(docs) // 4)]),
            ("per_request", "triton, one request per document", 1, concurrency, docs),
            ("batched", "triton, client batching (32, 5 ms)", 32, concurrency, docs)):
        settings = TritonSettings(url=url, protocol=protocol, max_batch=max_batch, max_delay_ms=5,
                                  max_in_flight=conc if max_batch == 1 else 4, request_timeout_s=120)
        with TritonPredictor.from_settings(settings, model) as predictor:
            predictor.predict(docs[:32])  # warm-up
            sent, cpu0 = predictor.requests_sent, cpu_seconds()
            seconds, lat = asyncio.run(callers(predictor.apredict, subset, conc))
            cpu = cpu_seconds() - cpu0
            rates[key] = _row(report, f"{mode} ({protocol})", len(subset), conc, predictor.requests_sent - sent,
                              seconds, cpu, lat)
            rates[f"{key}_per_cpu"] = len(subset) / max(cpu, 1e-9)
    return rates


def bench_in_process(report: Report, model: ModelSettings, docs: list[str], threads: int) -> tuple[float, float]:
    predictor = OnnxPredictor(latest_version(model.repository, model.name).path, max_length=model.max_length,
                              batch_size=32, threads=threads)
    predictor.predict(docs[:32])
    lat, start, cpu0 = [], time.perf_counter(), cpu_seconds()
    for i in range(0, len(docs), 32):
        t0 = time.perf_counter()
        predictor.predict(docs[i : i + 32])
        lat.append((time.perf_counter() - t0) * 1000)
    cpu = cpu_seconds() - cpu0
    return _row(report, "in-process onnxruntime, batches of 32", len(docs), 1, len(lat),
                time.perf_counter() - start, cpu, lat), len(docs) / max(cpu, 1e-9)


def cpu_repository(out: Path, source: Path, threads: int) -> Path:
    """The servable CPU repository, with the Python backend's onnxruntime threads set."""
    repo = assemble_cpu_repository(out, source)
    path = repo / MODEL_NAME / "config.pbtxt"
    config = read_config(path)
    config.parameters["intra_op_threads"].string_value = str(threads)
    write_config(path, render(config, "cpu"))
    return repo


def run(docs: int, concurrency: int, url: str | None, protocol: str, repository: Path, threads: int) -> Report:
    model = ModelSettings(repository=repository)
    corpus = texts(docs)
    report = Report("serving", COLUMNS)
    in_process, in_process_per_cpu = bench_in_process(report, model, corpus, threads)
    if url:
        rates = bench_triton(report, url, protocol, model, corpus, concurrency)
    else:
        with tempfile.TemporaryDirectory() as tmp, \
                TritonServer(cpu_repository(Path(tmp), repository, threads)) as server:
            rates = bench_triton(report, server.grpc_url if protocol == "grpc" else server.http_url, protocol,
                                 model, corpus, concurrency)
    report.figures.update({
        "model_version": latest_version(repository).model_version, "threads": threads or "onnxruntime default",
        "in_process_docs_per_s": in_process, "batched_docs_per_s": rates["batched"],
        "per_request_docs_per_s": rates["per_request"], "ratio": rates["batched"] / rates["per_request"],
        "per_request_serial_docs_per_s": rates["per_request_serial"],
        "ratio_vs_serial": rates["batched"] / rates["per_request_serial"],
        "batched_vs_in_process": rates["batched"] / in_process,
        "batched_vs_in_process_per_cpu_s": rates["batched_per_cpu"] / in_process_per_cpu,
    })
    report.notes.append("docs/CPU-s counts this process and tritonserver with its stub: on a loaded machine it is "
                        "the comparable figure, docs/s is what this run got of the cores")
    return report


def main(args: argparse.Namespace) -> Report:
    return run(args.docs or (192 if args.quick else 512), args.concurrency, args.url, args.protocol,
               args.repository, args.threads)
