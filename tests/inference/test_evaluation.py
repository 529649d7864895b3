"""Entity metrics without seqeval agree with seqeval's strict IOB2 scores (where seqeval is installed)."""

from __future__ import annotations

import random

import pytest

from inference.evaluation.evaluate import entities, entity_metrics


def test_strict_iob2_entities() -> None:
    tags = ["B-ORG", "I-ORG", "O", "I-PER", "B-LOC", "B-LOC", "I-PER", "B-PER", "I-PER"]
    # an I- without its B- starts nothing; a type change ends an entity
    assert entities(tags) == {("ORG", 0, 2), ("LOC", 4, 5), ("LOC", 5, 6), ("PER", 7, 9)}
    assert entities([]) == set() and entities(["O", "I-ORG"]) == set()


def test_agrees_with_seqeval_on_random_tags() -> None:
    seqeval = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    rng = random.Random(7)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sentence] for sentence in gold]
    ours = entity_metrics(gold, pred)
    kw = {"mode": "strict", "scheme": IOB2}
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred, **kw))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred, **kw))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred, **kw))
