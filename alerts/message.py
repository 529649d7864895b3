"""What a notification says: what surged, by how much against what baseline, over which window, the distinct
stories behind it (documents, outlets, first link), the top example headlines, the top entities and a link to
the Grafana dashboard. The counts tested are distinct stories; the documents are quoted next to them, and a
surge that is mostly one story copied many times says so.

One message may carry several events (grouping): the events of one evaluation step routed to one channel,
most severe first, so a market-wide scare arrives as one page rather than twenty.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from alerts.tracker import RESOLVED, Event


@dataclass(frozen=True)
class Headline:
    title: str
    url: str
    source: str = ""


@dataclass(frozen=True)
class Story:
    title: str  # of its first document
    url: str  # the first link
    documents: int
    outlets: int


@dataclass(frozen=True)
class Evidence:
    """The documents and entities behind an event (filled from the store; empty in the benchmark)."""

    headlines: tuple[Headline, ...] = ()
    entities: tuple[tuple[str, int], ...] = ()  # (name, negative documents)
    stories: tuple[Story, ...] = ()  # the negative stories of the window, largest first

COPY_SHARE = 0.5  # one story with at least this share of the negative documents: "mostly one story"
COPY_MIN = 10  # ... and at least this many copies


def story_lines(event: Event, ev: Evidence) -> list[str]:
    """The stories of the window, one line each, and a warning when one story copied many times dominates."""
    if not ev.stories:
        return []
    negatives = int(event.stats.get("negative_documents", event.stats.get("negatives", 0)))
    lines = []
    top = ev.stories[0]
    if top.documents >= COPY_MIN and top.documents >= COPY_SHARE * max(negatives, 1):
        lines.append(f"Mostly one story: copied {top.documents} times by {top.outlets} outlets"
                     f" ({top.documents} of {negatives} negative documents).")
    for st in ev.stories:
        lines.append(f"- {st.title} ({st.documents} documents, {st.outlets} outlets) {st.url}".rstrip())
    return lines


@dataclass(frozen=True)
class Message:
    title: str
    text: str  # plain text (email text part, Slack fallback, WeCom/DingTalk text)
    markdown: str  # chat markdown (Slack mrkdwn-compatible subset)
    html: str  # email HTML part
    event_ids: tuple[str, ...]
    payload: dict[str, Any] = field(default_factory=dict)  # structured form for the generic webhook

    @property
    def id(self) -> str:
        """Deterministic id of this grouped message (same events -> same id, across restarts)."""
        return hashlib.sha256("|".join(sorted(self.event_ids)).encode()).hexdigest()[:24]


def _fmt_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def headline(event: Event) -> str:
    subject = f"{event.subject.kind} {event.subject.title}"
    if event.status == RESOLVED:
        return f"[RESOLVED] negative talk about {subject} is back to baseline"
    verb = "escalated" if event.status == "escalated" else "surging"
    return f"[{event.severity.label.upper()}] negative talk about {subject} {verb}"


def summary(event: Event) -> str:
    s = event.stats
    if event.status == RESOLVED:
        return f"Started {_fmt_time(event.started)}, resolved {_fmt_time(event.at)}."
    minutes = int(s.get("window_minutes", 0))
    start = event.at - timedelta(minutes=minutes)
    negatives, docs = int(s.get("negatives", 0)), int(s.get("docs", 0))
    documents = (f" ({int(s['negative_documents'])} negative documents of {int(s['documents'])})"
                 if "documents" in s else "")
    return (
        f"Negative stories: {negatives} of {docs} distinct stories{documents}, a negative share of"
        f" {s.get('share', 0):.0%} against a baseline of {s.get('expected_share', 0):.0%}"
        f" ({s.get('ratio', 0):.1f}x); {negatives} negative stories against"
        f" ~{_fmt_count(s.get('expected_negatives', 0))} expected ({s.get('count_ratio', 0):.1f}x), over the"
        f" {minutes} min from {start:%H:%M} to {_fmt_time(event.at)} (p = {s.get('pvalue', 1):.1e})."
    )


def _fmt_count(x: float) -> str:
    return f"{x:.1f}" if x >= 0.95 else f"{x:.2f}"


def dashboard_link(grafana_url: str, event: Event) -> str:
    if not grafana_url:
        return ""
    var = "var-topic" if event.subject.kind == "topic" else "var-entity"
    window = timedelta(hours=6)
    params = {var: event.subject.name, "from": int((event.at - window).timestamp() * 1000),
              "to": int((event.at + timedelta(hours=1)).timestamp() * 1000)}
    return f"{grafana_url}{'&' if '?' in grafana_url else '?'}{urlencode(params)}"


def compose(items: list[tuple[Event, Evidence]], grafana_url: str = "") -> Message:
    """One message for a group of events (most severe first)."""
    items = sorted(items, key=lambda it: (it[0].status == RESOLVED, -int(it[0].severity), str(it[0].subject)))
    first = items[0][0]
    title = headline(first) + (f" (+{len(items) - 1} more)" if len(items) > 1 else "")
    text, md, body = [], [], []
    for event, ev in items:
        link = dashboard_link(grafana_url, event)
        text.append(f"{headline(event)}\n{summary(event)}")
        md.append(f"**{headline(event)}**\n{summary(event)}")
        body.append(f"<h3>{html.escape(headline(event))}</h3><p>{html.escape(summary(event))}</p>")
        told = story_lines(event, ev)
        if told:
            text.append("Stories:\n" + "\n".join(told))
            md.append("Stories:\n" + "\n".join(told))
            body.append("<p>Stories:</p><ul>" + "".join(f"<li>{html.escape(line.lstrip('- '))}</li>" for line in told)
                        + "</ul>")
        if ev.headlines:
            text.append("Top headlines:\n" + "\n".join(f"- {h.title} {h.url}".rstrip() for h in ev.headlines))
            md.append("Top headlines:\n" + "\n".join(
                f"- [{h.title}]({h.url})" if h.url else f"- {h.title}" for h in ev.headlines))
            body.append("<ul>" + "".join(
                f'<li><a href="{html.escape(h.url, quote=True)}">{html.escape(h.title)}</a></li>' if h.url
                else f"<li>{html.escape(h.title)}</li>" for h in ev.headlines) + "</ul>")
        if ev.entities:
            names = ", ".join(f"{name} ({n})" for name, n in ev.entities)
            text.append(f"Top entities: {names}")
            md.append(f"Top entities: {names}")
            body.append(f"<p>Top entities: {html.escape(names)}</p>")
        if link:
            text.append(f"Dashboard: {link}")
            md.append(f"[Open the dashboard]({link})")
            body.append(f'<p><a href="{html.escape(link, quote=True)}">Open the dashboard</a></p>')
    payload = {
        "title": title,
        "alerts": [
            {"event_id": e.event_id, "alert_id": e.alert_id, "status": e.status, "severity": e.severity.label,
             "subject": {"kind": e.subject.kind, "name": e.subject.name, "display": e.subject.title}, "at": e.at.isoformat(),
             "started": e.started.isoformat(), "stats": e.stats,
             "headlines": [h.__dict__ for h in ev.headlines], "entities": [list(x) for x in ev.entities],
             "stories": [st.__dict__ for st in ev.stories],
             "dashboard": dashboard_link(grafana_url, e)}
            for e, ev in items
        ],
    }
    return Message(title, "\n\n".join(text), "\n\n".join(md), "<html><body>" + "".join(body) + "</body></html>",
                   tuple(e.event_id for e, _ in items), payload)
