"""Turns a panel's SQL into the statement ClickHouse receives, exactly as Grafana + grafana-clickhouse-datasource do.

Three steps, in the plugin's order (its ``CHDatasource.applyTemplateVariables`` and Go ``pkg/macros``):
1. ``$__conditionalAll(condition, $var)`` becomes ``1=1`` when the dashboard variable is All (or empty), else the
   condition; the innermost/last macro is expanded first, and the variable's *global* value is what counts.
2. Grafana's template service replaces ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]``: a repeated panel's
   scoped value wins; All expands to every option (or the custom all value, unformatted); without a format the
   plugin's own formatter applies (a list becomes ``'a','b'``, a single value is inserted bare).
3. The backend expands the time macros with the request's time range and interval.
``finmon dashboards check`` and the tests use this to run every panel against a real ClickHouse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from inference.errors import FinmonError

ALL = "$__all"


class MacroError(FinmonError):
    """A panel's SQL uses a macro wrongly (bad argument count, unknown format, unbalanced parentheses)."""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's state: what is selected and which options it has (the All expansion)."""

    selected: tuple[str, ...]  # (ALL,) when All is selected
    options: tuple[str, ...] = ()
    multi: bool = False
    all_value: str | None = None

    @property
    def is_all(self) -> bool:
        return bool(self.selected) and self.selected[0] == ALL


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    interval: timedelta
    variables: Mapping[str, Variable] = field(default_factory=dict)
    scoped: Mapping[str, str] = field(default_factory=dict)  # a repeated panel's own value per variable


# -- 1. $__conditionalAll (frontend) ---------------------------------------------------------------------------

_CONDITIONAL = "$__conditionalAll("
_VAR_NAME = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _macro_args(sql: str, open_paren: int) -> list[str]:
    """The comma-separated arguments of the call whose '(' is at ``open_paren`` (nested parentheses kept)."""
    args, depth, start = [], 0, open_paren + 1
    for i in range(open_paren, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
        if depth == 0:
            args.append(sql[start:i])
            return args
    raise MacroError(f"unbalanced parentheses after {sql[max(0, open_paren - 20):open_paren + 1]!r}")


def apply_conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    index = sql.rfind(_CONDITIONAL)
    while index != -1:
        args = _macro_args(sql, index + len(_CONDITIONAL) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        phrase = args[0]
        name = _VAR_NAME.search(args[1].strip())
        if name and name.group(0) in variables:
            var = variables[name.group(0)]
            if not var.selected or ",".join(var.selected) in ("", ALL):
                phrase = "1=1"
        sql = sql.replace(f"{_CONDITIONAL}{args[0]},{args[1]})", phrase)
        index = sql.rfind(_CONDITIONAL)
    return sql


# -- 2. template variables (Grafana's template service with the plugin's default formatter) ------------------------

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def _plugin_format(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else "'" + "','".join(value) + "'"


def _quoted(value: str | Sequence[str], quote: str, escaped: str) -> str:
    values = [value] if isinstance(value, str) else list(value)
    return ",".join(f"{quote}{v.replace(quote, escaped)}{quote}" for v in values)


def _format(value: str | Sequence[str], fmt: str | None) -> str:
    if fmt is None:
        return _plugin_format(value)
    if fmt == "singlequote":
        return _quoted(value, "'", "\\'")
    if fmt == "doublequote":
        return _quoted(value, '"', '\\"')
    if fmt == "sqlstring":
        return _quoted(value, "'", "''")
    if fmt in ("csv", "raw"):
        return value if isinstance(value, str) else ",".join(value)
    if fmt == "pipe":
        return value if isinstance(value, str) else "|".join(value)
    raise MacroError(f"variable format {fmt!r} is not supported here")


def replace_variables(sql: str, variables: Mapping[str, Variable], scoped: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        if name in scoped:
            return _format(scoped[name], fmt)
        var = variables.get(name)
        if var is None:
            return match.group(0)  # not a dashboard variable: Grafana leaves it for the backend ($__timeFilter...)
        if var.is_all:
            if var.all_value is not None:
                return replace_variables(var.all_value, variables, scoped)
            return _format(list(var.options), fmt)
        return _format(list(var.selected) if var.multi else var.selected[0], fmt)

    return _VARIABLE.sub(one, sql)


# -- 3. time macros (the plugin's Go backend) ----------------------------------------------------------------------

def _datetime(t: datetime) -> str:
    return f"toDateTime({int(t.timestamp())})"


def _datetime64(t: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})"


def _date(t: datetime) -> str:
    return f"toDate('{t.strftime('%Y-%m-%d')}')"


def _backend_macros(ctx: QueryContext) -> dict[str, tuple[int, object]]:
    """name -> (argument count, function of the arguments)."""
    f, t = ctx.time_from, ctx.time_to
    seconds = max(int(ctx.interval.total_seconds()), 1)
    millis = max(int(ctx.interval.total_seconds() * 1000), 1)
    return {
        "fromTime": (0, lambda: _datetime(f)),
        "toTime": (0, lambda: _datetime(t)),
        "fromTime_ms": (0, lambda: _datetime64(f)),
        "toTime_ms": (0, lambda: _datetime64(t)),
        "timeFilter": (1, lambda c: f"{c} >= {_datetime(f)} AND {c} <= {_datetime(t)}"),
        "timeFilter_ms": (1, lambda c: f"{c} >= {_datetime64(f)} AND {c} <= {_datetime64(t)}"),
        "dateFilter": (1, lambda c: f"{c} >= {_date(f)} AND {c} <= {_date(t)}"),
        "dateTimeFilter": (2, lambda d, c: f"({d} >= {_date(f)} AND {d} <= {_date(t)}) AND "
                                           f"({c} >= {_datetime(f)} AND {c} <= {_datetime(t)})"),
        "timeInterval": (1, lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {seconds} second)"),
        "timeInterval_ms": (1, lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {millis} millisecond)"),
        "interval_s": (-1, lambda *a: str(seconds)),
    }


_BACKEND = re.compile(r"\$__(\w+)\b")


def apply_backend_macros(sql: str, ctx: QueryContext) -> str:
    macros = _backend_macros(ctx)
    macros["dt"] = macros["dateTimeFilter"]
    out, pos = [], 0
    for match in _BACKEND.finditer(sql):
        if match.start() < pos or match.group(1) not in macros:
            continue
        arity, func = macros[match.group(1)]
        end, args = match.end(), []
        if end < len(sql) and sql[end] == "(":
            content = ",".join(_macro_args(sql, end))  # sqlds then splits on every comma
            args = [a.strip() for a in content.split(",")] if content.strip() else []
            end += len(content) + 2
        if arity >= 0 and len(args) != arity:
            raise MacroError(f"$__{match.group(1)} expects {arity} argument(s), got {len(args)}")
        out.append(sql[pos:match.start()] + func(*args))  # type: ignore[operator]
        pos = end
    return "".join(out) + sql[pos:]


def interpolate(sql: str, ctx: QueryContext) -> str:
    """The SQL the plugin sends to ClickHouse for this panel query in this dashboard state."""
    sql = apply_conditional_all(sql, ctx.variables)
    sql = replace_variables(sql, ctx.variables, ctx.scoped)
    return apply_backend_macros(sql, ctx)


# Grafana's rounding of an auto interval (kbn.roundInterval), in milliseconds: (upper bound, result).
_ROUND = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000), (7500, 5000),
    (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
    (450000, 300000), (1050000, 600000), (2100000, 1200000), (4500000, 1800000), (9000000, 3600000),
    (17280000, 7200000), (34560000, 10800000), (52960000, 21600000), (64800000, 43200000),
    (129600000, 86400000), (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)


def auto_interval(time_from: datetime, time_to: datetime, max_data_points: int = 1000,
                  min_interval: timedelta = timedelta(minutes=1)) -> timedelta:
    """The ``$__interval`` Grafana sends: range / max data points, rounded, not below the panel's min interval."""
    raw = (time_to - time_from).total_seconds() * 1000 / max(max_data_points, 1)
    rounded = next((r for bound, r in _ROUND if raw < bound), 31536000000)
    return max(timedelta(milliseconds=rounded), min_interval)
