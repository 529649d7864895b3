"""Reads what the detector needs from the store: per-step counts per topic and entity, and the evidence
(example headlines, stories, top entities) a message quotes. Only through ``ingest.queries`` and
``ingest.story_queries``: the table names and the exactly-once counting live there.

The tests count distinct stories (``StepSeries.n``/``k``), the messages quote documents next to them. Steps before
the store's first document are not history (``StepSeries.observed``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np

from alerts.evaluation import StepSeries
from alerts.message import Evidence, Headline, Story
from alerts.tracker import Event, Subject
from ingest import queries, story_queries
from ingest.store import Store

NEGATIVE = "negative"


def series(
    store: Store, start: datetime, end: datetime, step_minutes: int, *, entities: bool, min_entity_negatives: int
) -> list[StepSeries]:
    """One series per topic (and per entity with at least ``min_entity_negatives`` negative documents in the
    last day of the range), from ``start`` (step-aligned) to ``end`` (exclusive, step-aligned)."""
    steps = int((end - start) / timedelta(minutes=step_minutes))
    bucket = step_minutes * 60
    bounds = queries.time_bounds(store)
    observed = max(0, int((bounds[0] - start) // timedelta(minutes=step_minutes))) if bounds else steps
    grid = _Grid(start, step_minutes, steps, observed)
    out = grid.collect(queries.topic_counts(store, start, end, bucket_seconds=bucket),
                       story_queries.topic_story_counts(store, start, end, bucket_seconds=bucket), "topic", "topic")
    if entities:
        recent = queries.entity_counts(store, end - timedelta(days=1), end, bucket_seconds=None)
        keys = sorted({r["entity_key"] for r in recent if r["sentiment"] == NEGATIVE
                       and r["docs"] >= min_entity_negatives})
        if keys:
            rows = queries.entity_counts(store, start, end, bucket_seconds=bucket, entity_keys=keys)
            story_rows = story_queries.entity_story_counts(store, start, end, bucket_seconds=bucket, entity_keys=keys)
            names = {r["entity_key"]: r["name"] or r["entity_key"] for r in recent}
            out += grid.collect(rows, story_rows, "entity", "entity_key", names)
    return out


class _Grid:
    """Puts bucketed count rows onto the step grid of one read."""

    def __init__(self, start: datetime, step: int, steps: int, observed: int) -> None:
        self.start, self.step, self.steps, self.observed = start, step, steps, observed

    def _fill(self, rows: list[dict], field: str, value: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        n: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(self.steps))
        k: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(self.steps))
        for r in rows:
            i = int((r["bucket"] - self.start) / timedelta(minutes=self.step))
            if 0 <= i < self.steps:
                n[r[field]][i] += r[value]
                if r["sentiment"] == NEGATIVE:
                    k[r[field]][i] += r[value]
        return n, k

    def collect(self, doc_rows: list[dict], story_rows: list[dict], kind: str, field: str,
                names: dict[str, str] | None = None) -> list[StepSeries]:
        n, k = self._fill(doc_rows, field, "docs")
        sn, sk = self._fill(story_rows, field, "stories")
        names = names or {}
        out = []
        for key in sorted(n):
            # a story spanning sentiments counts in each; never more stories than documents
            stories_n, stories_k = np.minimum(sn[key], n[key]), np.minimum(sk[key], k[key])
            stories_k = np.minimum(stories_k, stories_n)
            out.append(StepSeries(Subject(kind, key, names.get(key, "")), self.start, self.step, stories_n, stories_k,
                                  observed=self.observed, docs=n[key], negative_docs=k[key]))
        return out


def evidence(store: Store, event: Event, headlines: int = 3, entities: int = 5, stories: int = 5) -> Evidence:
    """Negative example documents and the most negatively mentioned entities of the event's window."""
    minutes = int(event.stats.get("window_minutes", 15))
    start = event.at - timedelta(minutes=minutes)
    key = event.subject.name if event.subject.kind == "entity" else None
    docs = queries.example_documents(
        store, start, event.at, topic=event.subject.name if event.subject.kind == "topic" else None,
        entity_key=key, sentiment=NEGATIVE, limit=headlines,
    )
    heads = tuple(Headline((d["title"] or d["text"])[:160], d["url"], d["source"]) for d in docs)
    found = story_queries.stories(store, start, event.at, topic=event.subject.name if event.subject.kind == "topic"
                                  else None, entity_key=key, sentiment=NEGATIVE, limit=stories)
    told = tuple(Story((s["title"] or s["text"])[:160], s["url"], int(s["documents"]), int(s["outlets"]))
                 for s in found)
    top = queries.top_entities(store, start, event.at, limit=50)
    ranked = sorted((r for r in top if r.get(NEGATIVE, 0) > 0), key=lambda r: (-r[NEGATIVE], r["entity_key"]))
    return Evidence(heads, tuple((r["name"] or r["entity_key"], int(r[NEGATIVE])) for r in ranked[:entities]), told)
