"""Cost of entity linking against the in-process model, per document of the bundled demo stream.

    python -m bench.linking [--docs 512] [--threads 2]

The model's time per document is measured with linking switched off (the predictor's decode links every span
through the same linker), then the linker runs alone over the spans the model found, document by document as
the pipeline does. Prints mentions/s of the linker and its share of the per-document time (the target: <= 10 %).
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

from inference.linking.installed import load_default_graph
from inference.linking.linker import EntityLinker
from inference.serving.predictor import load_predictor
from inference.settings import REPO_ROOT, model_settings
from ingest.produce import read_lines
from ingest.records import RawDocument, RecordError

STREAM = REPO_ROOT / "ingest" / "samples" / "demo_stream.jsonl.gz"


def _texts(n: int) -> list[str]:
    out = []
    for line in read_lines(STREAM):
        try:
            out.append(RawDocument.parse_json(line).text)
        except RecordError:  # the stream carries malformed lines on purpose (the dead-letter demo)
            continue
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    texts = _texts(args.docs)
    t = time.perf_counter()
    linker = EntityLinker(load_default_graph())
    graph_s = time.perf_counter() - t
    predictor = load_predictor(model_settings(threads=args.threads))
    with mock.patch("inference.decoding.decode.default_linker", return_value=None):  # the model alone
        predictor.predict(texts[:64])
        model = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            predictions = predictor.predict(texts)
            model.append((time.perf_counter() - t) / len(texts))
    docs = [(p.entities, p.topic) for p in predictions]
    mentions = sum(len(spans) for spans, _ in docs)
    link = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for spans, topic in docs:
            linker.link(spans, topic)
        link.append((time.perf_counter() - t) / len(texts))
    model_s, link_s = statistics.median(model), statistics.median(link)
    print(f"{len(texts)} documents of the demo stream, {mentions} mentions, {args.threads} threads, "
          f"{len(linker.graph.nodes):,} graph nodes (loaded in {graph_s:.2f} s, once per process)")
    per_doc = mentions / len(texts)
    print(f"{'stage':<22}{'ms/doc':>10}{'docs/s':>10}{'mentions/s':>13}{'share of doc time':>20}")
    for name, s in (("model (in-process)", model_s), ("linking", link_s)):
        print(f"{name:<22}{s * 1e3:>10.3f}{1 / s:>10,.0f}{per_doc / s:>13,.0f}{s / (model_s + link_s):>19.2%}")


if __name__ == "__main__":
    main()
