"""Settings of the alerts stage (env prefix ``FINMON_ALERTS_``; TOML table ``[alerts]``).

Channel secrets (webhook URLs with tokens, signing secrets, SMTP passwords) are NOT settings fields: the rules
file names the environment variable that holds each one (see ``alerts.rules``), so one process can serve many
channels and no secret is ever written to a file in git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic_settings import SettingsConfigDict

from alerts.detection import DetectorConfig
from ingest.settings import ClickHouseSettings


class AlertsSettings(ClickHouseSettings):
    section: ClassVar[str] = "alerts"
    model_config = SettingsConfigDict(env_prefix="FINMON_ALERTS_", extra="ignore")

    rules: Path | None = None  # routing YAML (see alerts/rules.example.yaml); None: console only
    step_minutes: int = 15
    spans: tuple[int, ...] = (1, 2, 4)
    alpha: float = 1e-5
    min_negative: int = 8  # negative stories in a window needed to open an alert (the volume floor)
    history_days: int = 14
    entities: bool = True  # detect per entity (company, place, institution) too, not only per topic
    sectors: bool = True  # detect per sector of the knowledge graph too (distinct documents naming its companies)
    poll_seconds: float = 30.0
    max_attempts: int = 8  # send attempts per delivery before it is marked failed
    backoff_seconds: float = 5.0  # first retry delay; doubles up to backoff_max_seconds
    backoff_max_seconds: float = 600.0
    send_timeout_seconds: float = 10.0
    grafana_url: str = ""  # base URL of the finmon dashboard, linked from every message
    hold_before_send_seconds: float = 0.0  # fault-injection hook for tests: pause after the outbox is written

    def detector(self) -> DetectorConfig:
        return DetectorConfig(
            step_minutes=self.step_minutes, spans=tuple(self.spans), alpha=self.alpha,
            min_negative=self.min_negative,
            history_days=self.history_days,
        )


def alerts_settings(**overrides: Any) -> AlertsSettings:
    return AlertsSettings(**overrides)
