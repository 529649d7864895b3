"""Builds every dashboard's JSON model and the provisioning files; writes them, or reports drift from disk.

``dashboards/generated/`` is committed: deploy/ mounts it into Grafana, and a test fails when it no longer
matches what this code builds (run ``finmon dashboards build`` after editing a dashboard).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dashboards import companies, history, pipeline, topics
from dashboards.model import Dashboard, dashboard_json
from dashboards.provisioning import dashboards_yaml, datasources_yaml
from dashboards.settings import GrafanaSettings

log = logging.getLogger(__name__)

GENERATED = Path(__file__).resolve().parent / "generated"
DASHBOARD_DIR = "dashboards"


def dashboards(settings: GrafanaSettings | None = None) -> list[Dashboard]:
    """Every finmon dashboard, in menu order (the model does not depend on settings; the JSON does)."""
    return [
        topics.overview(history.open_alert_panels(), [history.annotation()]),
        topics.topic_drilldown([history.annotation(subject_kind="topic", subject_var="topic")]),
        companies.watchlist([history.annotation(subject_kind="entity", subject_var="company")]),
        history.alerts_history(),
        pipeline.pipeline_health([history.annotation()]),
    ]


def dashboard_models(settings: GrafanaSettings) -> list[dict]:
    ch, prom = settings.clickhouse_ref(), settings.prometheus_ref()
    return [dashboard_json(d, ch, prom) for d in dashboards(settings)]


def build(settings: GrafanaSettings) -> dict[str, str]:
    """Relative path -> file content, for everything under ``dashboards/generated/``."""
    files = {
        f"{DASHBOARD_DIR}/{model['uid']}.json": json.dumps(model, indent=2, ensure_ascii=False) + "\n"
        for model in dashboard_models(settings)
    }
    files["provisioning/datasources/finmon.yaml"] = datasources_yaml(settings)
    files["provisioning/dashboards/finmon.yaml"] = dashboards_yaml(settings)
    return files


def _stale(files: dict[str, str], out: Path) -> list[str]:
    """Generated dashboards on disk that the code no longer builds."""
    folder = out / DASHBOARD_DIR
    existing = {f"{DASHBOARD_DIR}/{p.name}" for p in folder.glob("*.json")} if folder.is_dir() else set()
    return sorted(existing - set(files))


def drift(files: dict[str, str], out: Path = GENERATED) -> list[str]:
    """Paths whose content on disk differs from ``files`` (missing, changed or stale); empty when in sync."""
    changed = [rel for rel, text in sorted(files.items())
               if not (out / rel).is_file() or (out / rel).read_text(encoding="utf-8") != text]
    return changed + _stale(files, out)


def write(files: dict[str, str], out: Path = GENERATED) -> list[str]:
    """Write what changed and delete stale dashboards; return the paths touched."""
    touched = drift(files, out)
    for rel in touched:
        path = out / rel
        if rel in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[rel], encoding="utf-8")
        else:
            path.unlink()
        log.info("%s %s", "wrote" if rel in files else "removed", path)
    return touched
