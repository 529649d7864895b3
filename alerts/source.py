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
    bounds = queries.time_bounds(store)
    observed = max(0, int((bounds[0] - start) // timedelta(minutes=step_minutes))) if bounds else steps
    grid = _Grid(start, step_minutes, steps, observed)
    out = grid.collect(queries.topic_counts(store, start, end, bucket_seconds=bucket),
                       story_queries.topic_story_counts(store, start, end, bucket_seconds=bucket), "topic", "topic")
    day = end - timedelta(days=1)
    if entities:
        recent = queries.graph_entity_counts(store, day, end, bucket_seconds=None)
        keys = sorted({r["entity_id"] for r in recent if r["sentiment"] == NEGATIVE
                       and r["docs"] >= min_entity_negatives})
        if keys:
            rows = queries.graph_entity_counts(store, start, end, bucket_seconds=bucket, entity_ids=keys)
            # mentions are stored under their entity id (ingest.store.entity_key), so story rows key on it too
            story_rows = story_queries.entity_story_counts(store, start, end, bucket_seconds=bucket, entity_keys=keys)
            names = {r["entity_id"]: r["name"] or r["entity_id"] for r in recent}
            out += grid.collect(rows, story_rows, "entity", "entity_id", names, story_field="entity_key")
    if sectors:
        recent = queries.sector_counts(store, day, end, bucket_seconds=None)
        keys = sorted({r["sector"] for r in recent if r["sentiment"] == NEGATIVE and r["docs"] >= min_entity_negatives})
        if keys:
            rows = queries.sector_counts(store, start, end, bucket_seconds=bucket, sectors=keys)
            out += grid.collect(rows, None, SECTOR, "sector", {k: k for k in keys})
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

    def collect(self, doc_rows: list[dict], story_rows: list[dict] | None, kind: str, field: str,
                names: dict[str, str] | None = None, story_field: str | None = None) -> list[StepSeries]:
        """Series of ``kind`` keyed by ``field``; without story rows (no story roll-up) stories are documents."""
        n, k = self._fill(doc_rows, field, "docs")
        sn, sk = (n, k) if story_rows is None else self._fill(story_rows, story_field or field, "stories")
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
        entity_key=key, sector=event.subject.name if event.subject.kind == SECTOR else None, sentiment=NEGATIVE,
        limit=headlines,
    )
    heads = tuple(Headline((d["title"] or d["text"])[:160], d["url"], d["source"]) for d in docs)
    found = story_queries.stories(store, start, event.at, topic=event.subject.name if event.subject.kind == "topic"
                                  else None, entity_key=key, sentiment=NEGATIVE, limit=stories)
    told = tuple(Story((s["title"] or s["text"])[:160], s["url"], int(s["documents"]), int(s["outlets"]))
                 for s in found)
    # one row per real-world entity, under the graph's name ("Wells Fargo", not the "Wells" of one headline)
    top = queries.top_graph_entities(store, start, event.at, limit=50)
    ranked = sorted((r for r in top if r.get(NEGATIVE, 0) > 0), key=lambda r: (-r[NEGATIVE], r["entity_id"]))
    return Evidence(heads, tuple((r["name"] or r["entity_id"], int(r[NEGATIVE])) for r in ranked[:entities]), told)
