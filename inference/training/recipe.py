"""The training recipe: every hyper-parameter, and the (train, dev) split of each task. No torch needed, so the
command line can show the defaults without loading the training stack."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from inference.labels import SENTIMENTS, TOPICS
from inference.training import data as D

NER_SOURCES: dict[str, tuple[tuple[str, ...], object]] = {
    "conll": (("conll2003_en/train.txt",), D.read_conll),
    "finer": (("finer_ord/train.csv",), D.read_finer_csv),
    "sec": (("sec_filings_ner_alvarado2015/FIN5_train.txt",), D.read_sec),
    # social text (CC BY 4.0): teaches the token head what tweets look like (URLs, cashtags, lower case)
    "btc": (tuple(f"broad_twitter_corpus_ner/{s}.conll" for s in "abefgh"), D.read_btc),
    "wnut": (("wnut17_emerging_entities/wnut17train.conll",), D.read_wnut),
}

# Extra sentiment sources go to train only: the sentiment dev split stays the Twitter one, the text finmon reads.
EXTRA_SENTIMENT_SOURCES: dict[str, tuple[str, object]] = {
    "phrasebank": ("financial_phrasebank/Sentences_66Agree.txt", D.read_phrasebank),  # news sentences, CC BY-NC-SA
    "fiqa": ("fiqa_2018_task1_sentiment", D.read_fiqa),  # headlines and StockTwits posts, scores thresholded
}


@dataclass
class TrainConfig:
    data_dir: Path = field(default_factory=D.default_data_dir)
    out_dir: Path = Path("runs/mtl")
    tasks: tuple[str, ...] = ("topic", "sentiment", "ner")
    task_weights: dict[str, float] = field(default_factory=lambda: {"topic": 1.0, "sentiment": 1.0, "ner": 1.0})
    sampling: str = "proportional"
    class_weighting: str = "none"  # "none" or "inverse_sqrt": text-task loss weight per class ~ count**-0.5 (mean 1)
    label_smoothing: float = 0.0  # for the text tasks' cross-entropy
    ner_sources: tuple[str, ...] = ("conll", "finer")
    ner_case_augment: float = 0.0  # share of NER train sentences added again recased (4 in 5 title, 1 in 5 upper)
    ner_negatives: bool = False  # add the topic TRAIN tweets' capitalised common words as O (partial labels)
    sentiment_sources: tuple[str, ...] = ("twitter",)  # "twitter" plus any of EXTRA_SENTIMENT_SOURCES
    pseudo_labels: Path | None = None  # extra sentiment CSV from `finmon pseudo-label` (inference/training/teacher.py)
    epochs: int = 2
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    dropout: float = 0.1
    max_length: int = 128
    patience: int = 1
    dev_fraction: float = 0.1
    seed: int = 13
    freeze_word_embeddings: bool = True
    limit: int = 0  # cap on training examples per task (smoke tests); 0 = all
    tiny: bool = False  # random 2-layer encoder instead of all-MiniLM-L6-v2 (smoke tests)
    init: Path | None = None  # start from this checkpoint instead of the base weights
    encoder: Path | None = None  # start from this encoder (`finmon pretrain`'s <out>/encoder) with new heads
    freeze_encoder: bool = False  # train the heads only (with init: adapt a head, the other heads stay exact)
    train_layers: int = 0  # > 0: freeze the encoder but its top k layers (a token branch forking below stays exact)
    token_layers: int = 0  # the token head's own copy of the top k encoder layers (inference.training.model)
    sentiment_layers: int = 0  # the sentiment head's own copy of the top k encoder layers
    threads: int = 0
    precision: str = "fp32"  # "fp32", "bf16" (autocast; weights stay fp32) or "auto" (bf16 where the CPU has bf16 units)
    teacher: bool = False  # fine-tune the distillation teacher (all-mpnet-base-v2, text tasks) instead of the student
    soft_labels: Path | None = None  # `finmon soft-label`'s file: the teacher's probabilities (text tasks, train only)
    soft_weight: float = 0.5  # a gold-labelled text's target: (1 - w) * its label + w * the teacher's probabilities


def _topic_split(cfg: TrainConfig) -> tuple[list, list]:
    d = Path(cfg.data_dir)
    return D.split_dev(D.dedup(D.read_topic_csv(d / "twitter_financial_news_topic/topic_train.csv")),
                       fraction=cfg.dev_fraction, seed=cfg.seed)


def load_splits(cfg: TrainConfig) -> dict[str, tuple[list, list]]:
    """(train, dev) per task; near-duplicates removed from the text sets before a stratified split."""
    d, out = Path(cfg.data_dir), {}
    if "topic" in cfg.tasks:
        out["topic"] = _topic_split(cfg)
    if "sentiment" in cfg.tasks:
        train, dev = D.split_dev(D.dedup(D.read_sentiment_csv(d / "twitter_financial_news_sentiment/sent_train.csv")),
                                 fraction=cfg.dev_fraction, seed=cfg.seed)
        extra = []
        for name in cfg.sentiment_sources:
            if name != "twitter":
                rel, reader = EXTRA_SENTIMENT_SOURCES[name]
                extra += reader(d / rel)  # type: ignore[operator]
        if cfg.pseudo_labels:
            extra += [replace(e, source="pseudo") for e in D.read_sentiment_csv(cfg.pseudo_labels)]
        # no dev text (of either text task) may come back through another source
        held_out = {D.near_duplicate_key(e.text) for _, dv in out.values() for e in dv} | {
            D.near_duplicate_key(e.text) for e in dev}
        out["sentiment"] = (train + [e for e in D.dedup(extra) if D.near_duplicate_key(e.text) not in held_out], dev)
    if "ner" in cfg.tasks:
        train, dev = [], []
        for name in cfg.ner_sources:
            files, reader = NER_SOURCES[name]
            examples = [e for rel in files for e in reader(d / rel)]  # type: ignore[operator]
            t, v = D.split_dev(examples, fraction=cfg.dev_fraction, seed=cfg.seed, key=None)
            train += t
            dev += v
        rng = random.Random(cfg.seed)
        recased = [D.recased(e, "upper" if rng.random() < 0.2 else "title") for e in train
                   if rng.random() < cfg.ner_case_augment]
        extra = [e for e in recased if e is not None]
        if cfg.ner_negatives:  # topic TRAIN tweets only: no dev text of any task comes in
            tweets = out["topic"][0] if "topic" in out else _topic_split(cfg)[0]
            # the convention the entity types follow (CoNLL, FiNER-ORD): BTC also tags titles ("President") as names
            news = [e for e in train if e.source in ("conll", "finer")]
            extra += D.capitalised_negatives([e.text for e in tweets], D.common_words(news))
        out["ner"] = (train + extra, dev)
    if cfg.soft_labels:
        from inference.training.distillation import read_soft_labels

        add_soft_labels(out, read_soft_labels(cfg.soft_labels), cfg.soft_weight)
    if cfg.limit:
        out = {k: (tr[: cfg.limit], dv[: max(8, cfg.limit // 4)]) for k, (tr, dv) in out.items()}
    return out


def add_soft_labels(splits: dict[str, tuple[list, list]], rows: list[dict], weight: float) -> None:
    """Teacher targets for the text tasks' train examples (in place). A train text of a task keeps its gold label
    and gets the target ``(1 - weight) * one-hot + weight * teacher``; a text the task has no label for (a topic
    tweet for sentiment, and so on) is added with the teacher's probabilities alone. A text near a dev text of any
    task, or near another labelled train text of the task, is not added."""
    held_out = {D.near_duplicate_key(e.text) for _, dev in splits.values() for e in dev if isinstance(e, D.TextExample)}
    for task, size in (("topic", len(TOPICS)), ("sentiment", len(SENTIMENTS))):
        if task not in splits:
            continue
        train, dev = splits[task]
        probs = {r["text"]: r[task] for r in rows if r.get(task) is not None}
        labelled = {D.near_duplicate_key(e.text) for e in train}
        mixed = []
        for e in train:
            p = probs.pop(e.text, None)
            gold = np.eye(size)[e.label]
            mixed.append(e if p is None else replace(e, soft=tuple((1 - weight) * gold + weight * np.asarray(p))))
        extra, seen = [], held_out | labelled
        for text, p in probs.items():
            key = D.near_duplicate_key(text)
            if key and key not in seen:
                seen.add(key)
                extra.append(D.TextExample(text, int(np.argmax(p)), "teacher", tuple(p)))
        splits[task] = (mixed + extra, dev)


@dataclass
class PretrainConfig:
    """`finmon pretrain`'s recipe (masked-LM continued pre-training); torch-free, so the CLI can show it."""

    out_dir: Path = Path("runs/pretrain")
    epochs: int = 1
    max_steps: int = 0  # stop after this many steps (0: the epochs decide)
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.06
    mlm_probability: float = 0.15
    max_length: int = 128
    seed: int = 13
    threads: int = 0
    tiny: bool = False  # random 2-layer encoder (smoke tests)
