"""Runs every ClickHouse query of the built dashboards against a real ClickHouse, as Grafana would send it.

The queries are taken from the JSON models (what Grafana receives: panels, template variables, annotations) and
interpolated by ``dashboards.macros`` for several dashboard states: every variable on All, one value each, two
values each. Variable options come from the variables' own queries, run first, as Grafana does on load.
``finmon dashboards check`` prints the result; tests/dashboards asserts on it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingest.store import Store, StoreError

from dashboards.build import dashboard_models, dashboards
from dashboards.macros import ALL, QueryContext, Variable, auto_interval, interpolate
from dashboards.settings import CLICKHOUSE_PLUGIN, GrafanaSettings

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STATES = ("all", "single", "multi")


@dataclass(frozen=True)
class QueryRun:
    dashboard: str
    panel: str  # panel title, "variable <name>" or "annotation <name>"
    state: str
    sql: str  # as sent to ClickHouse
    expected: tuple[str, ...]
    columns: tuple[str, ...] = ()
    rows: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.columns == self.expected and self.rows > 0


def _min_interval(panel: Mapping[str, Any]) -> timedelta:
    match = _DURATION.match(str(panel.get("interval") or "1m"))
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)]) if match else timedelta(minutes=1)


def _run(store: Store, sql: str) -> tuple[tuple[str, ...], int, str | None, list[dict[str, Any]]]:
    try:
        rows = store.query(sql)
    except StoreError as exc:
        return (), 0, str(exc), []
    # column names even for an empty result: ask ClickHouse to describe the statement
    columns = tuple(rows[0]) if rows else tuple(r["name"] for r in store.query(f"DESCRIBE ({sql})"))
    return columns, len(rows), None, rows


class Checker:
    def __init__(self, store: Store, settings: GrafanaSettings, time_from: datetime, time_to: datetime,
                 prefer: Mapping[str, Sequence[str]] | None = None) -> None:
        self.store, self.settings = store, settings
        self.time_from, self.time_to = time_from, time_to
        self.prefer = prefer or {}
        self.expected = {t.sql: t.columns for d in dashboards(settings) for t in d.sql_targets()}

    def _ctx(self, variables: Mapping[str, Variable], scoped: Mapping[str, str] | None = None,
             min_interval: timedelta = timedelta(minutes=1)) -> QueryContext:
        return QueryContext(self.time_from, self.time_to, auto_interval(self.time_from, self.time_to,
                                                                        min_interval=min_interval),
                            variables, scoped or {})

    def _options(self, model: dict[str, Any], runs: list[QueryRun]) -> dict[str, dict[str, Any]]:
        """Each variable's definition and options; query variables are run (and recorded) like panels."""
        out = {}
        for var in model["templating"]["list"]:
            if var["type"] == "query":
                sql = interpolate(var["query"]["rawSql"], self._ctx({}))
                columns, n, error, rows = _run(self.store, sql)
                runs.append(QueryRun(model["uid"], f"variable {var['name']}", "load", sql,
                                     self.expected.get(var["query"]["rawSql"], ()), columns, n, error))
                options = [str(next(iter(r.values()))) for r in rows]
            else:
                options = [o["value"] for o in var["options"] if o["value"] != ALL]
            preferred = [v for v in self.prefer.get(var["name"], ()) if v in options]
            out[var["name"]] = {"def": var, "options": options,
                                "ordered": preferred + [o for o in options if o not in preferred]}
        return out

    def _state(self, options: dict[str, dict[str, Any]], state: str) -> dict[str, Variable]:
        variables = {}
        for name, o in options.items():
            d, ordered = o["def"], o["ordered"]
            if state == "all" and d["includeAll"]:
                selected: tuple[str, ...] = (ALL,)
            elif state == "multi" and d["multi"]:
                selected = tuple(ordered[:2])
            else:
                selected = tuple(ordered[:1])
            variables[name] = Variable(selected, tuple(o["options"]), d["multi"], d.get("allValue") or None)
        return variables

    def run(self, states: Sequence[str] = STATES) -> list[QueryRun]:
        runs: list[QueryRun] = []
        for model in dashboard_models(self.settings):
            options = self._options(model, runs)
            for state in states:
                variables = self._state(options, state)
                for title, panel, raw in _model_queries(model):
                    scoped = {}
                    if panel.get("repeat"):  # each repeated copy gets one value of the variable
                        name = panel["repeat"]
                        scoped = {name: options[name]["ordered"][0]} if options[name]["ordered"] else {}
                    sql = interpolate(raw, self._ctx(variables, scoped, _min_interval(panel)))
                    columns, n, error, _ = _run(self.store, sql)
                    runs.append(QueryRun(model["uid"], title, state, sql, self.expected.get(raw, ()), columns, n,
                                         error))
        bad = [r for r in runs if not r.ok]
        log.info("dashboard check: %d queries run, %d not ok", len(runs), len(bad))
        return runs


def _model_queries(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(label, panel, raw SQL) of every ClickHouse query in a dashboard JSON model."""
    for panel in model["panels"]:
        for target in panel["targets"]:
            if target["datasource"]["type"] == CLICKHOUSE_PLUGIN:
                yield panel["title"], panel, target["rawSql"]
    for ann in model["annotations"]["list"]:
        if ann.get("datasource", {}).get("type") == CLICKHOUSE_PLUGIN:
            yield f"annotation {ann['name']}", {}, ann["target"]["rawSql"]
