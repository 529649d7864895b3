"""The committed dashboards/generated/ matches the code, and the JSON models are dashboards Grafana can load."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from dashboards.build import GENERATED, build, dashboard_models, drift, write
from dashboards.settings import CLICKHOUSE_PLUGIN, GrafanaSettings
from finmon.cli import main
from inference.labels import SENTIMENTS, TOPICS
from ingest.metrics import IngestMetrics


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> GrafanaSettings:
    """Default settings, whatever FINMON_GRAFANA_* the environment has (the committed files use the defaults)."""
    for name in [n for n in os.environ if n.startswith("FINMON_GRAFANA_") or n == "FINMON_CONFIG"]:
        monkeypatch.delenv(name)
    return GrafanaSettings()


@pytest.fixture
def models(settings: GrafanaSettings) -> list[dict]:
    return dashboard_models(settings)


def test_committed_files_match_what_the_code_builds(settings: GrafanaSettings) -> None:
    assert drift(build(settings), GENERATED) == [], "run `finmon dashboards build` and commit dashboards/generated"


def test_build_writes_reports_and_removes_drift(tmp_path: Path, settings: GrafanaSettings) -> None:
    files = build(settings)
    assert sorted(write(files, tmp_path)) == sorted(files)
    assert drift(files, tmp_path) == [] and write(files, tmp_path) == []
    (tmp_path / "dashboards" / "finmon-topic.json").write_text("{}")
    (tmp_path / "dashboards" / "old.json").write_text("{}")
    assert drift(files, tmp_path) == ["dashboards/finmon-topic.json", "dashboards/old.json"]
    assert main(["dashboards", "build", "--check", "--out", str(tmp_path)]) == 1
    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "dashboards" / "old.json").exists() and drift(files, tmp_path) == []
    assert main(["dashboards", "build", "--check", "--out", str(tmp_path)]) == 0


def test_json_models_are_valid_grafana_dashboards(models: list[dict]) -> None:
    assert len({m["uid"] for m in models}) == len(models) == 5
    for m in models:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", m["uid"]) and m["title"] and m["schemaVersion"] >= 36
        assert json.loads(json.dumps(m)) == m
        ids = [p["id"] for p in m["panels"]]
        assert len(ids) == len(set(ids)), m["uid"]
        cells: set[tuple[int, int]] = set()
        for p in m["panels"]:
            assert p["type"] and p["title"] and p["targets"], (m["uid"], p.get("title"))
            assert p["datasource"]["uid"] and all(t["datasource"]["uid"] and t["refId"] for t in p["targets"])
            assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
            g = p["gridPos"]
            assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24, (m["uid"], p["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, f"{m['uid']}: {p['title']} overlaps another panel"
            cells |= mine
            for t in p["targets"]:
                assert t.get("rawSql") if t["datasource"]["type"] == CLICKHOUSE_PLUGIN else t.get("expr")


def _sql_texts(model: dict) -> list[str]:
    texts = [t["rawSql"] for p in model["panels"] for t in p["targets"] if "rawSql" in t]
    texts += [a["target"]["rawSql"] for a in model["annotations"]["list"] if "target" in a]
    return texts + [v["query"]["rawSql"] for v in model["templating"]["list"] if v["type"] == "query"]


def test_variables_used_by_queries_and_links_are_defined(models: list[dict]) -> None:
    defined = {m["uid"]: {v["name"] for v in m["templating"]["list"]} for m in models}
    for m in models:
        used = {name for sql in _sql_texts(m) for name in re.findall(r"\$\{?(\w+)", sql)}
        assert {u for u in used if not u.startswith("__")} <= defined[m["uid"]], m["uid"]
        for p in m["panels"]:  # a repeated panel repeats over a variable of its own dashboard
            assert p.get("repeat") is None or p["repeat"] in defined[m["uid"]]
        for uid, var in re.findall(r"/d/([\w-]+)/\?var-(\w+)=", json.dumps(m["panels"])):
            assert uid in defined and var in defined[uid], (m["uid"], uid, var)


def test_user_values_reach_sql_only_quoted_and_escaped(models: list[dict]) -> None:
    """A variable's value is user text (a URL parameter can set it): in SQL it must go through ${var:singlequote}
    (quotes and escapes each value); a bare $var only as the All-detector of $__conditionalAll."""
    checked = 0
    for m in models:
        for sql in _sql_texts(m):
            allowed = re.sub(r",\s*\$\{?\w+\}?\)", ")", sql)  # $__conditionalAll(cond, $var) -> cond)
            for ref in re.finditer(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)", allowed):
                name = ref.group(1) or ref.group(3) or ref.group(4)
                if name.startswith("__"):
                    continue
                checked += 1
                assert ref.group(2) == "singlequote", f"{m['uid']}: {ref.group(0)} in {sql[:80]}..."
    assert checked > 20


def test_fixed_choices_come_from_the_model_labels(models: list[dict]) -> None:
    seen = set()
    for m in models:
        for v in m["templating"]["list"]:
            values = [o["value"] for o in v.get("options", []) if o["value"] != "$__all"]
            if v["name"] in ("topic", "sentiment"):
                assert values == list({"topic": TOPICS, "sentiment": SENTIMENTS}[v["name"]])
                seen.add(v["name"])
    assert seen == {"topic", "sentiment"}


def test_datasources_in_the_models_are_the_provisioned_ones(settings: GrafanaSettings, models: list[dict]) -> None:
    provisioned = yaml.safe_load(build(settings)["provisioning/datasources/finmon.yaml"])["datasources"]
    known = {(d["type"], d["uid"]) for d in provisioned}
    for m in models:
        refs = {(p["datasource"]["type"], p["datasource"]["uid"]) for p in m["panels"]}
        refs |= {(t["datasource"]["type"], t["datasource"]["uid"]) for p in m["panels"] for t in p["targets"]}
        assert refs <= known, (m["uid"], refs - known)


def test_provisioning_keeps_secrets_in_the_environment(settings: GrafanaSettings) -> None:
    files = build(settings.model_copy(update={"clickhouse_password": "s3cret-pw"}))
    assert not any("s3cret-pw" in text for text in files.values())
    sources = yaml.safe_load(files["provisioning/datasources/finmon.yaml"])["datasources"]
    ch = next(d for d in sources if d["type"] == CLICKHOUSE_PLUGIN)
    assert ch["secureJsonData"]["password"] == "${FINMON_CLICKHOUSE_READER_PASSWORD}"
    assert ch["jsonData"]["host"] and "server" not in ch["jsonData"]  # plugin v4 renamed server -> host
    providers = yaml.safe_load(files["provisioning/dashboards/finmon.yaml"])["providers"]
    assert providers[0]["folderUid"] == settings.folder_uid and providers[0]["options"]["path"]


def _exposed(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Sample name -> label names, as a Prometheus scrape of ingest.metrics would show them."""
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}[family.type]
        for sample in family.samples:
            for suffix in suffixes:
                if sample.name == family.name + suffix:
                    out.setdefault(sample.name, set()).update(sample.labels)
    return out


