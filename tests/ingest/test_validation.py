"""Validation limits: size, timestamps relative to a clock, text after normalisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.records import RecordError
from ingest.settings import IngestSettings
from ingest.validation import Validator

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def payload(**fields: object) -> bytes:
    doc = {"id": "a", "source": "s", "kind": "news", "published_at": NOW.isoformat(), "text": "Some text"}
    doc.update(fields)
    return json.dumps(doc).encode()


@pytest.fixture
def validator() -> Validator:
    settings = IngestSettings(max_message_bytes=300, max_text_chars=50, max_future_skew_s=3600)
    return Validator(settings, clock=lambda: NOW)


def reason(validator: Validator, raw: bytes) -> str:
    with pytest.raises(RecordError) as info:
        validator.parse(raw)
    return info.value.reason


def test_a_valid_document_comes_back_normalised(validator: Validator) -> None:
    doc = validator.parse(payload(text="<p>Acme&nbsp;up</p>", published_at="2026-11-29T13:30:00+02:00"))
    assert doc.text == "Acme up" and doc.published_at == datetime(2026, 11, 29, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    (payload(text="x" * 400), "too_large"),
    (payload(text="word " * 20), "text_too_long"),
    (payload(text="<p> &nbsp; </p>"), "empty_text"),
    (payload(published_at=(NOW + timedelta(hours=2)).isoformat()), "implausible_timestamp"),
    (payload(published_at="1999-12-31T23:59:59+00:00"), "implausible_timestamp"),
    (payload(published_at="2026-11-29T12:00:00"), "bad_timestamp"),
    (b"\xff\xfe{}", "not_utf8"),
])
def test_rejections_carry_a_machine_readable_reason(validator: Validator, raw: bytes, expected: str) -> None:
    assert reason(validator, raw) == expected


def test_a_little_clock_skew_is_accepted(validator: Validator) -> None:
    assert validator.parse(payload(published_at=(NOW + timedelta(minutes=59)).isoformat())).id == "a"
