"""Inference cost of the multi-task model (one encoder pass) vs the three single-task models (three passes).

    python -m bench.model --mtl models/triton/finmon_mtl/1 --single runs/single-topic/best runs/single-sentiment/best \
        runs/single-ner/best [--docs 1000] [--threads 2]

Single-task checkpoints are exported to a temporary repository with the same command as the shipped model.
Texts are tweets from the shared training data. Prints docs/s (median of 3 runs) for each configuration.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from inference.training.data import default_data_dir, read_topic_csv
from inference.serving.predictor import OnnxPredictor


def docs_per_second(predictors: list[OnnxPredictor], texts: list[str], repeats: int = 3) -> float:
    for p in predictors:
        p.predict(texts[:64])  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for p in predictors:
            p.predict(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mtl", type=Path, required=True, help="exported version folder of the multi-task model")
    ap.add_argument("--single", type=Path, nargs="*", default=[], help="single-task training checkpoints")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    texts = [e.text for e in read_topic_csv(default_data_dir() / "twitter_financial_news_topic/topic_train.csv")]
    texts = texts[: args.docs]
    load = lambda path: OnnxPredictor(path, threads=args.threads, batch_size=args.batch_size)  # noqa: E731
    rows = [("multi-task (1 encoder pass)", docs_per_second([load(args.mtl)], texts))]
    if args.single:
        from inference.training.export import export

        with tempfile.TemporaryDirectory() as tmp:
            singles = [load(export(ckpt, repo=Path(tmp) / str(i))) for i, ckpt in enumerate(args.single)]
            rows.append((f"{len(singles)} single-task models ({len(singles)} passes)", docs_per_second(singles, texts)))
    print(f"{'configuration':<36}{'docs/s':>10}   ({len(texts)} tweets, {args.threads} threads, batch {args.batch_size})")
    for name, rate in rows:
        print(f"{name:<36}{rate:>10.1f}")


if __name__ == "__main__":
    main()
