"""`finmon bench model`: what one encoder pass costs, and what the optimised graph buys.

Measured side by side in one run, on the same pre-tokenised batches of real tweets (sorted by length, so each
batch pads only to its own longest text, as ``OnnxPredictor`` does):

* the export as ``finmon export`` writes it (int8-stored weights, fp32 math), the fp32-weight graph, and the
  int8-compute graph of ``finmon optimize`` (optionally with onnxruntime's transformer fusions);
* the multi-task model (one pass, three heads) against three single-task models run one after the other. The
  single-task checkpoints are not in git, so the stand-ins are the SAME encoder exported three times with one
  head each (an honest lower bound on their cost: a real single-task model has the same encoder);
* a batch-size sweep; FLOPs per document from the measured token lengths and the fraction of this CPU's
  measured fp32 matmul peak that the model reaches.

Variants run in interleaved rounds so the load of other processes hits them alike; the median round counts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bench.corpus import texts
from bench.report import Report, cpu_seconds
from inference.serving.optimize import HIDDEN_SIZE, fp32_math, is_int8_compute, optimize_onnx
from inference.serving.triton_repository import GPU_REPOSITORY, latest_version, version_metadata
from inference.tensors import OUTPUTS
from inference.tokenize import TextTokenizer

LAYERS, FFN = 6, 1536  # all-MiniLM-L6-v2


def flops_per_doc(tokens: np.ndarray, layers: int = LAYERS) -> float:
    """Multiply-adds x2 of the encoder and heads for documents of these token lengths (mean); ``layers`` counts
    the token branch's own layers too (inference.training.model)."""
    t = tokens.astype(float)
    dense = 2 * t * (4 * HIDDEN_SIZE * HIDDEN_SIZE + 2 * HIDDEN_SIZE * FFN)
    attention = 4 * t * t * HIDDEN_SIZE
    heads = 2 * t * HIDDEN_SIZE * 7 + 2 * HIDDEN_SIZE * (20 + 3)
    return float(np.mean(layers * (dense + attention) + heads))


def matmul_peak_gflops(threads: int, seconds: float = 1.0) -> float:
    """fp32 GFLOP/s of a large square MatMul in onnxruntime on this CPU (the ceiling for the fp32 graph)."""
    from onnx import TensorProto, helper

    n = 1024
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    session = _session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                       threads)
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    feeds = {"a": a, "b": a}
    session.run(None, feeds)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        session.run(None, feeds)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _session(model: bytes | str, threads: int) -> "ort.InferenceSession":

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def single_head(model: onnx.ModelProto, output: str) -> bytes:
    """The graph computing only ``output`` (encoder + one head): a single-task stand-in."""
    from onnx.utils import Extractor

    inputs = [i.name for i in model.graph.input]
    return Extractor(model).extract_model(inputs, [output]).SerializeToString()


def variants(source: Path, work: Path, fuse: bool) -> dict[str, Path]:
    """The export as written today, and the optimised graph(s), as files in ``work``."""
    proto = onnx.load(str(source))
    today, int8 = work / "today.onnx", work / "int8.onnx"
    if is_int8_compute(proto):  # the shipped file is already the optimised one: rebuild today's format from it
        fp32_math(proto)
        onnx.save(proto, str(today))
        int8 = source
    else:
        today = source
        optimize_onnx(source, int8)
    out = {"int8-stored, fp32 math (finmon export)": today}
    fp32 = work / "fp32.onnx"
    optimize_onnx(today, fp32, quantize=False)
    out["fp32 weights"] = fp32
    out["int8 compute (finmon optimize)"] = int8
    if fuse:
        fused = work / "int8_fused.onnx"
        optimize_onnx(today, fused, fuse=True)
        out["int8 compute + transformer fusion"] = fused
    return out


class Runner:
    """Runs a list of session groups over the same batches; one group = models run one after the other."""

    def __init__(self, batches: list[dict[str, np.ndarray]], docs: int) -> None:
        self.batches, self.docs = batches, docs

    def round(self, group: list) -> tuple[float, float]:  # type: ignore[type-arg]
        t0, c0 = time.perf_counter(), cpu_seconds()
        for feeds in self.batches:
            for session, outputs in group:
                session.run(outputs, feeds)
        return self.docs / (time.perf_counter() - t0), self.docs / max(cpu_seconds() - c0, 1e-9)

    def compare(self, groups: dict[str, list], rounds: int) -> dict[str, tuple[float, float]]:  # type: ignore[type-arg]
        for group in groups.values():
            for session, outputs in group:
                session.run(outputs, self.batches[0])  # warm-up
        seen: dict[str, list[tuple[float, float]]] = {k: [] for k in groups}
        for _ in range(rounds):
            for name, group in groups.items():
                seen[name].append(self.round(group))
        return {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in seen.items()}


