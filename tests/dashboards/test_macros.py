"""dashboards.macros expands SQL the way grafana-clickhouse-datasource does (its CHDatasource.applyConditionalAll,
Grafana's template service with the plugin's formatter, and the Go pkg/macros). Expected strings follow the
plugin's source and docs; a real ClickHouse then checks that the output is valid SQL that filters correctly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    ALL,
    MacroError,
    QueryContext,
    Variable,
    apply_backend_macros,
    apply_conditional_all,
    auto_interval,
    interpolate,
    replace_variables,
)

FROM = datetime(2026, 11, 9, 14, 0, tzinfo=UTC)
TO = datetime(2026, 11, 9, 16, 0, 30, 250000, tzinfo=UTC)
SOURCES = ("newswire", "stocktwits", "twitter")


def ctx(**variables: Variable) -> QueryContext:
    return QueryContext(FROM, TO, timedelta(minutes=5), variables)


def test_conditional_all_drops_the_condition_for_all_and_for_an_empty_selection() -> None:
    sql = "SELECT 1 WHERE $__conditionalAll(source IN (${source:singlequote}), $source)"
    assert apply_conditional_all(sql, {"source": Variable((ALL,), SOURCES, True)}) == "SELECT 1 WHERE 1=1"
    assert apply_conditional_all(sql, {"source": Variable((), SOURCES, True)}) == "SELECT 1 WHERE 1=1"
    kept = apply_conditional_all(sql, {"source": Variable(("twitter",), SOURCES, True)})
    assert kept == "SELECT 1 WHERE source IN (${source:singlequote})"


def test_conditional_all_handles_nested_parentheses_and_several_macros() -> None:
    sql = ("WHERE $__conditionalAll(lower(a) IN (lower(${a:singlequote})), ${a}) "
           "AND $__conditionalAll(b IN (${b:singlequote}), $b)")
    out = apply_conditional_all(sql, {"a": Variable(("x",), ("x", "y"), True), "b": Variable((ALL,), ("z",), True)})
    assert out == "WHERE lower(a) IN (lower(${a:singlequote})) AND 1=1"


def test_singlequote_quotes_and_escapes_each_value_and_all_expands_to_every_option() -> None:
    variables = {"company": Variable(("WFC", "o'neil"), ("WFC", "o'neil", "AAPL"), multi=True)}
    assert replace_variables("IN (${company:singlequote})", variables, {}) == "IN ('WFC','o\\'neil')"
    variables = {"company": Variable((ALL,), ("WFC", "AAPL"), multi=True)}
    assert replace_variables("IN (${company:singlequote})", variables, {}) == "IN ('WFC','AAPL')"


def test_the_plugin_formatter_applies_without_a_format() -> None:
    multi = {"s": Variable(("a", "b"), ("a", "b"), multi=True)}
    single = {"s": Variable(("a",), ("a", "b"), multi=False)}
    assert replace_variables("IN ($s)", multi, {}) == "IN ('a','b')"
    assert replace_variables("= '$s' [[s]]", single, {}) == "= 'a' a"


def test_a_custom_all_value_is_inserted_unformatted() -> None:
    variables = {"s": Variable((ALL,), ("a", "b"), multi=True, all_value=".*")}
    assert replace_variables("match(x, ${s:singlequote})", variables, {}) == "match(x, .*)"


def test_a_repeated_panel_uses_its_scoped_value_but_conditional_all_reads_the_global_one() -> None:
    variables = {"topic": Variable((ALL,), ("Earnings", "IPO"), multi=True)}
    sql = "topic = ${topic:singlequote} AND $__conditionalAll(topic IN (${topic:singlequote}), $topic)"
    out = interpolate(sql, QueryContext(FROM, TO, timedelta(minutes=1), variables, {"topic": "IPO"}))
    assert out == "topic = 'IPO' AND 1=1"


def test_unknown_variables_and_backend_macros_are_left_for_the_next_step() -> None:
    assert replace_variables("$__timeFilter(t) AND $nope", {}, {}) == "$__timeFilter(t) AND $nope"


def test_time_macros_match_the_plugin_backend() -> None:
    c = ctx()
    f, t = int(FROM.timestamp()), int(TO.timestamp())
    assert apply_backend_macros("WHERE $__timeFilter(minute)", c) == \
        f"WHERE minute >= toDateTime({f}) AND minute <= toDateTime({t})"
    assert apply_backend_macros("$__fromTime_ms $__toTime", c) == \
        f"fromUnixTimestamp64Milli({f * 1000}) toDateTime({t})"
    assert apply_backend_macros("$__timeInterval(ts) / $__interval_s", c) == \
        "toStartOfInterval(toDateTime(ts), INTERVAL 300 second) / 300"
    assert apply_backend_macros("$__timeFilter_ms(ts)", c) == \
        f"ts >= fromUnixTimestamp64Milli({f * 1000}) AND ts <= fromUnixTimestamp64Milli({int(TO.timestamp() * 1000)})"
    assert apply_backend_macros("$__dateFilter(d)", c) == "d >= toDate('2026-11-09') AND d <= toDate('2026-11-09')"


def test_macro_errors_are_reported() -> None:
    with pytest.raises(MacroError, match="expects 1"):
        apply_backend_macros("$__timeFilter(a, b)", ctx())
    with pytest.raises(MacroError, match="unbalanced"):
        apply_conditional_all("$__conditionalAll(a IN (1, $a", {"a": Variable((ALL,))})
    with pytest.raises(MacroError, match="format"):
        replace_variables("${a:glob}", {"a": Variable(("x",))}, {})


def test_auto_interval_rounds_like_grafana_and_respects_the_minimum() -> None:
    day = timedelta(days=1)
    assert auto_interval(FROM, FROM + day, 1000) == timedelta(minutes=1)  # 86.4 s -> 1m
    assert auto_interval(FROM, FROM + 7 * day, 1000) == timedelta(minutes=10)  # 604.8 s -> 10m
    assert auto_interval(FROM, FROM + timedelta(hours=1), 1000) == timedelta(minutes=1)  # 3.6 s, min 1m
    assert auto_interval(FROM, FROM + timedelta(hours=1), 1000, timedelta(0)) == timedelta(seconds=5)


def test_expanded_sql_runs_and_filters_in_clickhouse(store) -> None:
    """The expansion is valid ClickHouse SQL with the semantics the dashboard promises: All keeps every row,
    a selection keeps only its values, and a value with a quote cannot break out of its literal."""
    sql = ("SELECT count() AS n FROM (SELECT arrayJoin(['twitter', 'newswire', 'o''neil']) AS source, "
           "toDateTime('2026-11-09 15:00:00', 'UTC') AS minute) "
           "WHERE $__timeFilter(minute) AND $__conditionalAll(source IN (${source:singlequote}), $source)")
    options = ("twitter", "newswire", "o'neil")

    def count(*selected: str) -> int:
        return store.query(interpolate(sql, ctx(source=Variable(selected, options, multi=True))))[0]["n"]

    assert count(ALL) == 3
    assert count("twitter") == 1
    assert count("twitter", "o'neil") == 2
    assert count("x') OR ('1'='1") == 0
