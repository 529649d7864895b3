"""Reads what the detector needs from the store: per-step counts per topic and entity, and the evidence
(example headlines, top entities) a message quotes. Only through ``ingest.queries``: the table names and the
exactly-once counting live there."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np

from alerts.evaluation import StepSeries
from alerts.message import Evidence, Headline
from alerts.tracker import Event, Subject
from ingest import queries
from ingest.store import Store

NEGATIVE = "negative"
SECTOR = "sector"  # the subject kind of a sector roll-up (a GICS sector of the graph's companies)


def series(
    store: Store, start: datetime, end: datetime, step_minutes: int, *, entities: bool, min_entity_negatives: int,
    sectors: bool = False,
) -> list[StepSeries]:
    """One series per topic (and per entity, by graph id — a company, place or institution, else a normal name —
    and per sector, each with at least ``min_entity_negatives`` negative documents in the last day of the range),
    from ``start`` (step-aligned) to ``end`` (exclusive, step-aligned). A sector counts distinct documents: a
    surge spread over several banks shows there even when each bank alone is quiet."""
    steps = int((end - start) / timedelta(minutes=step_minutes))
    bucket = step_minutes * 60
    out = _collect(queries.topic_counts(store, start, end, bucket_seconds=bucket), "topic", "topic", start,
                   step_minutes, steps)
    day = end - timedelta(days=1)
    if entities:
        recent = queries.graph_entity_counts(store, day, end, bucket_seconds=None)
        keys = sorted({r["entity_id"] for r in recent if r["sentiment"] == NEGATIVE
                       and r["docs"] >= min_entity_negatives})
        if keys:
            rows = queries.graph_entity_counts(store, start, end, bucket_seconds=bucket, entity_ids=keys)
            names = {r["entity_id"]: r["name"] or r["entity_id"] for r in recent}
            out += _collect(rows, "entity", "entity_id", start, step_minutes, steps, names)
    if sectors:
        recent = queries.sector_counts(store, day, end, bucket_seconds=None)
        keys = sorted({r["sector"] for r in recent if r["sentiment"] == NEGATIVE and r["docs"] >= min_entity_negatives})
        if keys:
            rows = queries.sector_counts(store, start, end, bucket_seconds=bucket, sectors=keys)
            out += _collect(rows, SECTOR, "sector", start, step_minutes, steps, {k: k for k in keys})
    return out


def _collect(
    rows: list[dict], kind: str, field: str, start: datetime, step: int, steps: int, names: dict[str, str] | None = None
) -> list[StepSeries]:
    n: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(steps))
    k: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(steps))
    for r in rows:
        i = int((r["bucket"] - start) / timedelta(minutes=step))
        if 0 <= i < steps:
            n[r[field]][i] += r["docs"]
            if r["sentiment"] == NEGATIVE:
                k[r[field]][i] += r["docs"]
    names = names or {}
    return [StepSeries(Subject(kind, key, names.get(key, "")), start, step, n[key], k[key]) for key in sorted(n)]


def evidence(store: Store, event: Event, headlines: int = 3, entities: int = 5) -> Evidence:
    """Negative example documents and the most negatively mentioned entities of the event's window."""
    minutes = int(event.stats.get("window_minutes", 15))
    start = event.at - timedelta(minutes=minutes)
    key = event.subject.name if event.subject.kind == "entity" else None
    docs = queries.example_documents(
        store, start, event.at, topic=event.subject.name if event.subject.kind == "topic" else None,
        entity_key=key, sector=event.subject.name if event.subject.kind == SECTOR else None, sentiment=NEGATIVE,
        limit=headlines,
    )
    heads = tuple(Headline((d["title"] or d["text"])[:160], d["url"], d["source"]) for d in docs)
    top = queries.top_entities(store, start, event.at, limit=50)
    ranked = sorted((r for r in top if r.get(NEGATIVE, 0) > 0), key=lambda r: (-r[NEGATIVE], r["entity_key"]))
    return Evidence(heads, tuple((r["name"] or r["entity_key"], int(r[NEGATIVE])) for r in ranked[:entities]))