def tokenised(tokenizer: TextTokenizer, docs: list[str], batch: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    docs = sorted(docs, key=len)
    batches = [tokenizer.encode_texts(docs[i : i + batch]) for i in range(0, len(docs), batch)]
    lengths = np.concatenate([b.attention_mask.sum(axis=1) for b in batches])
    return [b.arrays() for b in batches], lengths


def run(docs: int = 1000, batch: int = 32, threads: int = 0, rounds: int = 3, sweep: tuple[int, ...] = (1, 8, 32, 64),
        repository: Path = GPU_REPOSITORY, fuse: bool = True, compare: Path | None = None) -> Report:
    version = latest_version(repository)
    tokenizer = TextTokenizer.from_dir(version.path, 128)
    corpus = texts(docs)
    report = Report("model", ["configuration", "batch", "docs/s", "docs/CPU-s", "x today"])
    outputs = [s.name for s in OUTPUTS]
    with tempfile.TemporaryDirectory() as tmp:
        files = variants(version.path / "model.onnx", Path(tmp), fuse)
        batches, lengths = tokenised(tokenizer, corpus, batch)
        runner = Runner(batches, len(corpus))
        sessions = {name: _session(str(path), threads) for name, path in files.items()}
        int8_name = "int8 compute (finmon optimize)"
        today_name = "int8-stored, fp32 math (finmon export)"
        int8_proto = onnx.load(str(files[int8_name]))
        singles = [(_session(single_head(int8_proto, o), threads), [o]) for o in outputs]
        groups = {name: [(s, outputs)] for name, s in sessions.items()}
        groups["3 single-task stand-ins, serial (int8)"] = singles
        other = f"{_version_name(compare)} as exported" if compare else None
        if other:
            groups[other] = [(_session(str(Path(compare) / "model.onnx"), threads), outputs)]
        result = runner.compare(groups, rounds)
        base = result[today_name][0]
        for name, (rate, per_cpu) in result.items():
            report.add(name, batch, rate, per_cpu, rate / base)
        best = max((n for n in sessions), key=lambda n: result[n][0])
        sweep_rates = {}
        for size in sweep:
            sized, _ = tokenised(tokenizer, corpus, size)
            sr = Runner(sized, len(corpus)).compare({int8_name: [(sessions[int8_name], outputs)]}, max(1, rounds - 1))
            sweep_rates[size] = sr[int8_name]
            report.add(f"{int8_name}, batch sweep", size, sr[int8_name][0], sr[int8_name][1], sr[int8_name][0] / base)
    meta = version_metadata(version.path)
    flops = flops_per_doc(lengths, LAYERS + sum(int(meta.get(f"{b}_layers", 0)) for b in ("token", "sentiment")))
    peak = matmul_peak_gflops(threads)
    multi, serial = result[int8_name][0], result["3 single-task stand-ins, serial (int8)"][0]
    report.figures.update({
        "model_version": version.model_version, "docs": len(corpus), "threads": threads or "onnxruntime default",
        "multitask_docs_per_s": multi, "serial_docs_per_s": serial, "ratio": multi / serial,
        "today_docs_per_s": base, "fp32_docs_per_s": result["fp32 weights"][0], "int8_compute_docs_per_s": multi,
        "optimised_vs_today": multi / base, "fastest": best,
        "mean_tokens_per_doc": float(lengths.mean()), "gflop_per_doc": flops / 1e9,
        "fp32_matmul_peak_gflops": peak, "today_fraction_of_fp32_peak": base * flops / 1e9 / peak,
        "int8_fraction_of_fp32_peak": multi * flops / 1e9 / peak,
        "batch_sweep_docs_per_s": {str(k): v[0] for k, v in sweep_rates.items()},
    })
    if other:
        report.figures.update({"compared_model_version": _version_name(compare), "compared_docs_per_s": result[other][0],
                               "today_vs_compared": base / result[other][0]})
    report.notes.append("single-task stand-ins: the shipped encoder extracted three times with one head each "
                        "(no single-task checkpoints in git)")
    return report


def _version_name(version_dir: Path) -> str:
    return version_metadata(version_dir).get("model_version", str(version_dir))


def main(args: argparse.Namespace) -> Report:
    quick = args.quick
    return run(docs=args.docs or (256 if quick else 1000), batch=args.batch_size, threads=args.threads,
               rounds=2 if quick else 3, sweep=(1, 32) if quick else (1, 8, 32, 64), repository=args.repository,
               fuse=not args.no_fusion, compare=getattr(args, "compare", None))
