"""The report: a console summary and one self-contained, interactive HTML page (plotly, its JS inlined).

Every number is read through a function of this module (``topic_mix``, ``topic_series``, ``entity_mix``,
``report_alerts``), each over ``ingest.queries`` or the alert history: the same exactly-once aggregates the
dashboards and the alerts use. The alerts are the ones the store recorded (``alert_events``) in the period.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from alerts import history
from alerts.detection import Severity
from alerts.message import headline, summary
from alerts.source import evidence
from alerts.tracker import Event, Subject
from inference.labels import SENTIMENTS
from ingest import queries, story_queries
from ingest.store import Store

from finmon import charts

TOP_TOPICS_OVER_TIME = 6
MIN_DOCS_PER_POINT = 5  # an hour with fewer documents of a topic has no meaningful negative share
HOUR = 3600


def period(store: Store) -> tuple[datetime, datetime] | None:
    """The report's period: from the first to the last stored document."""
    return queries.time_bounds(store)


def topic_mix(store: Store) -> list[dict[str, Any]]:
    """Per topic: total documents and documents per sentiment, most frequent topic first."""
    table: dict[str, dict[str, Any]] = defaultdict(lambda: {"docs": 0, **{s: 0 for s in SENTIMENTS}})
    for row in queries.topic_counts(store, bucket_seconds=None):
        entry = table[row["topic"]]
        entry["docs"] += row["docs"]
        entry[row["sentiment"]] = entry.get(row["sentiment"], 0) + row["docs"]
    return [{"topic": t, **v} for t, v in sorted(table.items(), key=lambda kv: (-kv[1]["docs"], kv[0]))]


