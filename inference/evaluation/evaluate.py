"""Task metrics for any model runner (torch during training, onnxruntime for the shipped model).

A runner maps a tokenised ``Batch`` to ``(topic_logits, sentiment_logits, token_logits)`` numpy arrays.
Entity F1 is the strict IOB2 entity-level score (seqeval's, computed here: the base install has no seqeval) over
PER/LOC/ORG at word level: a word's tag is the tag
predicted for its first word piece (MISC is mapped to O in the gold data, so it is ignored on both sides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.training.data import TextExample, TokenExample
from inference.labels import LEARNED_ENTITY_TYPES, NER_TAGS
from inference.tokenize import Batch, TextTokenizer

if TYPE_CHECKING:
    from inference.serving.predictor import OnnxPredictor
    from inference.training.recipe import TrainConfig

Runner = Callable[[Batch], tuple[np.ndarray, np.ndarray, np.ndarray]]
HEAD = {"topic": 0, "sentiment": 1}


def length_batches(items: Sequence, size: int):
    """``(indices, items)`` batches in order of length, so that each batch pads little."""
    order = sorted(range(len(items)), key=lambda i: len(str(items[i])))
    for b in range(0, len(order), size):
        idx = order[b : b + size]
        yield idx, [items[i] for i in idx]


def classify(runner: Runner, tokenizer: TextTokenizer, texts: Sequence[str], head: str,
             batch_size: int = 64) -> np.ndarray:
    """Predicted class index per text for the ``topic`` or ``sentiment`` head."""
    out = np.zeros(len(texts), dtype=np.int64)
    for idx, part in length_batches(texts, batch_size):
        logits = runner(tokenizer.encode_texts(part))[HEAD[head]]
        out[idx] = logits.argmax(-1)
    return out


def word_tags(runner: Runner, tokenizer: TextTokenizer, sentences: Sequence[Sequence[str]],
              batch_size: int = 64) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in sentences]
    for idx, part in length_batches(sentences, batch_size):
        batch = tokenizer.encode_words(part)
        pred = runner(batch)[2].argmax(-1)
        for row, i in enumerate(idx):
            tags = ["O"] * len(sentences[i])
            seen: set[int] = set()
            for j, word in enumerate(batch.encodings[row].word_ids):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags[word] = NER_TAGS[int(pred[row, j])]
            out[i] = tags
    return out


def text_metrics(gold: Sequence[int], pred: Sequence[int], n_classes: int,
                 names: Sequence[str] | None = None) -> dict:
    """Accuracy, macro-F1 (over classes seen in gold or pred) and n; with ``names``, also ``per_class``:
    ``{name: {"f1", "n"}}`` (n = gold count) for every class."""
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    f1s, per_class = [], {}
    for c in range(n_classes):
        tp = int(((pred_a == c) & (gold_a == c)).sum())
        fp = int(((pred_a == c) & (gold_a != c)).sum())
        fn = int(((pred_a != c) & (gold_a == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
        if names is not None:
            per_class[names[c]] = {"f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0, "n": tp + fn}
    out: dict = {"accuracy": float((gold_a == pred_a).mean()) if len(gold_a) else 0.0,
                 "macro_f1": float(np.mean(f1s)) if f1s else 0.0, "n": int(len(gold_a))}
    if names is not None:
        out["per_class"] = per_class
    return out


def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Strict IOB2 entities (type, start, end) of one sentence: a B-X and the I-X that follow it; an I-X with no
    B-X before it starts nothing (seqeval's ``mode="strict", scheme=IOB2``, without needing seqeval)."""
    found, start, kind = set(), None, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and not (prefix == "I" and label == kind):
            found.add((kind, start, i))
            start = None
        if prefix == "B":
            start, kind = i, label
    return found


def entity_metrics(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity precision, recall and F1 (strict IOB2) over sentences."""
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        ge, pe = entities(g), entities(p)
        tp, n_gold, n_pred = tp + len(ge & pe), n_gold + len(ge), n_pred + len(pe)
    return _micro(tp, n_gold, n_pred, len(gold))


def _micro(tp: int, n_gold: int, n_pred: int, n: int) -> dict[str, float]:
    precision, recall = (tp / n_pred if n_pred else 0.0), (tp / n_gold if n_gold else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n": n}


def evaluate_text(runner: Runner, tokenizer: TextTokenizer, examples: Sequence[TextExample], head: str,
                  n_classes: int, names: Sequence[str] | None = None) -> dict:
    pred = classify(runner, tokenizer, [e.text for e in examples], head)
    return text_metrics([e.label for e in examples], pred, n_classes, names)


def evaluate_ner(runner: Runner, tokenizer: TextTokenizer, examples: Sequence[TokenExample]) -> dict[str, float]:
    pred = word_tags(runner, tokenizer, [e.tokens for e in examples])
    gold = [[NER_TAGS[t] for t in e.tags] for e in examples]
    return entity_metrics(gold, pred)


def decoded_entity_metrics(predictor: "OnnxPredictor", examples: Sequence[TokenExample]) -> dict[str, float]:
    """Entity precision, recall and F1 of the spans the monitor stores: the full decoder (whole words, trimming,
    abbreviations, the span-score bars) on each sentence read as its words joined by one space, against the gold
    entities as character spans. ``evaluate_ner`` scores the token head's word tags alone, before any of that."""
    texts, gold = [], []
    for e in examples:
        starts, pos = [], 0
        for w in e.tokens:
            starts.append(pos)
            pos += len(w) + 1
        texts.append(" ".join(e.tokens))
        gold.append({(starts[a], starts[b - 1] + len(e.tokens[b - 1]), kind)
                     for kind, a, b in entities([NER_TAGS[t] for t in e.tags])})
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predictor.predict(texts), strict=True):
        found = {(s.start, s.end, s.label) for s in p.entities if s.label in LEARNED_ENTITY_TYPES}
        tp, n_gold, n_pred = tp + len(g & found), n_gold + len(g), n_pred + len(found)
    return _micro(tp, n_gold, n_pred, len(examples))


