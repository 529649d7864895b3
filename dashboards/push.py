"""Creates or updates the datasources, the folder and the dashboards on a Grafana server through its HTTP API.

Idempotent: each object is read first and written only when it differs from what the code builds, so a second
push writes nothing (and the dashboards' versions do not move). Secrets cannot be read back from Grafana: a
datasource whose stored secret is set is not rewritten for it unless ``rotate_secrets``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from inference.errors import FinmonError

from dashboards.provisioning import clickhouse_datasource, prometheus_datasource
from dashboards.settings import GrafanaSettings

log = logging.getLogger(__name__)

_VOLATILE = ("id", "version")  # set by Grafana on every save
_DATASOURCE_KEYS = ("name", "type", "access", "url", "isDefault")


class GrafanaPushError(FinmonError):
    """Grafana refused a request (bad token, missing plugin, invalid model) or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PushReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def connect(settings: GrafanaSettings) -> GrafanaApi:
    """A grafana-client API for ``settings.url`` with the service-account token as Bearer credential."""
    url = urlparse(settings.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise GrafanaPushError(f"invalid Grafana URL {settings.url!r}")
    token = settings.token.get_secret_value() if settings.token else None
    return GrafanaApi(auth=token, host=url.hostname, port=url.port, url_path_prefix=url.path.strip("/") + "/"
                      if url.path.strip("/") else "", protocol=url.scheme, verify=settings.verify_tls,
                      timeout=settings.timeout_s, organization_id=settings.org_id)


def _get(call: Any, *args: Any) -> Any | None:
    """The object, or None when Grafana answers 404."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


class _Pusher:
    def __init__(self, api: GrafanaApi, report: PushReport) -> None:
        self.api, self.report = api, report

    def datasource(self, body: dict[str, Any], rotate_secrets: bool) -> None:
        name = f"datasource {body['uid']}"
        existing = _get(self.api.datasource.get_datasource_by_uid, body["uid"])
        if existing is None:
            if "secureJsonData" not in body and body["type"] != "prometheus":
                log.warning("%s created without a password: set FINMON_GRAFANA_CLICKHOUSE_PASSWORD", name)
            self.api.datasource.create_datasource(body)
            self.report.created.append(name)
            return
        same = all(existing.get(k) == body.get(k) for k in _DATASOURCE_KEYS if k in body) and all(
            existing.get("jsonData", {}).get(k) == v for k, v in body.get("jsonData", {}).items())
        secrets = set(body.get("secureJsonData", {}))
        stored = {k for k, v in (existing.get("secureJsonFields") or {}).items() if v}
        if same and secrets <= stored and not (rotate_secrets and secrets):
            self.report.unchanged.append(name)
            return
        self.api.datasource.update_datasource_by_uid(body["uid"], body)
        self.report.updated.append(name)

    def folder(self, uid: str, title: str) -> None:
        name = f"folder {uid}"
        existing = _get(self.api.folder.get_folder, uid)
        if existing is None:
            self.api.folder.create_folder(title, uid=uid)
            self.report.created.append(name)
        elif existing.get("title") != title:
            self.api.folder.update_folder(uid, title=title, overwrite=True)
            self.report.updated.append(name)
        else:
            self.report.unchanged.append(name)

    def dashboard(self, model: dict[str, Any], folder_uid: str) -> None:
        name = f"dashboard {model['uid']}"
        existing = _get(self.api.dashboard.get_dashboard, model["uid"])
        if existing is not None:
            stored = {k: v for k, v in existing["dashboard"].items() if k not in _VOLATILE}
            wanted = {k: v for k, v in model.items() if k not in _VOLATILE}
            if stored == wanted and existing.get("meta", {}).get("folderUid") == folder_uid:
                self.report.unchanged.append(name)
                return
        body = {"dashboard": {**model, "id": None}, "folderUid": folder_uid, "overwrite": True,
                "message": "finmon dashboards push"}
        self.api.dashboard.update_dashboard(body)
        (self.report.updated if existing is not None else self.report.created).append(name)

    def prune(self, folder_uid: str, keep: set[str]) -> None:
        """Delete dashboards in our folder that the code no longer builds."""
        found = self.api.search.search_dashboards(type_="dash-db", folder_uids=[folder_uid]) or []
        for hit in found:
            if hit.get("uid") not in keep and hit.get("folderUid") == folder_uid:
                self.api.dashboard.delete_dashboard(hit["uid"])
                self.report.deleted.append(f"dashboard {hit['uid']}")


def push(api: GrafanaApi, settings: GrafanaSettings, models: list[dict[str, Any]], *,
         rotate_secrets: bool = False, prune: bool = False) -> PushReport:
    """Make Grafana hold exactly our datasources, folder and dashboards; report what had to change."""
    report = PushReport()
    pusher = _Pusher(api, report)
    password = settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None
    try:
        pusher.datasource(clickhouse_datasource(settings, password), rotate_secrets)
        pusher.datasource(prometheus_datasource(settings), rotate_secrets)
        pusher.folder(settings.folder_uid, settings.folder_title)
        for model in models:
            pusher.dashboard(model, settings.folder_uid)
        if prune:
            pusher.prune(settings.folder_uid, {m["uid"] for m in models})
    except GrafanaException as exc:  # the token is in a header, never in these messages
        raise GrafanaPushError(f"Grafana at {settings.url}: {exc}", status=exc.status_code or None) from exc
    except OSError as exc:
        raise GrafanaPushError(f"Grafana at {settings.url} is unreachable: {exc}") from exc
    log.info("grafana push: %d created, %d updated, %d unchanged, %d deleted", len(report.created),
             len(report.updated), len(report.unchanged), len(report.deleted))
    return report
