"""The demo's outputs: a console summary and a self-contained HTML report (inline SVG, no scripts, no CDN).

Both read only through ``ingest.queries``, i.e. the same exactly-once aggregates the dashboards and alerts use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from inference.labels import SENTIMENTS
from ingest import queries, story_queries
from ingest.store import Store

COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
LINE_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
TOP_TOPICS_OVER_TIME = 5
MIN_DOCS_PER_POINT = 3  # an hour with fewer documents of a topic has no meaningful negative share


def topic_mix(store: Store) -> list[dict[str, Any]]:
    """Per topic: total documents and documents per sentiment, most frequent topic first."""
    table: dict[str, dict[str, Any]] = defaultdict(lambda: {"docs": 0, **{s: 0 for s in SENTIMENTS}})
    for row in queries.topic_counts(store, bucket_seconds=None):
        entry = table[row["topic"]]
        entry["docs"] += row["docs"]
        entry[row["sentiment"]] = entry.get(row["sentiment"], 0) + row["docs"]
    return [{"topic": t, **v} for t, v in sorted(table.items(), key=lambda kv: (-kv[1]["docs"], kv[0]))]


def negative_share_by_hour(store: Store, topics: Sequence[str]) -> dict[str, list[tuple[datetime, float | None]]]:
    """Per topic, (hour, share of negative documents) for every hour; None where fewer than MIN_DOCS_PER_POINT."""
    counts: dict[tuple[str, datetime], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hours: set[datetime] = set()
    for row in queries.topic_counts(store, bucket_seconds=3600, topics=topics):
        counts[(row["topic"], row["bucket"])][row["sentiment"]] += row["docs"]
        hours.add(row["bucket"])
    series = {}
    for topic in topics:
        points = []
        for hour in sorted(hours):
            c = counts.get((topic, hour), {})
            total = sum(c.values())
            points.append((hour, c.get("negative", 0) / total if total >= MIN_DOCS_PER_POINT else None))
        series[topic] = points
    return series


def summary_text(store: Store, *, alerts: Sequence[dict[str, Any]] = ()) -> str:
    """The console summary of what the store holds."""
    total, bounds = queries.document_count(store), queries.time_bounds(store)
    stories = story_queries.story_count(store)
    lines = [f"finmon: {total:,} document{'' if total == 1 else 's'}"
             + (f", {_fmt(bounds[0])} .. {_fmt(bounds[1])}" if bounds else "") + f"; {stories:,} distinct stories"]
    lines.append("Documents per topic (" + " / ".join(SENTIMENTS) + "):")
    for row in topic_mix(store):
        mix = " / ".join(f"{_pct(row[s], row['docs']):>4}" for s in SENTIMENTS)
        lines.append(f"  {row['topic']:<30} {row['docs']:>6,}   {mix}")
    lines.append("Top entities:")
    for e in queries.top_graph_entities(store, limit=10):
        lines.append(f"  {queries.entity_title(e):<36} {e['kind']:<11} {e['docs']:>5,} docs, "
                     f"{_pct(e['negative'], e['docs'])} negative")
    lines.append(f"Alerts: {len(alerts)}")
    for alert in alerts:
        lines.append("  " + ", ".join(f"{k}={_cell(v)}" for k, v in alert.items()))
    return "\n".join(lines)


def write_report(store: Store, path: Path, *, alerts: Sequence[dict[str, Any]] = ()) -> Path:
    """Write the HTML report to ``path`` (parents created) and return it."""
    mix = topic_mix(store)
    top = [row["topic"] for row in mix[:TOP_TOPICS_OVER_TIME]]
    entities = queries.top_graph_entities(store, limit=15)
    total, bounds = queries.document_count(store), queries.time_bounds(store)
    span = f"{_fmt(bounds[0])} .. {_fmt(bounds[1])}" if bounds else "no documents"
    stories = story_queries.story_count(store)
    sections = [
        f"<h1>finmon report</h1><p>{total:,} document{'' if total == 1 else 's'}, {escape(span)};"
        f" {stories:,} distinct stories</p>",
        "<h2>Documents per topic</h2>" + _bars([(r["topic"], r["docs"]) for r in mix]),
        "<h2>Sentiment mix per topic</h2>" + _legend() + _stacked([(r["topic"], r) for r in mix]),
        "<h2>Negative share per hour, top topics</h2>" + _lines(negative_share_by_hour(store, top)),
        "<h2>Top entities</h2>" + _legend() + _stacked([(f"{queries.entity_title(e)} ({e['kind']})", e) for e in entities]),
        "<h2>Alerts</h2>" + _table(alerts),
    ]
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>finmon report</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:left}svg{display:block}"
        "</style></head><body>" + "\n".join(sections) + "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


# -- SVG ------------------------------------------------------------------------------------------------------------

LABEL_W, BAR_W, ROW_H = 260, 560, 20


def _bars(rows: list[tuple[str, int]]) -> str:
    peak = max((v for _, v in rows), default=0) or 1
    parts = []
    for i, (label, value) in enumerate(rows):
        y, w = i * ROW_H, BAR_W * value / peak
        parts.append(f"{_label(label, y)}<rect x='{LABEL_W}' y='{y + 3}' width='{w:.1f}' height='{ROW_H - 6}' "
                     f"fill='#1f77b4'/><text x='{LABEL_W + w + 4:.1f}' y='{y + 14}' font-size='12'>{value:,}</text>")
    return _svg(LABEL_W + BAR_W + 70, len(rows) * ROW_H, parts)


def _stacked(rows: list[tuple[str, dict[str, Any]]]) -> str:
    parts = []
    for i, (label, counts) in enumerate(rows):
        y, x, total = i * ROW_H, float(LABEL_W), sum(counts[s] for s in SENTIMENTS) or 1
        parts.append(_label(label, y))
        for s in SENTIMENTS:
            w = BAR_W * counts[s] / total
            parts.append(f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='{ROW_H - 6}' fill='{COLORS[s]}'>"
                         f"<title>{escape(label)}: {counts[s]:,} {s}</title></rect>")
            x += w
        parts.append(f"<text x='{LABEL_W + BAR_W + 4}' y='{y + 14}' font-size='12'>"
                     f"{total:,} docs, {_pct(counts['negative'], total)} neg</text>")
    return _svg(LABEL_W + BAR_W + 130, len(rows) * ROW_H, parts)


def _lines(series: dict[str, list[tuple[datetime, float | None]]]) -> str:
    width, height, left, top = 820, 260, 40, 10
    n = max((len(p) for p in series.values()), default=0)
    parts = [f"<line x1='{left}' y1='{top + height}' x2='{left + width}' y2='{top + height}' stroke='#333'/>",
             f"<text x='0' y='{top + 10}' font-size='11'>100%</text>",
             f"<text x='8' y='{top + height}' font-size='11'>0%</text>"]
    if n:
        points = next(iter(series.values()))
        for i, (hour, _) in enumerate(points):
            if hour.hour == 0:
                x = left + width * i / max(n - 1, 1)
                parts.append(f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{top + height}' stroke='#eee'/>"
                             f"<text x='{x + 2:.1f}' y='{top + height + 14}' font-size='11'>"
                             f"{hour:%a %d %b}</text>")
    for k, (topic, points) in enumerate(series.items()):
        color = LINE_COLORS[k % len(LINE_COLORS)]
        segment: list[str] = []
        for i, (_, share) in enumerate(points + [(datetime.min, None)]):
            if share is None:
                if len(segment) > 1:
                    parts.append(f"<polyline fill='none' stroke='{color}' stroke-width='1.5' "
                                 f"points='{' '.join(segment)}'/>")
                segment = []
                continue
            segment.append(f"{left + width * i / max(n - 1, 1):.1f},{top + height * (1 - share):.1f}")
        parts.append(f"<rect x='{left + 10}' y='{height + top + 24 + 16 * k}' width='10' height='10' fill='{color}'/>"
                     f"<text x='{left + 24}' y='{height + top + 33 + 16 * k}' font-size='12'>{escape(topic)}</text>")
    return _svg(width + left + 20, height + top + 30 + 16 * len(series), parts)


def _legend() -> str:
    items = [f"<rect x='{i * 110}' y='2' width='10' height='10' fill='{COLORS[s]}'/>"
             f"<text x='{i * 110 + 14}' y='11' font-size='12'>{s}</text>" for i, s in enumerate(SENTIMENTS)]
    return _svg(400, 16, items)


def _label(text: str, y: int) -> str:
    short = text if len(text) <= 36 else text[:35] + "…"
    return f"<text x='{LABEL_W - 6}' y='{y + 14}' font-size='12' text-anchor='end'>{escape(short)}</text>"


def _svg(width: float, height: float, parts: list[str]) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{max(height, 1):.0f}' "
            f"viewBox='0 0 {width:.0f} {max(height, 1):.0f}'>{''.join(parts)}</svg>")


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No alerts.</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(row.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return _fmt(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _fmt(t: datetime) -> str:
    return f"{(t.astimezone(UTC) if t.tzinfo else t):%Y-%m-%d %H:%M} UTC"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"
