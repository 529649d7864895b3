"""The record contracts: what parses, what is rejected and with which reason, and JSON round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from inference.errors import FinmonError
from inference.decoding.prediction import EntitySpan, Prediction
from ingest.records import SCHEMA_VERSION, DeadLetter, EnrichedDocument, RawDocument, RecordError

GOOD = {
    "id": "tw-1", "source": "twitter", "kind": "post", "published_at": "2026-11-02T10:15:00+02:00",
    "text": "$JPM down 3% after earnings miss", "url": "https://x.test/1", "meta": {"lang_guess": "en"},
}


def _raw(**changes: object) -> bytes:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_valid_document_is_normalised_to_utc() -> None:
    doc = RawDocument.parse_json(_raw())
    assert doc.schema_version == SCHEMA_VERSION
    assert doc.published_at == datetime(2026, 11, 2, 8, 15, tzinfo=UTC) and doc.published_at.tzinfo == UTC
    assert doc.title is None and doc.meta == {"lang_guess": "en"}
    assert RawDocument.parse_json(doc.to_json().encode()) == doc


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"[1, 2]", "not_an_object"),
        (_raw(schema_version=2), "unsupported_schema_version"),
        (_raw(schema_version="1"), "unsupported_schema_version"),
        (_raw(text=...), "missing_field:text"),
        (_raw(id=...), "missing_field:id"),
        (_raw(published_at="2026-11-02T10:15:00"), "bad_timestamp"),
        (_raw(published_at="yesterday"), "bad_timestamp"),
        (_raw(kind="tweet"), "invalid_field:kind"),
        (_raw(id=""), "invalid_field:id"),
        (_raw(id="x" * 257), "invalid_field:id"),
        (_raw(text="   "), "invalid_field:text"),
        (_raw(meta=[1]), "invalid_field:meta"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        RawDocument.parse_json(payload)
    assert info.value.reason == reason
    assert isinstance(info.value, FinmonError)


def test_enriched_document_round_trips() -> None:
    doc = RawDocument.parse_json(_raw())
    pred = Prediction(
        "Earnings", {"Earnings": 0.9, "Markets": 0.1}, "negative", 0.85,
        {"negative": 0.85, "neutral": 0.1, "positive": 0.05}, [EntitySpan(0, 4, "TICKER", "$JPM", 1.0, "JPM")], "m-1",
    )
    enriched = EnrichedDocument(doc=doc, prediction=pred, content_hash="abc", ingested_at=datetime.now(UTC))
    back = EnrichedDocument.from_json(enriched.to_json())
    assert back == enriched and back.doc_id == "tw-1"
    assert isinstance(back.prediction, Prediction) and back.prediction.entities[0].company_id == "JPM"
    with pytest.raises(ValueError):
        EnrichedDocument(doc=doc, prediction=pred, content_hash="abc", ingested_at=datetime(2026, 1, 1))


@pytest.mark.parametrize("raw", [b'{"id": "a"}', b"\x80\x81 binary"])
def test_dead_letter_keeps_the_payload_byte_exact(raw: bytes) -> None:
    dl = DeadLetter.for_payload(raw, reason="invalid_json", error="x", topic="news.raw", partition=2, offset=41)
    back = DeadLetter.from_json(dl.to_json())
    assert back.payload() == raw and back.offset == 41 and back.failed_at.tzinfo == UTC
    assert back.encoding == ("utf-8" if raw.startswith(b"{") else "base64")
