"""Every ClickHouse query of every dashboard (panels, variables, annotations) runs against a ClickHouse that holds
the demo stream, expanded as Grafana + the plugin would for All / one value / two values per variable, and returns
rows with the columns its panel reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.build import dashboard_models, dashboards
from dashboards.check import STATES, Checker, QueryRun
from dashboards.macros import ALL, QueryContext, Variable, interpolate
from dashboards.settings import GrafanaSettings
from dashboards import queries
from ingest.store import Store


@pytest.fixture(scope="module")
def time_range(demo_store: Store) -> tuple[datetime, datetime]:
    """From the first publication to just after the last write (the pipeline panels go by ingest time)."""
    row = demo_store.query("SELECT min(published_at) AS lo, max(ingested_at) AS hi FROM documents")[0]
    return row["lo"], max(row["hi"], datetime.now(UTC)) + timedelta(minutes=1)


@pytest.fixture(scope="module")
def top(demo_store: Store) -> dict[str, list[str]]:
    """Values for the 'one value' and 'two values' states that select data that exists: subjects with alerts
    (so the annotations have episodes to show), then the busiest."""
    def values(sql: str) -> list[str]:
        return [next(iter(r.values())) for r in demo_store.query(sql)]

    alerted = ("SELECT subject_name FROM alert_events WHERE subject_kind = '{}' "
               "GROUP BY subject_name ORDER BY count() DESC")
    return {
        "topic": values(alerted.format("topic")) + values("SELECT topic FROM predictions GROUP BY topic "
                                                          "ORDER BY count() DESC, topic LIMIT 2"),
        "company": values(alerted.format("entity")),
        "sentiment": values("SELECT sentiment FROM predictions GROUP BY sentiment ORDER BY count() DESC LIMIT 2"),
    }


@pytest.fixture(scope="module")
def runs(demo_store: Store, time_range: tuple[datetime, datetime], top: dict[str, list[str]]) -> list[QueryRun]:
    return Checker(demo_store, GrafanaSettings(), *time_range, prefer=top).run()


def test_every_clickhouse_query_in_the_json_models_is_run_in_every_state(runs: list[QueryRun]) -> None:
    models = dashboard_models(GrafanaSettings())
    for model in models:
        expected = [p["title"] for p in model["panels"] for t in p["targets"]
                    if t["datasource"]["type"] == "grafana-clickhouse-datasource"]
        expected += [f"annotation {a['name']}" for a in model["annotations"]["list"] if "target" in a]
        for state in STATES:
            ran = [r.panel for r in runs if r.dashboard == model["uid"] and r.state == state]
            assert sorted(ran) == sorted(expected), (model["uid"], state)
        variables = [v["name"] for v in model["templating"]["list"] if v["type"] == "query"]
        assert sorted(r.panel for r in runs if r.dashboard == model["uid"] and r.state == "load") == \
            sorted(f"variable {v}" for v in variables)


def test_every_query_returns_rows_with_the_columns_its_panel_reads(runs: list[QueryRun]) -> None:
    failures = [f"{r.dashboard} / {r.panel} [{r.state}]: {r.error or ''} columns={r.columns} "
                f"expected={r.expected} rows={r.rows}\n  {r.sql}" for r in runs if not r.ok]
    assert not failures, "\n".join(failures)


def test_no_macro_or_variable_reaches_clickhouse_unexpanded(runs: list[QueryRun]) -> None:
    assert all("$" not in r.sql for r in runs), [r.sql for r in runs if "$" in r.sql][:3]


def test_template_variables_filter_what_the_panels_count(demo_store: Store, time_range) -> None:
    """The overview's document count under All equals the stored documents; one source gives that source's
    count; two sources give their sum. (The same macros, variables and table as the panel.)"""
    sql = queries.document_total().sql
    totals = {r["source"]: r["n"] for r in demo_store.query(
        "SELECT source, uniqExact(doc_id) AS n FROM predictions FINAL GROUP BY source")}
    names = tuple(sorted(totals))

    def count(*selected: str) -> int:
        ctx = QueryContext(*time_range, timedelta(minutes=1), {"source": Variable(selected, names, multi=True)})
        return demo_store.query(interpolate(sql, ctx))[0]["documents"]

    assert count(ALL) == sum(totals.values()) == 3998  # the demo stream's documents (demo_stream.json)
    assert count(names[0]) == totals[names[0]]
    assert count(names[0], names[1]) == totals[names[0]] + totals[names[1]]


def test_redelivered_documents_are_counted_once(demo_store: Store, time_range) -> None:
    """The demo stream redelivers 25 documents; the panels' counts still match the distinct documents."""
    ctx = QueryContext(*time_range, timedelta(minutes=1), {"source": Variable((ALL,), (), multi=True)})
    by_interval = demo_store.query(interpolate(queries.volume_by_source().sql, ctx))
    assert sum(r["documents"] for r in by_interval) == demo_store.query(
        "SELECT uniqExact(doc_id) AS n FROM documents")[0]["n"]


def test_company_variable_lists_companies_by_volume_and_its_panels_follow_it(demo_store: Store, time_range) -> None:
    ctx = QueryContext(*time_range, timedelta(minutes=1))
    options = demo_store.query(interpolate(queries.companies().sql, ctx))
    keys = [r["entity_key"] for r in options]
    assert len(keys) == len(set(keys)) > 2
    chosen = Variable((keys[0],), tuple(keys), multi=True)
    ctx = QueryContext(*time_range, timedelta(minutes=1), {"company": chosen, "source": Variable((ALL,), ())})
    split = demo_store.query(interpolate(queries.company_sentiment_split().sql, ctx))
    assert [r["company"] for r in split] == [keys[0]]
    assert split[0]["documents"] == split[0]["negative"] + split[0]["neutral"] + split[0]["positive"] > 0


def test_every_dashboard_with_clickhouse_panels_is_checked() -> None:
    uids = {d.uid for d in dashboards() if d.sql_targets()}
    assert uids == {"finmon-overview", "finmon-topic", "finmon-companies", "finmon-alerts", "finmon-pipeline"}


def test_current_alerts_are_the_episodes_whose_last_event_is_not_a_resolution(demo_store: Store, time_range) -> None:
    from alerts.history import events
    from dashboards.history import annotation, open_alert_panels

    last: dict[str, dict] = {}
    for e in events(demo_store):  # ordered by time
        last[e["alert_id"]] = e
    expected = sorted((e["subject_kind"], e["subject_name"]) for e in last.values() if e["status"] != "resolved")
    assert expected, "the demo's surge should leave open alerts at the end of the detection run"
    ctx = QueryContext(*time_range, timedelta(minutes=1))
    stat, rows = (demo_store.query(interpolate(p.targets[0].sql, ctx)) for p in open_alert_panels())
    assert stat[0]["open_alerts"] == len(expected)
    assert sorted((r["kind"], r["subject"]) for r in rows) == expected

    company = expected[-1][1] if expected[-1][0] == "entity" else next(n for k, n in expected if k == "entity")
    ctx = QueryContext(*time_range, timedelta(minutes=1), {"company": Variable((company,), (company,), True)})
    regions = demo_store.query(interpolate(annotation("entity", "company").target.sql, ctx))
    assert regions and all(company in r["text"] and r["time"] <= r["timeEnd"] for r in regions)
