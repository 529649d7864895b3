"""Validation of raw payloads: size limit, encoding and schema (via ``RawDocument.parse_json``), timestamp
sanity, then normalisation and the checks on the normalised text.

Every rejection is a ``RecordError`` whose ``reason`` is what the dead-letter topic and metrics carry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ingest.normalise import normalise
from ingest.records import RawDocument, RecordError
from ingest.settings import IngestSettings

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class Validator:
    """Turns untrusted bytes into a normalised ``RawDocument`` or raises ``RecordError``."""

    def __init__(self, settings: IngestSettings, clock: Clock = _now) -> None:
        self._max_bytes = settings.max_message_bytes
        self._max_header_bytes = settings.max_header_bytes
        self._max_chars = settings.max_text_chars
        self._earliest = settings.earliest_published_at
        self._skew = timedelta(seconds=settings.max_future_skew_s)
        self._clock = clock

    def parse(self, raw: bytes, header_bytes: int = 0) -> RawDocument:
        """``header_bytes``: the size of the record's key and headers (never read, but bounded all the same)."""
        if header_bytes > self._max_header_bytes:
            raise RecordError("headers_too_large", f"key and headers of {header_bytes} bytes exceed the limit of "
                              f"{self._max_header_bytes}")
        if len(raw) > self._max_bytes:
            raise RecordError("too_large", f"payload of {len(raw)} bytes exceeds the limit of {self._max_bytes}")
        doc = RawDocument.parse_json(raw)
        self._check_time(doc.published_at)
        doc = normalise(doc)
        if not doc.text:
            raise RecordError("empty_text", "the text is empty after HTML stripping and whitespace normalisation")
        if len(doc.text) > self._max_chars:
            raise RecordError("text_too_long", f"{len(doc.text)} characters exceed the limit of {self._max_chars}")
        return doc

    def _check_time(self, published_at: datetime) -> None:
        if published_at < self._earliest:
            raise RecordError("implausible_timestamp", f"published_at {published_at.isoformat()} is before "
                              f"{self._earliest.isoformat()}")
        latest = self._clock() + self._skew
        if published_at > latest:
            raise RecordError("implausible_timestamp", f"published_at {published_at.isoformat()} is in the future "
                              f"(later than {latest.isoformat()})")
