"""Settings of the dashboards stage (env prefix ``FINMON_GRAFANA_``, TOML table ``[grafana]``).

Two groups: where Grafana is (``url``, ``token``: for ``finmon dashboards push``) and how Grafana reaches the
data (the ClickHouse and Prometheus datasources it creates). Secrets are ``SecretStr``; the provisioning files
never contain them, only the names of the environment variables Grafana expands at start-up.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inference.settings import StageSettings

CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
# Pinned: the plugin renamed `server` to `host` in v4 and has broken configs on upgrades (DESIGN.md, known traps).
CLICKHOUSE_PLUGIN_VERSION = "4.11.2"
PROMETHEUS_TYPE = "prometheus"


class GrafanaSettings(StageSettings):
    section: ClassVar[str] = "grafana"
    model_config = SettingsConfigDict(env_prefix="FINMON_GRAFANA_", extra="ignore")

    # the Grafana server `finmon dashboards push` talks to
    url: str = "http://127.0.0.1:3000"
    token: SecretStr | None = None  # a service-account token (Bearer); never logged
    org_id: int | None = None  # X-Grafana-Org-Id; None: the token's organisation
    timeout_s: float = Field(10.0, gt=0)
    verify_tls: bool = True

    # where the dashboards go
    folder_uid: str = "finmon"
    folder_title: str = "finmon"

    # the ClickHouse datasource (grafana-clickhouse-datasource >= 4)
    clickhouse_uid: str = "finmon-clickhouse"
    clickhouse_name: str = "finmon ClickHouse"
    clickhouse_host: str = "clickhouse"
    clickhouse_port: int = 9000
    clickhouse_protocol: Literal["native", "http"] = "native"
    clickhouse_secure: bool = False
    clickhouse_database: str = "finmon"
    clickhouse_username: str = "finmon_reader"  # a readonly ClickHouse user: Grafana runs whatever SQL it is given
    clickhouse_password: SecretStr | None = None  # used by `push`; provisioning reads it from the env var below
    clickhouse_password_env: str = "FINMON_CLICKHOUSE_READER_PASSWORD"

    # the Prometheus datasource (pipeline health)
    prometheus_uid: str = "finmon-prometheus"
    prometheus_name: str = "finmon Prometheus"
    prometheus_url: str = "http://prometheus:9090"

    def clickhouse_ref(self) -> dict[str, str]:
        """How a panel names the ClickHouse datasource (by uid: stable across provisioning and API push)."""
        return {"type": CLICKHOUSE_PLUGIN, "uid": self.clickhouse_uid}

    def prometheus_ref(self) -> dict[str, str]:
        return {"type": PROMETHEUS_TYPE, "uid": self.prometheus_uid}


def grafana_settings(**overrides: Any) -> GrafanaSettings:
    return GrafanaSettings(**overrides)