# (unlinked, linked) span-score bars that --span-curve compares; (0, 0) keeps every span the decoder finds
SPAN_BARS = ((0.0, 0.0), (0.6, 0.5), (0.7, 0.5), (0.8, 0.5), (0.85, 0.5), (0.85, 0.7), (0.9, 0.5), (0.9, 0.7),
             (0.95, 0.7))


def span_curve(predictor: "OnnxPredictor", spans: Path, news: dict[str, Sequence[TokenExample]],
               bars: Sequence[tuple[float, float]] = SPAN_BARS) -> list[dict]:
    """Span precision on the hand-checked file, and the decoded entity F1 of each news set, at each pair of bars:
    what choosing ``FINMON_MODEL_ENTITY_MIN_SCORE`` / ``..._LINKED_ENTITY_MIN_SCORE`` trades, in one table."""
    from inference.evaluation.spans import span_precision

    served, rows = tuple(predictor.min_scores), []
    try:
        for bar in sorted(set(bars) | {served}):  # the served bars are always a row
            predictor.min_scores = bar
            row = {"min_score": bar[0], "linked_min_score": bar[1], "served": bar == served,
                   "tweet_spans": span_precision(predictor, spans)}
            rows.append(row | {name: decoded_entity_metrics(predictor, ex) for name, ex in news.items()})
    finally:
        predictor.min_scores = served
    return rows


def evaluate_files(model: Path | None = None, *, topic_csv: Path | None = None, sentiment_csv: Path | None = None,
                   finer_csv: Path | None = None, conll: Path | None = None, dev: bool = False,
                   baselines: bool = False, per_class: bool = False, spans: Path | None = None,
                   curve: bool = False, recipe: "TrainConfig | None" = None) -> dict:
    """`finmon eval`: metrics of an exported model (default: the shipped one) on files in the shared formats.

    ``model`` may also be a training checkpoint folder (model.pt) or a distillation teacher's
    (inference.training.distillation), evaluated with torch; a teacher has no token head, so it gets no entity
    metrics. ``baselines`` adds
    ``result["baseline"]``: the TF-IDF + logistic-regression scores on the same text sets (same keys), trained on
    the recipe's train split. ``per_class`` adds ``per_class`` F1 to the text tasks; ``spans`` adds
    ``tweet_spans`` (precision on a hand-checked span file, inference.evaluation.spans); ``curve`` adds
    ``span_curve`` (``span_curve`` over the given NER files) and the decoded entity F1 of each NER file at the served
    bars (``decoded_ner_finer``, ``decoded_ner_conll``). ``recipe`` (default: the
    training recipe's defaults) decides the dev splits and the baseline's training examples.
    """
    from inference.training import data as D
    from inference.labels import SENTIMENTS, TOPICS
    from inference.serving.predictor import OnnxPredictor, load_predictor

    from inference.training.distillation import TEACHER_MARK

    teacher = model is not None and (Path(model) / TEACHER_MARK).is_file()
    if model is not None and ((Path(model) / "model.pt").is_file() or teacher):
        from inference.training.model import load_checkpoint, torch_runner

        run: Runner = torch_runner(load_checkpoint(model))
        tokenizer, version = TextTokenizer.from_dir(model), f"{'teacher' if teacher else 'checkpoint'}:{model}"
        predictor = None
    else:
        predictor = OnnxPredictor(Path(model)) if model else load_predictor()
        run, tokenizer, version = predictor.run, predictor.tokenizer, predictor.model_version
    result: dict = {"model_version": version}
    texts: dict[str, tuple[list[TextExample], str]] = {}  # result key -> (examples, head)
    if topic_csv:
        texts["topic"] = (D.read_topic_csv(topic_csv), "topic")
    if sentiment_csv:
        texts["sentiment"] = (D.read_sentiment_csv(sentiment_csv), "sentiment")
    splits: dict = {}
    if dev or baselines:  # the (train, dev) splits the training recipe carves from train (same seed, same split)
        from inference.training.recipe import TrainConfig, load_splits

        splits = load_splits(recipe or TrainConfig())
    if dev:
        texts["dev_topic"] = (splits["topic"][1], "topic")
        texts["dev_sentiment"] = (splits["sentiment"][1], "sentiment")
    labels = {"topic": TOPICS, "sentiment": SENTIMENTS}
    for key, (examples, head) in texts.items():
        result[key] = evaluate_text(run, tokenizer, examples, head, len(labels[head]),
                                    labels[head] if per_class else None)
    news: dict[str, list[TokenExample]] = {}
    if finer_csv and not teacher:
        news["ner_finer"] = D.read_finer_csv(finer_csv)
    if conll and not teacher:
        news["ner_conll"] = D.read_conll(conll)
    for key, examples in news.items():
        result[key] = evaluate_ner(run, tokenizer, examples)
    if dev and not teacher:
        for source in ("conll", "finer"):
            result[f"dev_ner_{source}"] = evaluate_ner(run, tokenizer, [e for e in splits["ner"][1] if e.source == source])
    if baselines:
        from inference.evaluation.baseline import NAME, TextBaseline

        base: dict = {"name": NAME}
        for head in ("topic", "sentiment"):
            fitted = TextBaseline.fit(splits[head][0])
            for key, (examples, h) in texts.items():
                if h == head:
                    base[key] = text_metrics([e.label for e in examples], fitted.predict([e.text for e in examples]),
                                             len(labels[head]), labels[head] if per_class else None)
        result["baseline"] = base
    if spans or curve:
        from inference.errors import ConfigError
        from inference.evaluation.spans import span_precision

        if predictor is None:
            raise ConfigError("--spans needs an exported model (the decoder runs on onnxruntime), not a checkpoint")
        if spans is None:
            raise ConfigError("--span-curve needs --spans FILE (the hand-checked spans)")
        result["tweet_spans"] = span_precision(predictor, spans)
        if curve:
            result["span_curve"] = span_curve(predictor, spans, news)
            for row in result["span_curve"]:
                if row["served"]:
                    result |= {f"decoded_{key}": row[key] for key in news}
    return result


