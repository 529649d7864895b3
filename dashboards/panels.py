"""Panel builders with finmon's defaults (units, stacking, links), so dashboard modules read like a layout."""

from __future__ import annotations

from typing import Any

from inference.labels import SENTIMENTS, TOPICS

from dashboards import queries
from dashboards.model import Panel, Target, Variable

MIN_INTERVAL = "1m"  # the aggregates are per minute: a finer $__interval would only draw gaps
SENTIMENT_COLORS = {"negative": "red", "neutral": "blue", "positive": "green"}
assert set(SENTIMENT_COLORS) == set(SENTIMENTS)


def _by_name(name: str, *properties: dict[str, Any]) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name}, "properties": list(properties)}


def link(name: str, title: str, url: str) -> dict[str, Any]:
    """A data link on column ``name`` (``${__data.fields.x}`` refers to the row's value of x)."""
    return _by_name(name, {"id": "links", "value": [{"title": title, "url": url, "targetBlank": url.startswith("$")}]})


def sentiment_colors() -> list[dict[str, Any]]:
    return [_by_name(s, {"id": "color", "value": {"mode": "fixed", "fixedColor": c}})
            for s, c in SENTIMENT_COLORS.items()]


def hidden(name: str) -> dict[str, Any]:
    return _by_name(name, {"id": "custom.hidden", "value": True})


def timeseries(title: str, *targets: Target, unit: str | None = None, stack: str | None = None,
               description: str = "", width: int = 12, height: int = 8, overrides: list | None = None,
               **extra: Any) -> Panel:
    """A time-series panel; ``stack`` is "normal" or "percent"."""
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": False,
                              "showPoints": "never"}
    if stack:
        custom.update(stacking={"mode": stack, "group": "A"}, fillOpacity=60)
    return Panel(title, "timeseries", list(targets), width, height, description, unit,
                 options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                          "tooltip": {"mode": "multi", "sort": "desc"}},
                 custom=custom, overrides=overrides or [], extra={"interval": MIN_INTERVAL, **extra})


def table(title: str, *targets: Target, description: str = "", width: int = 12, height: int = 8,
          overrides: list | None = None, unit: str | None = None) -> Panel:
    return Panel(title, "table", list(targets), width, height, description, unit,
                 options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
                 custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": True},
                 overrides=overrides or [])


def stat(title: str, target: Target, *, unit: str | None = None, description: str = "", width: int = 6,
         height: int = 4) -> Panel:
    return Panel(title, "stat", [target], width, height, description, unit,
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "value", "graphMode": "none", "textMode": "auto"})


def heatmap(title: str, target: Target, *, unit: str | None = None, description: str = "", width: int = 24,
            height: int = 10) -> Panel:
    """A heat map of pre-computed cells: one row per series (e.g. topic), one column per time bucket."""
    return Panel(title, "heatmap", [target], width, height, description, unit,
                 options={"calculate": False, "cellGap": 1, "color": {"mode": "scheme", "scheme": "Reds",
                                                                     "steps": 64, "min": 0, "max": 1},
                          "rowsFrame": {"layout": "auto"}, "yAxis": {"axisPlacement": "left"},
                          "tooltip": {"mode": "single", "yHistogram": False}, "legend": {"show": True}},
                 extra={"interval": "1h"})


def barchart(title: str, target: Target, *, unit: str | None = None, description: str = "", width: int = 12,
             height: int = 8, overrides: list | None = None) -> Panel:
    return Panel(title, "barchart", [target], width, height, description, unit,
                 options={"orientation": "horizontal", "showValue": "auto", "stacking": "none",
                          "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"}},
                 overrides=overrides or [])


# -- the template variables the dashboards share ---------------------------------------------------------------

def source_variable() -> Variable:
    return Variable("source", "Source", "query", query=queries.sources(), multi=True, include_all=True)


def topic_variable(*, multi: bool) -> Variable:
    """Topic choices come from the model's labels; ``multi`` with All for repeated panels, else one topic."""
    return Variable("topic", "Topic", "custom", choices=TOPICS, multi=multi, include_all=multi)


def sentiment_variable() -> Variable:
    return Variable("sentiment", "Sentiment", "custom", choices=SENTIMENTS, multi=True, include_all=True)


def company_variable() -> Variable:
    """Companies by entity key (the drop-down shows names); multi-select, no All (hundreds of series)."""
    return Variable("company", "Company", "query", query=queries.companies(), multi=True)
