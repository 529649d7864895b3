"""Span precision on a hand-checked file of predicted entity spans (``eval/tweet_spans.jsonl``, see its README).

Each line judges one span ``text[start:end]`` with a ``label`` and a ``verdict``: ``correct`` (a real PER/ORG/LOC
name, right boundaries, right type), ``wrong_type``, ``wrong_boundary`` or ``not_entity``. A model is run on the
file's texts; each of its learned spans (PER/ORG/LOC; rule-made TICKER spans are not judged) that the file judges
counts once: precision = correct / judged. Spans the file does not judge (a new model finds other spans) are
counted as ``unjudged``: when they are many, the file must be extended before its precision means much.
``untyped_precision`` also accepts ``wrong_type`` (the name and its boundaries are right).
"""

from __future__ import annotations

import json
from pathlib import Path

from inference.errors import FinmonError
from inference.labels import LEARNED_ENTITY_TYPES
from inference.serving.predictor import Predictor

VERDICTS = ("correct", "wrong_type", "wrong_boundary", "not_entity")


class SpanFileError(FinmonError):
    """The hand-checked span file is missing or malformed."""


def read_judgements(path: Path) -> dict[str, dict[tuple[int, int, str], str]]:
    """``{text: {(start, end, label): verdict}}`` from a JSONL span file."""
    out: dict[str, dict[tuple[int, int, str], str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpanFileError(f"{path}: cannot read: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            text, start, end, label, verdict = (rec[k] for k in ("text", "start", "end", "label", "verdict"))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SpanFileError(f"{path}:{n}: not a span record: {exc}") from None
        if verdict not in VERDICTS or text[start:end] != rec.get("span", text[start:end]):
            raise SpanFileError(f"{path}:{n}: bad verdict {verdict!r} or span offsets")
        out.setdefault(text, {})[(int(start), int(end), str(label))] = verdict
    return out


def span_precision(predictor: Predictor, path: Path) -> dict:
    judged = read_judgements(path)
    texts = list(judged)
    counts = dict.fromkeys(VERDICTS, 0)
    unjudged = 0
    for text, pred in zip(texts, predictor.predict(texts)):
        for e in pred.entities:
            if e.label not in LEARNED_ENTITY_TYPES:
                continue
            verdict = judged[text].get((e.start, e.end, e.label))
            if verdict is None:
                unjudged += 1
            else:
                counts[verdict] += 1
    n = sum(counts.values())
    return {"precision": counts["correct"] / n if n else 0.0,
            "untyped_precision": (counts["correct"] + counts["wrong_type"]) / n if n else 0.0,
            "n": n, "unjudged": unjudged, **counts, "texts": len(texts)}