def test_promql_uses_only_metrics_and_labels_that_ingest_defines(models: list[dict]) -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    # give every labelled metric one child so its samples (and label names) show up
    metrics.documents.labels(source="s", kind="news", outcome="stored").inc()
    metrics.dead_letters.labels(reason="invalid_json").inc()
    metrics.consumer_lag.labels(topic="news.raw", partition="0").set(1)
    metrics.backpressure_pauses.labels(cause="model").inc()
    for h in (metrics.batch_size, metrics.inference_seconds, metrics.insert_seconds):
        h.observe(1)
    exposed = _exposed(registry)
    exprs = [t["expr"] for m in models for p in m["panels"] for t in p["targets"] if "expr" in t]
    assert len(exprs) >= 8
    used = set()
    for expr in exprs:
        names = set(re.findall(r"\bfinmon_\w+", expr))
        assert names and names <= set(exposed), (expr, names - set(exposed))
        used |= names
        labels = set().union(*(exposed[n] for n in names))
        grouped = {lb.strip() for g in re.findall(r"by \(([^)]*)\)", expr) for lb in g.split(",")}
        matched = set(re.findall(r"(\w+)\s*=~?\s*\"", expr))
        assert grouped | matched <= labels, (expr, (grouped | matched) - labels)
    wanted = {"finmon_documents_total", "finmon_dead_letters_total", "finmon_batch_size_bucket",
              "finmon_inference_seconds_bucket", "finmon_clickhouse_insert_seconds_bucket", "finmon_consumer_lag"}
    assert wanted <= used


def test_every_clickhouse_time_series_shows_the_alert_episodes(models: list[dict]) -> None:
    """Grafana draws a dashboard's annotations on its time-series panels: every dashboard with a ClickHouse time
    series carries the alert annotation (its SQL is run by `finmon dashboards check` with the other queries)."""
    for model in models:
        series = [p for p in model["panels"] if p["type"] == "timeseries"
                  and any(t["datasource"]["type"] == "grafana-clickhouse-datasource" for t in p["targets"])]
        if series:
            names = [a["name"] for a in model["annotations"]["list"] if "target" in a]
            assert "finmon alerts" in names, model["uid"]
            sql = next(a["target"]["rawSql"] for a in model["annotations"]["list"] if a["name"] == "finmon alerts")
            assert "alert_events" in sql and "timeEnd" in sql