def format_table(result: dict) -> str:
    """The metrics as a text table; baseline rows (``<task> [tfidf-logreg]``) follow the model's row of the same
    task, and per-class F1 (when asked for) follows as a second table."""
    base = result.get("baseline", {})
    rows = [f"model {result['model_version']}", f"{'task':<28}{'n':>7}{'accuracy':>10}{'macro_f1':>10}"
            f"{'precision':>11}{'recall':>8}{'f1':>8}"]

    def row(name: str, m: dict) -> str:
        cells = [f"{m[k]:.4f}" if k in m else "" for k in ("accuracy", "macro_f1", "precision", "recall", "f1")]
        return f"{name:<28}{m.get('n', ''):>7}{cells[0]:>10}{cells[1]:>10}{cells[2]:>11}{cells[3]:>8}{cells[4]:>8}"

    per_class = []
    for task, m in result.items():
        if not isinstance(m, dict) or task == "baseline":
            continue
        rows.append(row(task, m))
        if task in base:
            rows.append(row(f"{task} [{base['name']}]", base[task]))
        for name, c in m.get("per_class", {}).items():
            b = base.get(task, {}).get("per_class", {}).get(name)
            per_class.append(f"{task:<16}{name:<30}{c['n']:>6}{c['f1']:>8.4f}" + (f"{b['f1']:>10.4f}" if b else ""))
    if per_class:
        rows += ["", f"{'task':<16}{'class':<30}{'n':>6}{'f1':>8}" + (f"{'baseline':>10}" if base else "")] + per_class
    curve = result.get("span_curve", [])
    if curve:
        news = [k for k in curve[0] if k.startswith("ner_")]
        rows += ["", "span-score bars (unlinked / linked): tweet span precision, correct spans kept, decoded entity F1",
                 f"{'bars':<14}{'precision':>10}{'untyped':>9}{'correct':>9}{'spans':>7}{'unjudged':>10}"
                 + "".join(f"{k:>12}" for k in news)]
        for r in curve:
            t = r["tweet_spans"]
            bars = f"{r['min_score']:.2f} / {r['linked_min_score']:.2f}" + (" *" if r["served"] else "")
            rows.append(f"{bars:<14}{t['precision']:>10.4f}{t['untyped_precision']:>9.4f}{t['correct']:>9}{t['n']:>7}"
                        f"{t['unjudged']:>10}" + "".join(f"{r[k]['f1']:>12.4f}" for k in news))
        rows.append("* the served bars (FINMON_MODEL_ENTITY_MIN_SCORE / FINMON_MODEL_LINKED_ENTITY_MIN_SCORE)")
    return "\n".join(rows)