def topic_series(store: Store, topics: Sequence[str], bucket_seconds: int = HOUR) -> tuple[
        dict[str, list[tuple[datetime, float | None]]], dict[str, list[tuple[datetime, float | None]]]]:
    """Per topic and bucket: (negative share, volume). The share is None where a bucket has fewer than
    MIN_DOCS_PER_POINT documents of the topic (no meaningful share); every topic gets every bucket."""
    counts: dict[tuple[str, datetime], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    buckets: set[datetime] = set()
    for row in queries.topic_counts(store, bucket_seconds=bucket_seconds, topics=topics):
        counts[(row["topic"], row["bucket"])][row["sentiment"]] += row["docs"]
        buckets.add(row["bucket"])
    share, volume = {}, {}
    for topic in topics:
        share[topic], volume[topic] = [], []
        for bucket in sorted(buckets):
            c = counts.get((topic, bucket), {})
            total = sum(c.values())
            share[topic].append((bucket, c.get("negative", 0) / total if total >= MIN_DOCS_PER_POINT else None))
            volume[topic].append((bucket, float(total)))
    return share, volume


def entity_mix(store: Store, limit: int = 15) -> list[dict[str, Any]]:
    """The most mentioned real-world entities (one row per graph id) with their documents per sentiment."""
    return queries.top_graph_entities(store, limit=limit)


def report_alerts(store: Store, start: datetime | None = None, end: datetime | None = None,
                  examples: int = 3) -> list[dict[str, Any]]:
    """The alert events recorded in ``[start, end]``, oldest first, each with its negative example documents."""
    history.migrate(store)  # a store the alerts never ran on has no alert tables yet
    rows = []
    for r in history.events(store):
        if (start and r["at"] < start) or (end and r["at"] > end):
            continue
        event = Event(Subject(r["subject_kind"], r["subject_name"]), r["status"], Severity.parse(r["severity"]),
                      r["at"], r["started"], json.loads(r["stats"]))
        proof = evidence(store, event, headlines=examples)
        rows.append({"at": event.at, "status": event.status, "severity": event.severity.label,
                     "kind": event.subject.kind, "name": event.subject.name, "headline": headline(event),
                     "details": summary(event), "documents": [h.__dict__ for h in proof.headlines]})
    return rows


def summary_text(store: Store) -> str:
    """The console summary of what the store holds, its alerts included."""
    total, bounds = queries.document_count(store), period(store)
    stories = story_queries.story_count(store)
    lines = [f"finmon: {total:,} document{'' if total == 1 else 's'}"
             + (f", {_fmt(bounds[0])} .. {_fmt(bounds[1])}" if bounds else "") + f"; {stories:,} distinct stories"]
    lines.append("Documents per topic (" + " / ".join(SENTIMENTS) + "):")
    for row in topic_mix(store):
        mix = " / ".join(f"{_pct(row[s], row['docs']):>4}" for s in SENTIMENTS)
        lines.append(f"  {row['topic']:<30} {row['docs']:>6,}   {mix}")
    lines.append("Top entities:")
    for e in entity_mix(store, limit=10):
        lines.append(f"  {queries.entity_title(e):<36} {e['kind']:<11} {e['docs']:>5,} docs, "
                     f"{_pct(e['negative'], e['docs'])} negative")
    alerts = report_alerts(store, *(bounds or (None, None)), examples=0) if bounds else []
    lines.append(f"Alerts: {len(alerts)}")
    for a in alerts:
        lines.append(f"  {_fmt(a['at'])}  {a['headline']}: {a['details']}")
    return "\n".join(lines)


def write_report(store: Store, path: Path) -> Path:
    """Write the HTML report to ``path`` (parents created) and return it."""
    mix, bounds = topic_mix(store), period(store)
    total, stories = queries.document_count(store), story_queries.story_count(store)
    alerts = report_alerts(store, bounds[0], bounds[1] + timedelta(minutes=1)) if bounds else []
    topic_alerts = [a for a in alerts if a["status"] != "resolved"]
    alerted = [a["name"] for a in topic_alerts if a["kind"] == "topic"]
    top = list(dict.fromkeys(alerted + [row["topic"] for row in mix[:TOP_TOPICS_OVER_TIME]]))  # alerted first
    share, volume = topic_series(store, top)
    span = f"{_fmt(bounds[0])} .. {_fmt(bounds[1])}" if bounds else "no documents"
    figures = [
        ("negative-share", charts.over_time(share, topic_alerts, title="Negative share per hour: the alerted and "
                                            "the top topics (▼ = an alert fired)", y_title="negative share", percent=True)),
        ("volume", charts.over_time(volume, topic_alerts, title="Documents per hour: the alerted and the top topics",
                                    y_title="documents", percent=False)),
        ("entities", charts.sentiment_bars([(f"{queries.entity_title(e)} ({e['kind']})", e) for e in entity_mix(store)],
                                           title="Top companies and entities by sentiment")),
        ("topics", charts.sentiment_bars([(r["topic"], r) for r in mix], title="Sentiment mix per topic")),
    ]
    sections = [
        f"<h1>finmon report</h1><p class='lede'>{total:,} document{'' if total == 1 else 's'}, {escape(span)}; "
        f"{stories:,} distinct stories; <b>{len(alerts)}</b> alert event{'' if len(alerts) == 1 else 's'}</p>",
        *(f"<section class='chart'>{charts.html(fig, div_id)}</section>" for div_id, fig in figures[:2]),
        f"<h2>Alerts</h2>{_alert_table(alerts)}",
        *(f"<section class='chart'>{charts.html(fig, div_id)}</section>" for div_id, fig in figures[2:]),
    ]
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>finmon report</title>"
        f"<script>{charts.plotly_js()}</script><style>{_CSS}</style></head><body>"
        + "\n".join(sections) + "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    ".lede{font-size:1.1em}table{border-collapse:collapse;width:100%}"
    "td,th{border-bottom:1px solid #ddd;padding:6px 8px;font-size:13px;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}.sev-warning{color:#b36b00}.sev-major{color:#c0392b}.sev-critical{color:#8b0000;"
    "font-weight:bold}.chart{margin:1.5em 0}ul{margin:0;padding-left:1.2em}"
)


def _alert_table(alerts: Sequence[dict[str, Any]]) -> str:
    if not alerts:
        return "<p>No alerts.</p>"
    head = "<tr><th>when</th><th>alert</th><th>details</th><th>documents</th></tr>"
    body = []
    for a in alerts:
        docs = "".join(
            f"<li><a href='{escape(d['url'], quote=True)}'>{escape(d['title'])}</a></li>" if d.get("url")
            else f"<li>{escape(d['title'])}</li>" for d in a["documents"])
        body.append(f"<tr class='alert'><td>{escape(_fmt(a['at']))}</td><td class='sev-{escape(a['severity'])}'>"
                    f"{escape(a['headline'])}</td><td>{escape(a['details'])}</td><td><ul>{docs}</ul></td></tr>")
    return f"<table id='alerts'>{head}{''.join(body)}</table>"


def _fmt(t: datetime) -> str:
    return f"{(t.astimezone(UTC) if t.tzinfo else t):%Y-%m-%d %H:%M} UTC"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"
