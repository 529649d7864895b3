"""Draw the mentions of the linking evaluation file (inference/linking/resources/linking_eval.jsonl) from the
permissively licensed shared datasets; the gold ids are then set by hand (see resources/LINKING_EVAL.md).

- FinEntity (ODC-BY 1.0): its annotated entity spans (as ORG) and every Reuters code ``<JNJ.N>`` (as TICKER);
- Twitter financial news topic (MIT): the spans the shipped model returns (ORG/LOC/PER, cashtags as TICKER).

Usage: python scripts/kg_eval_sample.py OUT.jsonl SPLIT [EXCLUDE.jsonl]
  SPLIT dev: 55 news texts (seed 11) + 95 tweets (seed 12); SPLIT test: 35 (seed 21) + 60 (seed 22), drawn after
  the linking rules were frozen; documents already in EXCLUDE are skipped. Fixed seeds: the same file every time.
"""

from __future__ import annotations

import csv
import html
import json
import random
import sys
from pathlib import Path

from inference.decoding.tickers import find_tickers
from inference.serving.predictor import load_predictor
from inference.training.data import default_data_dir

SPLITS = {"dev": (55, 11, 95, 12), "test": (35, 21, 60, 22)}  # news texts, seed, tweets, seed


def main() -> None:
    out, split = Path(sys.argv[1]), sys.argv[2]
    seen = set()
    if len(sys.argv) > 3:
        seen = {json.loads(line)["doc"] for line in Path(sys.argv[3]).read_text(encoding="utf-8").splitlines()}
    n_news, news_seed, n_tweets, tweet_seed = SPLITS[split]
    data = default_data_dir()
    rows = []
    fin = json.loads((data / "finentity/FinEntity.json").read_text(encoding="utf-8"))
    news = [i for i in range(len(fin)) if f"finentity:{i}" not in seen]
    for i in sorted(random.Random(news_seed).sample(news, n_news)):
        text = fin[i]["content"]
        spans = []
        for a in fin[i]["annotations"]:
            start = text.find(a["value"])  # SOURCE.md: some offsets are shifted; re-locate the value
            if start >= 0:
                spans.append((start, start + len(a["value"]), "ORG", a["value"], None))
        spans += [(t.start, t.end, "TICKER", t.text, t.company_id) for t in find_tickers(text) if t.text[0] == "<"]
        rows += [_row("finentity", i, text, s, split) for s in sorted(set(spans))]
    with open(data / "twitter_financial_news_topic/topic_train.csv", encoding="utf-8", newline="") as fh:
        tweets = [html.unescape(r["text"]) for r in csv.DictReader(fh)]
    pool = [i for i in range(len(tweets)) if f"tfn_topic:{i}" not in seen]
    picked = sorted(random.Random(tweet_seed).sample(pool, n_tweets))
    predictions = load_predictor().predict([tweets[i] for i in picked])
    for i, p in zip(picked, predictions, strict=True):
        rows += [_row("tfn_topic", i, tweets[i], (e.start, e.end, e.label, e.text,
                                                  e.text.lstrip("$").upper() if e.label == "TICKER" else None), split)
                 for e in p.entities]
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} mentions -> {out}")


def _row(source: str, index: int, text: str, span: tuple, split: str) -> dict:
    start, end, label, surface, symbol = span
    return {"split": split, "source": source, "doc": f"{source}:{index}", "text": text, "start": start, "end": end, "label": label,
            "mention": surface, **({"symbol": symbol} if symbol else {}), "gold": None}


if __name__ == "__main__":
    main()
