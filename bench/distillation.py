"""`finmon bench distillation`: the teacher, the students and the shipped model side by side: dev-split quality and
docs/s in one run, with the TF-IDF baseline's scores in the same table.

Each model is an exported version folder (onnxruntime, as served), a training checkpoint or a teacher checkpoint
(torch; ``--precision`` decides its arithmetic). Speed is measured on the same tweets for every model, in
alternating rounds, at one batch size. The quality figures are ``finmon eval --dev``'s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.corpus import texts
from bench.report import Report, cpu_seconds
from inference.errors import ConfigError
from inference.evaluation.evaluate import evaluate_files
from inference.serving.triton_repository import latest_version


def _runner(folder: Path, bf16: bool):
    """(name, kind, parameters, run(list of texts)) for a model folder."""
    from inference.training.distillation import TEACHER_MARK
    from inference.tokenize import TextTokenizer

    if (folder / TEACHER_MARK).is_file() or (folder / "model.pt").is_file():
        import torch

        from inference.training.model import load_checkpoint

        model, tok = load_checkpoint(folder), TextTokenizer.from_dir(folder)
        kind = f"torch {'bf16' if bf16 else 'fp32'}" + (", teacher" if (folder / TEACHER_MARK).is_file() else "")

        def run(batch: list[str]) -> None:
            b = tok.encode_texts(batch)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(*(torch.from_numpy(a) for a in b.arrays().values()))

        return kind, sum(p.numel() for p in model.parameters()), run
    if not (folder / "model.onnx").is_file():
        raise ConfigError(f"{folder}: not an exported version folder nor a training or teacher checkpoint")
    import onnx

    from inference.serving.predictor import OnnxPredictor

    predictor = OnnxPredictor(folder)
    params = sum(int(np.prod(t.dims)) for t in onnx.load(str(folder / "model.onnx")).graph.initializer)
    return "onnxruntime", params, lambda batch: predictor.run(predictor.tokenizer.encode_texts(batch))


def run(models: list[Path], docs: int = 512, batch: int = 32, rounds: int = 2, bf16: bool = True,
        threads: int = 0) -> Report:
    if threads:
        import torch

        torch.set_num_threads(threads)
    corpus = sorted(texts(docs), key=len)
    chunks = [corpus[i : i + batch] for i in range(0, len(corpus), batch)]
    runners = {m: _runner(m, bf16) for m in models}
    rates: dict[Path, list[tuple[float, float]]] = {m: [] for m in models}
    for r in range(rounds):  # alternate the models, so that a change of machine load hits all of them
        for m in models if r % 2 == 0 else reversed(models):
            run_batch = runners[m][2]
            run_batch(chunks[0])  # warm-up
            t0, c0 = time.perf_counter(), cpu_seconds()
            for chunk in chunks:
                run_batch(chunk)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            rates[m].append((len(corpus) / wall, len(corpus) / max(cpu, 1e-9)))
    report = Report("distillation", ["model", "runs on", "parameters (M)", "topic acc", "topic macro-F1", "sentiment acc",
                                "sentiment macro-F1", "docs/s", "docs/CPU-s"])
    baseline = None
    for m in models:
        q = evaluate_files(m, dev=True, baselines=baseline is None)
        baseline = baseline or q.get("baseline")
        rate, per_cpu = max(rates[m])
        report.add(q["model_version"], runners[m][0], runners[m][1] / 1e6, q["dev_topic"]["accuracy"],
                   q["dev_topic"]["macro_f1"], q["dev_sentiment"]["accuracy"], q["dev_sentiment"]["macro_f1"],
                   rate, per_cpu)
        report.figures.setdefault("models", []).append({
            "model_version": q["model_version"], "docs_per_s": rate, "parameters": runners[m][1],
            **{f"{k}_{m_}": q[k][m_] for k in ("dev_topic", "dev_sentiment") for m_ in ("accuracy", "macro_f1")}})
    if baseline:
        report.add(f"[{baseline['name']}]", "scikit-learn", "", baseline["dev_topic"]["accuracy"],
                   baseline["dev_topic"]["macro_f1"], baseline["dev_sentiment"]["accuracy"],
                   baseline["dev_sentiment"]["macro_f1"], "", "")
    report.figures.update({"docs": len(corpus), "batch": batch, "rounds": rounds})
    report.notes.append("quality: the recipe's dev splits (finmon eval --dev); speed: best of the alternating rounds")
    return report


def main(args: argparse.Namespace) -> Report:
    models = list(args.models) or [latest_version(args.repository).path]
    for m in models:
        if not Path(m).is_dir():
            raise ConfigError(f"no such model folder: {m}")
    from inference.training.train import use_bf16

    return run(models, docs=args.docs or (128 if args.quick else 512), batch=args.batch_size,
               rounds=2 if args.quick else 3, bf16=use_bf16(args.precision), threads=args.threads)
