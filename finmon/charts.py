"""The report's charts: plotly figures (interactive: hover, zoom, legend toggles) rendered as HTML fragments.

The page carries plotly.js inline once (``plotly_js``), never a CDN link, so a report opened on a machine
without internet draws the same charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from inference.labels import SENTIMENTS

COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
SEVERITY_COLORS = {"warning": "#ff9f1c", "major": "#e4572e", "critical": "#8b0000"}
CONFIG = {"displaylogo": False, "responsive": True}


def plotly_js() -> str:
    """plotly.js itself, for one ``<script>`` in the page's head."""
    return get_plotlyjs()


def html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CONFIG)


def over_time(series: dict[str, list[tuple[datetime, float | None]]], alerts: Sequence[dict[str, Any]], *,
              title: str, y_title: str, percent: bool) -> go.Figure:
    """One line per topic, and the alerts as markers where (and when) they fired."""
    fig = go.Figure()
    for topic, points in series.items():
        fig.add_trace(go.Scatter(x=[t for t, _ in points], y=[v for _, v in points], mode="lines", name=topic,
                                 connectgaps=False))
    if alerts:
        fig.add_trace(go.Scatter(
            x=[a["at"] for a in alerts], y=[_height(series, a, 1.0 if percent else _peak(series)) for a in alerts],
            mode="markers", name="alerts",
            marker={"symbol": "triangle-down", "size": 14, "color": [SEVERITY_COLORS.get(a["severity"], "#000")
                                                                   for a in alerts]},
            text=[a["headline"] for a in alerts], hovertemplate="%{x}<br>%{text}<extra>alert</extra>"))
        for a in alerts:
            fig.add_vline(x=a["at"].timestamp() * 1000, line={"color": SEVERITY_COLORS.get(a["severity"], "#000"),
                                                                "width": 1, "dash": "dot"})
    fig.update_layout(title=title, height=380, margin={"l": 50, "r": 20, "t": 50, "b": 40},
                      yaxis={"title": y_title, "tickformat": ".0%" if percent else ",d",
                             **({"range": [0, 1.05]} if percent else {})},
                      legend={"orientation": "h", "y": -0.15}, hovermode="x unified")
    return fig


def _height(series: dict[str, list[tuple[datetime, float | None]]], alert: dict[str, Any], top: float) -> float:
    """Where an alert's marker sits: on its topic's line in the bucket it fired in, else at the top."""
    points = series.get(alert["name"]) if alert["kind"] == "topic" else None
    before = [v for t, v in points or () if t <= alert["at"] and v is not None]
    return before[-1] if before else top


def _peak(series: dict[str, list[tuple[datetime, float | None]]]) -> float:
    return max((v for points in series.values() for _, v in points if v is not None), default=1.0)


def sentiment_bars(rows: Sequence[tuple[str, dict[str, Any]]], *, title: str) -> go.Figure:
    """Horizontal stacked bars: documents per sentiment for each label (topic, entity), largest on top."""
    labels = [label for label, _ in rows][::-1]
    fig = go.Figure()
    for s in SENTIMENTS:
        counts = [int(r.get(s, 0)) for _, r in rows][::-1]
        fig.add_trace(go.Bar(y=labels, x=counts, orientation="h", name=s, marker_color=COLORS[s],
                             hovertemplate="%{y}: %{x:,} " + s + "<extra></extra>"))
    fig.update_layout(title=title, barmode="stack", height=max(260, 26 * len(rows) + 110),
                      margin={"l": 220, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.1},
                      xaxis={"title": "documents"})
    return fig
