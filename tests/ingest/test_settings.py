"""Ingest settings: environment overrides, dead-letter topic mapping, secrets masked."""

from __future__ import annotations

import pytest

from ingest.settings import ingest_settings


def test_environment_overrides_and_dead_letter_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINMON_INGEST_NEWS_TOPIC", "acme.news")
    monkeypatch.setenv("FINMON_INGEST_BATCH_SIZE", "128")
    s = ingest_settings()
    assert (s.news_topic, s.batch_size) == ("acme.news", 128)
    assert s.dlq_topic("acme.news") == "news.dlq" and s.dlq_topic("posts.raw") == "posts.dlq"
    assert s.dlq_topic("other") == "other.dlq"


def test_sasl_password_is_secret_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINMON_INGEST_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FINMON_INGEST_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("FINMON_INGEST_SASL_USERNAME", "finmon")
    monkeypatch.setenv("FINMON_INGEST_SASL_PASSWORD", "hunter2")
    s = ingest_settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.masked())
    options = s.kafka_security()
    assert options["sasl_plain_password"] == "hunter2" and options["sasl_mechanism"] == "SCRAM-SHA-512"


def test_invalid_values_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ingest_settings(batch_size=0)
    with pytest.raises(ValidationError):
        ingest_settings(security_protocol="CARRIER_PIGEON")
