"""Settings of the ingest stage (env prefix ``FINMON_INGEST_``, TOML table ``[ingest]``): Kafka, batching,
validation limits, dedup, ClickHouse and metrics. docs/streaming.md lists every field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from inference.errors import ConfigError, FinmonError
from inference.settings import DEFAULT_HOME, StageSettings


class KafkaUnavailable(FinmonError):
    """The Kafka cluster cannot be reached (wrong bootstrap servers, broker down, authentication refused)."""


class ClickHouseSettings(StageSettings):
    """How a stage reaches ClickHouse (``Store.connect``): shared by the stages that read or write it."""

    clickhouse_dsn: str = f"chdb://{DEFAULT_HOME / 'clickhouse'}"
    clickhouse_database: str = "finmon"
    clickhouse_username: str | None = None  # overrides the DSN's user
    clickhouse_password: SecretStr | None = None  # overrides the DSN's password (or set ..._PASSWORD_FILE)
    clickhouse_ca_file: str | None = None  # PEM CA bundle that signed the server's certificate (https)
    clickhouse_verify: bool = True  # verify the server's TLS certificate (https)


class IngestSettings(ClickHouseSettings):
    section: ClassVar[str] = "ingest"
    model_config = SettingsConfigDict(env_prefix="FINMON_INGEST_", extra="ignore")

    # Kafka
    bootstrap_servers: str = "127.0.0.1:9092"
    news_topic: str = "news.raw"
    posts_topic: str = "posts.raw"
    news_dlq_topic: str = "news.dlq"
    posts_dlq_topic: str = "posts.dlq"
    group_id: str = "finmon-ingest"
    client_id: str = "finmon-ingest"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = Field(500, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    # micro-batching
    batch_size: int = Field(64, ge=1)
    batch_timeout_s: float = Field(1.0, gt=0)  # a partial batch is flushed once its oldest message is this old

    # validation
    max_message_bytes: int = Field(256 * 1024, ge=1)  # raw payload size limit
    max_header_bytes: int = Field(16 * 1024, ge=0)  # Kafka record key + headers size limit
    max_text_chars: int = Field(20_000, ge=1)  # after normalisation
    earliest_published_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_skew_s: float = Field(24 * 3600, ge=0)  # published_at may be at most this far ahead of now

    # dedup by normalised-content hash (ids are deduplicated by the store's idempotent writes too)
    dedup_window_s: float = Field(24 * 3600, ge=0)
    dedup_max_entries: int = Field(500_000, ge=1)

    # backpressure (model server or ClickHouse down): retry the same batch with exponential backoff
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)

    # Prometheus /metrics and /healthz; port 0 disables the server
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9108, ge=0, le=65535)

    @property
    def topics(self) -> tuple[str, str]:
        return (self.news_topic, self.posts_topic)

    def dlq_topic(self, source_topic: str) -> str:
        """The dead-letter topic for messages read from ``source_topic``."""
        mapping = {self.news_topic: self.news_dlq_topic, self.posts_topic: self.posts_dlq_topic}
        return mapping.get(source_topic, f"{source_topic}.dlq")

    def kafka_security(self) -> dict[str, Any]:
        """Connection security keyword arguments shared by aiokafka and kafka-python clients."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            if not self.sasl_username or not self.sasl_password:
                raise ConfigError(f"security_protocol {self.security_protocol} needs FINMON_INGEST_SASL_USERNAME and "
                                  "FINMON_INGEST_SASL_PASSWORD (or FINMON_INGEST_SASL_PASSWORD_FILE)")
            options.update(
                sasl_mechanism=self.sasl_mechanism or "PLAIN",
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value() if self.sasl_password else None,
            )
        if self.security_protocol.endswith("SSL"):
            import ssl

            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
            options["ssl_context"] = context
        return options


def ingest_settings(**overrides: Any) -> IngestSettings:
    return IngestSettings(**overrides)
