"""The pieces of a Grafana dashboard JSON model, as plain Python (see docs/dashboards.md for why not the SDK).

A panel's queries are ``SqlTarget`` (ClickHouse, with the plugin's macros) or ``PromTarget`` objects; they keep
what the JSON does not say (the columns a SQL query must return) so tests can execute every panel's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 39  # Grafana 11.x dashboards (12.x migrates it on load)
GRID_WIDTH = 24

Format = Literal["table", "time_series"]
# the plugin's query types (src/types/sql.ts) and the numeric format its backend reads
_QUERY_TYPE = {"table": "table", "time_series": "timeSeries"}
_FORMAT = {"table": 1, "time_series": 0}


@dataclass(frozen=True)
class SqlTarget:
    """A raw-SQL query of the ClickHouse plugin. ``columns``: the columns, in order, the panel needs back."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"

    def to_json(self, datasource: dict[str, str]) -> dict[str, Any]:
        return {
            "datasource": datasource,
            "editorType": "sql",
            "format": _FORMAT[self.format],
            "queryType": _QUERY_TYPE[self.format],
            "rawSql": self.sql,
        }


@dataclass(frozen=True)
class PromTarget:
    expr: str
    legend: str = "__auto"

    def to_json(self, datasource: dict[str, str]) -> dict[str, Any]:
        return {"datasource": datasource, "expr": self.expr, "legendFormat": self.legend, "range": True}


Target = SqlTarget | PromTarget


@dataclass
class Panel:
    """One panel. ``type``: timeseries, table, stat, heatmap, barchart... ``width``/``height`` in grid units."""

    title: str
    type: str
    targets: list[Target]
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)  # fieldConfig.defaults.custom
    overrides: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys (repeat, maxPerRow...)


@dataclass(frozen=True)
class Variable:
    """A template variable: ``custom`` (fixed choices) or ``query`` (a ClickHouse query returning value[, text])."""

    name: str
    label: str
    kind: Literal["custom", "query"]
    choices: tuple[str, ...] = ()
    query: SqlTarget | None = None
    multi: bool = False
    include_all: bool = False
    default: tuple[str, ...] = ()  # empty: All when include_all, else the first choice

    def to_json(self, datasource: dict[str, str]) -> dict[str, Any]:
        selected = list(self.default) or (["$__all"] if self.include_all else list(self.choices[:1]))
        options = [{"selected": v in selected, "text": v, "value": v} for v in self.choices]
        if self.include_all:
            options.insert(0, {"selected": selected == ["$__all"], "text": "All", "value": "$__all"})
        text = ["All" if v == "$__all" else v for v in selected]
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "multi": self.multi,
            "includeAll": self.include_all,
            "current": {"selected": True, "text": text if self.multi else "".join(text[:1]),
                        "value": selected if self.multi else "".join(selected[:1])},
            "hide": 0,
            "skipUrlSync": False,
        }
        if self.kind == "custom":
            body.update(query=",".join(c.replace(",", "\\,") for c in self.choices), options=options)
        else:
            assert self.query is not None, f"query variable {self.name} needs a query"
            body.update(datasource=datasource, definition=self.query.sql, options=[], refresh=2, sort=0,
                        query={"editorType": "sql", "rawSql": self.query.sql, "format": 1, "queryType": "table",
                               "refId": "VariableQuery"})
        return body


_MENU = {"type": "dashboards", "tags": ["finmon"], "asDropdown": True, "title": "finmon dashboards",
         "keepTime": True, "includeVars": False}


@dataclass(frozen=True)
class Annotation:
    """Events drawn on every time series: a ClickHouse query returning ``time``, ``timeEnd``, ``text``, ``tags``."""

    name: str
    target: SqlTarget
    color: str = "red"

    def to_json(self, datasource: dict[str, str]) -> dict[str, Any]:
        return {"name": self.name, "datasource": datasource, "enable": True, "hide": False, "iconColor": self.color,
                "target": self.target.to_json(datasource) | {"refId": "Anno"}}


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    variables: list[Variable] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    tags: tuple[str, ...] = ("finmon",)
    time_from: str = "now-24h"
    refresh: str = "1m"
    links: list[dict[str, Any]] = field(default_factory=lambda: [dict(_MENU)])

    def sql_targets(self) -> list[SqlTarget]:
        """Every ClickHouse query of the dashboard: panels, variables, annotations."""
        targets = [t for p in self.panels for t in p.targets if isinstance(t, SqlTarget)]
        targets += [v.query for v in self.variables if v.query is not None]
        return targets + [a.target for a in self.annotations]


_BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def _panel_json(panel: Panel, pid: int, pos: dict[str, int], refs: dict[type, dict[str, str]]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"custom": dict(panel.custom)}
    if panel.unit:
        defaults["unit"] = panel.unit
    datasource = refs[type(panel.targets[0])]
    body: dict[str, Any] = {
        "id": pid,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource,
        "gridPos": pos,
        "fieldConfig": {"defaults": defaults, "overrides": list(panel.overrides)},
        "options": dict(panel.options),
        "targets": [
            t.to_json(refs[type(t)]) | {"refId": chr(ord("A") + i)} for i, t in enumerate(panel.targets)
        ],
    }
    body.update(panel.extra)
    return body


def dashboard_json(dash: Dashboard, clickhouse: dict[str, str], prometheus: dict[str, str]) -> dict[str, Any]:
    """The dashboard as Grafana stores it: panels flow left to right in rows of 24 grid units, ids 1..n."""
    refs: dict[type, dict[str, str]] = {SqlTarget: clickhouse, PromTarget: prometheus}
    panels, x, y, row_height = [], 0, 0, 0
    for pid, panel in enumerate(dash.panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, pid, {"h": panel.height, "w": panel.width, "x": x, "y": y}, refs))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": dash.uid,
        "title": dash.title,
        "description": dash.description,
        "tags": list(dash.tags),
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": dash.refresh,
        "time": {"from": dash.time_from, "to": "now"},
        "annotations": {"list": [_BUILTIN_ANNOTATION, *(a.to_json(clickhouse) for a in dash.annotations)]},
        "templating": {"list": [v.to_json(clickhouse) for v in dash.variables]},
        "links": list(dash.links),
        "panels": panels,
    }
