"""`finmon dashboards push` with grafana-client against a local server speaking the Grafana HTTP API
(tests/fixtures/grafana.py): creates everything once, then a second push writes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from dashboards.build import dashboard_models
from dashboards.push import GrafanaPushError, connect, push
from dashboards.settings import CLICKHOUSE_PLUGIN, GrafanaSettings
from finmon.cli import main
from tests.fixtures.grafana import TOKEN, FakeGrafana


def _with(settings: GrafanaSettings, **changes: object) -> GrafanaSettings:
    return GrafanaSettings(**(settings.model_dump() | changes))  # validated (secrets become SecretStr)


@pytest.fixture
def settings(fake_grafana: FakeGrafana) -> GrafanaSettings:
    return GrafanaSettings(url=fake_grafana.url, token=TOKEN, clickhouse_password="reader-pw")


def test_first_push_creates_everything_and_the_second_changes_nothing(
    fake_grafana: FakeGrafana, settings: GrafanaSettings
) -> None:
    models = dashboard_models(settings)
    first = push(connect(settings), settings, models)
    assert len(first.created) == 2 + 1 + len(models) and not first.updated
    assert set(fake_grafana.dashboards) == {m["uid"] for m in models}
    assert all(e["folderUid"] == settings.folder_uid for e in fake_grafana.dashboards.values())
    assert fake_grafana.secrets[settings.clickhouse_uid] == {"password": "reader-pw"}
    ch = fake_grafana.datasources[settings.clickhouse_uid]
    assert ch["type"] == CLICKHOUSE_PLUGIN and ch["jsonData"]["host"] == settings.clickhouse_host
    stored = fake_grafana.dashboards["finmon-overview"]["dashboard"]
    assert stored["panels"] == models[0]["panels"] and stored["version"] == 1

    writes_before = len(fake_grafana.writes())
    second = push(connect(settings), settings, dashboard_models(settings))
    assert not second.changed and len(second.unchanged) == len(first.created)
    assert len(fake_grafana.writes()) == writes_before  # only reads
    assert {uid: e["dashboard"]["version"] for uid, e in fake_grafana.dashboards.items()} == \
        {m["uid"]: 1 for m in models}


def test_only_what_differs_is_updated(fake_grafana: FakeGrafana, settings: GrafanaSettings) -> None:
    models = dashboard_models(settings)
    push(connect(settings), settings, models)
    changed = copy.deepcopy(models)
    changed[1]["panels"][0]["title"] = "Documents by sentiment (edited)"
    moved = _with(settings, clickhouse_host="clickhouse.prod")
    report = push(connect(moved), moved, changed)
    assert report.updated == [f"datasource {settings.clickhouse_uid}", f"dashboard {changed[1]['uid']}"]
    assert fake_grafana.dashboards[changed[1]["uid"]]["dashboard"]["version"] == 2
    assert fake_grafana.datasources[settings.clickhouse_uid]["jsonData"]["host"] == "clickhouse.prod"
    assert fake_grafana.secrets[settings.clickhouse_uid] == {"password": "reader-pw"}


def test_a_dashboard_edited_in_the_ui_is_restored(fake_grafana: FakeGrafana, settings: GrafanaSettings) -> None:
    models = dashboard_models(settings)
    push(connect(settings), settings, models)
    fake_grafana.dashboards["finmon-pipeline"]["dashboard"]["title"] = "renamed by hand"
    report = push(connect(settings), settings, models)
    assert report.updated == ["dashboard finmon-pipeline"]
    assert fake_grafana.dashboards["finmon-pipeline"]["dashboard"]["title"] == models[-1]["title"]


def test_rotate_secrets_and_prune(fake_grafana: FakeGrafana, settings: GrafanaSettings) -> None:
    models = dashboard_models(settings)
    push(connect(settings), settings, models)
    rotated = _with(settings, clickhouse_password="new-pw")
    assert push(connect(rotated), rotated, models).unchanged  # a stored secret is not re-sent by default
    assert fake_grafana.secrets[settings.clickhouse_uid]["password"] == "reader-pw"
    report = push(connect(rotated), rotated, models[:-1], rotate_secrets=True, prune=True)
    assert fake_grafana.secrets[settings.clickhouse_uid]["password"] == "new-pw"
    assert report.deleted == [f"dashboard {models[-1]['uid']}"] and models[-1]["uid"] not in fake_grafana.dashboards


def test_a_bad_token_fails_clearly_without_leaking_it(fake_grafana: FakeGrafana, settings: GrafanaSettings) -> None:
    bad = _with(settings, token="glsa_wrong_secret")
    with pytest.raises(GrafanaPushError) as info:
        push(connect(bad), bad, dashboard_models(bad))
    assert info.value.status == 401 and "glsa_wrong_secret" not in str(info.value)
    assert not fake_grafana.writes()


def test_an_unreachable_grafana_is_a_push_error(settings: GrafanaSettings) -> None:
    gone = _with(settings, url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(GrafanaPushError, match="unreachable|Grafana at"):
        push(connect(gone), gone, dashboard_models(gone))


def test_cli_push_reads_the_token_from_a_file(fake_grafana: FakeGrafana, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("FINMON_GRAFANA_TOKEN", raising=False)
    args = ["dashboards", "push", "--url", fake_grafana.url, "--token-file", str(token_file)]
    assert main(args) == 0
    assert len(fake_grafana.dashboards) == 5 and len(fake_grafana.writes()) == 8
    assert main(args) == 0 and len(fake_grafana.writes()) == 8
    assert TOKEN not in caplog.text
    assert main(["dashboards", "push", "--url", fake_grafana.url]) == 2  # no token: a clear config error
