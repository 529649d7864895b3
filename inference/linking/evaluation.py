"""``finmon kg eval``: the linker against hand-checked mentions (``resources/linking_eval.jsonl``, described in
``resources/LINKING_EVAL.md``).

Each line is one mention: the document's text, the span (start, end, label, mention, and for a ticker the symbol
the rule read), and ``gold``: the graph id it refers to, or null when the graph has no node for it (an index, a
commodity, a private or foreign company, a person, a span that is no entity). The spans of one document are
linked together, as in the pipeline (they are each other's context).

precision = correct links / links made; recall = correct links / mentions with a gold id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from inference.decoding.prediction import EntitySpan
from inference.errors import FinmonError
from inference.linking.linker import EntityLinker

EVAL_FILE = Path(__file__).parent / "resources" / "linking_eval.jsonl"


class EvalFileError(FinmonError):
    """The evaluation file is missing or a line is malformed."""


def read_mentions(path: Path = EVAL_FILE) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalFileError(f"cannot read {path}: {exc}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["text"][row["start"] : row["end"]] != row["mention"]:
                raise ValueError(f"text[{row['start']}:{row['end']}] is not {row['mention']!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise EvalFileError(f"{path}:{n}: {exc}") from exc
        rows.append(row)
    return rows


def predict(linker: EntityLinker, rows: list[dict[str, Any]]) -> list[str | None]:
    """The graph id the linker gives each mention (None: unlinked), documents linked as wholes."""
    by_doc: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_doc[r["doc"]].append(i)
    out: list[str | None] = [None] * len(rows)
    for ids in by_doc.values():
        spans = [EntitySpan(rows[i]["start"], rows[i]["end"], rows[i]["label"], rows[i]["mention"], 1.0,
                            rows[i].get("symbol")) for i in ids]
        for i, span in zip(ids, linker.link(spans, rows[ids[0]].get("topic")), strict=True):
            out[i] = span.entity_id if span.entity_id in linker.graph.nodes else None
    return out


def evaluate(linker: EntityLinker, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """precision, recall, mentions (and the counts behind them, per label, per split, and every error)."""
    out = _score(linker, rows)
    splits = sorted({r.get("split", "") for r in rows} - {""})
    if len(splits) > 1:
        out["splits"] = {s: {k: v for k, v in _score(linker, [r for r in rows if r.get("split") == s]).items()
                             if k not in ("per_label", "errors")} for s in splits}
    return out


def _score(linker: EntityLinker, rows: list[dict[str, Any]]) -> dict[str, Any]:
    predicted = predict(linker, rows)
    made = sum(p is not None for p in predicted)
    gold = sum(r["gold"] is not None for r in rows)
    correct = sum(p is not None and p == r["gold"] for p, r in zip(predicted, rows, strict=True))
    per_label: dict[str, dict[str, int]] = defaultdict(lambda: {"mentions": 0, "gold": 0, "linked": 0, "correct": 0})
    errors = []
    for p, r in zip(predicted, rows, strict=True):
        c = per_label[r["label"]]
        c["mentions"] += 1
        c["gold"] += r["gold"] is not None
        c["linked"] += p is not None
        c["correct"] += p is not None and p == r["gold"]
        if p != r["gold"]:
            errors.append({"doc": r["doc"], "mention": r["mention"], "label": r["label"], "gold": r["gold"],
                           "predicted": p})
    return {
        "precision": round(correct / made, 4) if made else 0.0,
        "recall": round(correct / gold, 4) if gold else 0.0,
        "mentions": len(rows), "gold_links": gold, "links": made, "correct": correct,
        "per_label": dict(sorted(per_label.items())), "errors": errors,
    }
