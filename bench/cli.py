"""`finmon bench model|serving|e2e|storage|alerts|distillation`: the benchmark modules behind one command.

Each prints a table (and the figures the issue's targets are stated in) and, with ``--json FILE``, writes them
with the machine (CPU model, SIMD flags, cores, load), the date and the git revision. ``--quick`` keeps each
under two minutes on a quiet 2-core machine. This module only declares the arguments (cheap to import: the
``finmon`` parser is built on every call); a benchmark's module is imported when it runs.

The ``bench`` package sits above ``finmon`` (it measures the composed product), so ``finmon.cli`` reaches it
only through this declaration module and lazy imports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from inference.errors import ConfigError
from inference.serving.triton_repository import GPU_REPOSITORY
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)


def _model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", type=int, default=None, help="tweets (default 1000, --quick 256)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default, all cores)")
    p.add_argument("--no-fusion", action="store_true", help="skip the transformer-fusion variant")
    p.add_argument("--compare", type=Path, default=None,
                   help="another exported version folder (e.g. the model before a promotion), run in the same rounds")


def _serving(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", type=int, default=None, help="documents (default 512, --quick 192)")
    p.add_argument("--concurrency", type=int, default=64, help="callers, each awaiting one document at a time")
    p.add_argument("--url", default=None, help="a running Triton (default: start the bundled CPU server)")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads, in-process and in Triton")


_INGEST_DEFAULTS = IngestSettings.model_fields  # the worker's defaults, not the environment's


def _e2e(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", type=int, default=None, help="documents at full load (default 2000, --quick 600)")
    p.add_argument("--bootstrap", default=None, help="a running Kafka (default: start one with scripts/kafka)")
    p.add_argument("--batch-size", type=int, default=_INGEST_DEFAULTS["batch_size"].default,
                   help="the worker's batch size")
    p.add_argument("--batch-timeout", type=float, default=_INGEST_DEFAULTS["batch_timeout_s"].default,
                   help="seconds a partial batch waits (the worker's batch_timeout_s)")


def _storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, default=None, help="documents to insert (default 20000, --quick 5000)")
    p.add_argument("--batch-sizes", default="64,512,2048")


def _alerts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subjects", type=int, default=1000)
    p.add_argument("--days", type=int, default=15, help="history per subject (the detector reads 14 days + today)")


def _distillation(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", type=Path, nargs="*",
                   help="exported version folders, training or teacher checkpoints (default: the shipped model)")
    p.add_argument("--docs", type=int, default=None, help="tweets timed per model (default 512, --quick 128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="auto", help="torch models' arithmetic")


BENCHMARKS = {
    "model": ("multi-task vs serial single-task, fp32 vs int8, batch sweep, FLOPs and peak fraction", _model),
    "serving": ("in-process vs Triton (client batching, one request per document), p50/p99", _serving),
    "e2e": ("real Kafka -> worker -> ClickHouse: docs/s against the model's, produce->queryable latency", _e2e),
    "storage": ("insert rows/s through the project's ClickHouse writer", _storage),
    "alerts": ("one detection pass over 1,000 subjects", _alerts),
    "distillation": ("teacher, students and the shipped model: dev quality and docs/s in one run", _distillation),
}


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks: print a table, --json FILE for the figures")
    which = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (help_text, add) in BENCHMARKS.items():
        p = which.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--quick", action="store_true", help="smaller run, under two minutes")
        p.add_argument("--json", type=Path, default=None, help="also write the figures and the machine as JSON")
        p.add_argument("--repository", type=Path, default=GPU_REPOSITORY, help="exported model repository")
        add(p)
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.repository.is_dir():
        raise ConfigError(f"no such model repository: {args.repository}")
    compare = getattr(args, "compare", None)
    if compare is not None and not (compare / "model.onnx").is_file():
        raise ConfigError(f"--compare {compare}: no model.onnx there (an exported version folder is expected)")
    module = importlib.import_module(f"bench.{args.benchmark}")
    report = module.main(args)
    print(report.text())
    if args.json:
        report.write_json(args.json)
        log.info("wrote %s", args.json)
    return 0
