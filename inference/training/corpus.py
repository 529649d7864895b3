"""Unlabelled text for continued pre-training, and the texts it must never contain.

The shared training sets give their TRAIN splits (the recipe's, so the dev splits stay unseen); a text that is a
near-duplicate (``data.near_duplicate_key``: the test the dev split itself uses) of any held-out text is dropped:
every dev split, the hand-checked tweet spans, and any further evaluation file. No torch needed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from inference.settings import REPO_ROOT
from inference.training import data as D
from inference.training.recipe import TrainConfig, load_splits

EVAL_SPANS = REPO_ROOT / "eval" / "tweet_spans.jsonl"


def file_texts(path: Path) -> list[str]:
    """Texts of an evaluation file: a CSV with a ``text`` column, JSONL with a ``text`` field, or CoNLL-style
    token columns (one sentence per blank-line block, joined by spaces)."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [row["text"] for row in csv.DictReader(fh) if row.get("text")]
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [" ".join(e.tokens) for e in D.read_conll(path)]


def corpus_splits(cfg: TrainConfig) -> dict[str, tuple[list, list]]:
    """The recipe's (train, dev) split of every task, whatever tasks ``cfg`` trains."""
    return load_splits(TrainConfig(data_dir=cfg.data_dir, tasks=("topic", "sentiment", "ner"),
                                   ner_sources=cfg.ner_sources, dev_fraction=cfg.dev_fraction, seed=cfg.seed))


def _texts(splits: dict[str, tuple[list, list]], side: int) -> list[str]:
    return [e.text for t in ("topic", "sentiment") for e in splits[t][side]] + [
        " ".join(e.tokens) for e in splits["ner"][side]]


def held_out_keys(splits: dict[str, tuple[list, list]], extra_files: Iterable[Path] = ()) -> set[str]:
    """Near-duplicate keys of every text pre-training must not see: the dev splits, the hand-checked tweet
    spans, and ``extra_files``."""
    texts = _texts(splits, 1)
    for f in ([EVAL_SPANS] if EVAL_SPANS.is_file() else []) + list(extra_files):
        texts += file_texts(f)
    return {D.near_duplicate_key(t) for t in texts}


def shared_texts(splits: dict[str, tuple[list, list]], held_out: set[str]) -> list[str]:
    """Train-split texts of the topic, sentiment and NER sets, de-duplicated, none near a held-out text."""
    return unique(_texts(splits, 0), held_out)


def unique(texts: Iterable[str], held_out: set[str]) -> list[str]:
    """First text per near-duplicate key, skipping held-out keys; input order kept."""
    seen, out = set(held_out), []
    for t in texts:
        k = D.near_duplicate_key(t)
        if k and k not in seen:
            seen.add(k)
            out.append(t)
    return out
