"""Training batches: encode every example once, bucket by length, and interleave the tasks.

No dataset carries all three labels, so each batch holds ONE task's examples (partial labels per batch) and the
epoch is a shuffled sequence of task batches. ``sampling`` decides how many batches each task gets per epoch:
``proportional`` (each example about once per epoch), ``sqrt`` (temperature 2: small tasks are revisited more)
or ``uniform``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from inference.training.data import TextExample, TokenExample
from inference.labels import IGNORE_INDEX, NER_TAGS, SENTIMENTS, TOPICS
from inference.tokenize import Batch, TextTokenizer

TASKS = ("topic", "sentiment", "ner")


@dataclass
class TaskBatch:
    task: str
    batch: Batch
    labels: np.ndarray  # (batch,) class ids or (batch, classes) target probabilities; (batch, length) for "ner"


def token_labels(batch: Batch, examples: Sequence[TokenExample]) -> np.ndarray:
    """Word tags spread over word pieces: the first piece keeps the tag, later pieces of a B-X/I-X word get I-X."""
    labels = np.full(batch.input_ids.shape, IGNORE_INDEX, dtype=np.int64)
    for i, (enc, ex) in enumerate(zip(batch.encodings, examples)):
        previous = None
        for j, word in enumerate(enc.word_ids):
            if word is None or ex.tags[word] < 0:  # UNLABELLED words (partial labels) add no loss
                previous = word
                continue
            tag = NER_TAGS[ex.tags[word]]
            if word == previous and tag != "O":
                tag = "I-" + tag[2:]
            labels[i, j] = NER_TAGS.index(tag)
            previous = word
    return labels


class TaskData:
    """One task's training examples, ready to be cut into length-bucketed batches."""

    def __init__(self, task: str, examples: Sequence[TextExample] | Sequence[TokenExample]) -> None:
        self.task = task
        self.examples = list(examples)

    def length(self, i: int) -> int:
        ex = self.examples[i]
        return len(ex.text) // 4 if isinstance(ex, TextExample) else sum(len(t) + 1 for t in ex.tokens) // 4

    def batches(self, tokenizer: TextTokenizer, size: int, rng: random.Random) -> list[TaskBatch]:
        order = list(range(len(self.examples)))
        rng.shuffle(order)
        out: list[TaskBatch] = []
        chunk = size * 50  # sort within chunks: little padding, still random
        for c in range(0, len(order), chunk):
            part = sorted(order[c : c + chunk], key=self.length)
            out.extend(self.make(tokenizer, [self.examples[i] for i in part[b : b + size]])
                       for b in range(0, len(part), size))
        rng.shuffle(out)
        return out

    def make(self, tokenizer: TextTokenizer, examples: list) -> TaskBatch:
        if self.task == "ner":
            batch = tokenizer.encode_words([e.tokens for e in examples])
            return TaskBatch(self.task, batch, token_labels(batch, examples))
        batch = tokenizer.encode_texts([e.text for e in examples])
        if not any(e.soft for e in examples):
            return TaskBatch(self.task, batch, np.array([e.label for e in examples], dtype=np.int64))
        eye = np.eye(len(TOPICS) if self.task == "topic" else len(SENTIMENTS), dtype=np.float32)
        targets = np.stack([np.asarray(e.soft, dtype=np.float32) if e.soft else eye[e.label] for e in examples])
        return TaskBatch(self.task, batch, targets)


def epoch_plan(tasks: Sequence[TaskData], size: int, sampling: str, rng: random.Random) -> list[tuple[str, int]]:
    """How many batches of each task an epoch has, as a shuffled list of (task, k)."""
    counts = {t.task: max(1, len(t.examples) // size) for t in tasks}
    total = sum(counts.values())
    if sampling == "sqrt":
        weights = {k: v**0.5 for k, v in counts.items()}
    elif sampling == "uniform":
        weights = {k: 1.0 for k in counts}
    elif sampling == "proportional":
        weights = {k: float(v) for k, v in counts.items()}
    else:
        raise ValueError(f"unknown sampling {sampling!r}")
    norm = sum(weights.values())
    plan = [(task, k) for task, w in weights.items() for k in range(max(1, round(total * w / norm)))]
    rng.shuffle(plan)
    return plan


def stream(tasks: Sequence[TaskData], tokenizer: TextTokenizer, size: int, sampling: str,
           rng: random.Random) -> Iterator[TaskBatch]:
    """One epoch of batches following ``epoch_plan``; a task that runs out of batches starts a new pass."""
    by_name = {t.task: t for t in tasks}
    pools: dict[str, list[TaskBatch]] = {name: [] for name in by_name}
    for task, _ in epoch_plan(tasks, size, sampling, rng):
        if not pools[task]:
            pools[task] = by_name[task].batches(tokenizer, size, rng)
        yield pools[task].pop()
