"""The records that travel between stages: raw documents, enriched documents and dead letters.

Every record is JSON with a ``schema_version``. ``RawDocument.parse_json`` is the one place where untrusted bytes
become a typed document; it raises ``RecordError`` whose short ``reason`` (e.g. ``missing_field:text``) is what
the dead-letter path stores and counts.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from inference.errors import FinmonError
from inference.decoding.prediction import Prediction

SCHEMA_VERSION = 1
MAX_ID_LENGTH = 256
# Every field has a size limit (the text's is a setting, ``max_text_chars``, checked after normalisation; the whole
# payload is bounded by ``max_message_bytes``): a value over its limit is ``invalid_field:<name>``.
MAX_SOURCE_LENGTH = 128
MAX_TITLE_LENGTH = 2_000
MAX_URL_LENGTH = 4_096
MAX_AUTHOR_LENGTH = 512
MAX_LANG_LENGTH = 35  # the longest practical BCP 47 tag
MAX_META_BYTES = 16 * 1024  # meta as compact JSON

_TIME_FIELDS = {"published_at", "ingested_at", "failed_at"}


class RecordError(FinmonError):
    """A payload is not a valid record. ``reason`` is short and machine-readable (a metric label, a DLQ field)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def _utc(value: datetime) -> datetime:
    """Timestamps must carry a zone (a naive one is ambiguous); they are stored and compared in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


class RawDocument(BaseModel):
    """A news article or social post as a source produced it (the contract of the ``*.raw`` Kafka topics)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    source: str = Field(min_length=1, max_length=MAX_SOURCE_LENGTH)
    kind: Literal["news", "post"]
    published_at: datetime
    text: str = Field(min_length=1)
    title: str | None = Field(None, max_length=MAX_TITLE_LENGTH)
    url: str | None = Field(None, max_length=MAX_URL_LENGTH)
    author: str | None = Field(None, max_length=MAX_AUTHOR_LENGTH)
    lang: str | None = Field(None, max_length=MAX_LANG_LENGTH)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "source", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("id", "source", "kind", "text", "title", "url", "author", "lang")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        """JSON may carry lone surrogates (``"\\ud800"``): no UTF-8 store, hash or model can take them."""
        if value is not None:
            value.encode("utf-8")  # UnicodeEncodeError is a ValueError: invalid_field:<name>
        return value

    @field_validator("meta")
    @classmethod
    def _meta_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"))
        if size > MAX_META_BYTES:
            raise ValueError(f"meta is {size} bytes as JSON, over the limit of {MAX_META_BYTES}")
        return value

    @field_validator("published_at")
    @classmethod
    def _published_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {value}")
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def parse_json(cls, raw: bytes | str) -> RawDocument:
        """Parse one message; raise ``RecordError`` with a reason for anything that is not a valid document."""
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordError("not_utf8", str(exc)) from None
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise RecordError("invalid_json", str(exc)) from None
        if not isinstance(data, dict):
            raise RecordError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise RecordError("unsupported_schema_version", f"schema_version {version!r} (supported: {SCHEMA_VERSION})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecordError(_reason(exc), _first_message(exc)) from None


def _reason(exc: ValidationError) -> str:
    """The reason of the first error: missing_field:X, bad_timestamp, or invalid_field:X."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "document"
    if err["type"] == "missing":
        return f"missing_field:{field}"
    if err["loc"] and err["loc"][0] in _TIME_FIELDS:
        return "bad_timestamp"
    return f"invalid_field:{field}"


def _first_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


class EnrichedDocument(BaseModel):
    """A raw document with the model's prediction: what the pipeline hands to the store."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    doc: RawDocument
    prediction: Prediction
    content_hash: str = Field(min_length=1)
    ingested_at: datetime
    story_id: str = ""  # the story it belongs to (ingest.stories); empty: its own story

    @field_validator("ingested_at")
    @classmethod
    def _ingested_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @property
    def doc_id(self) -> str:
        return self.doc.id

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: bytes | str) -> EnrichedDocument:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise RecordError(_reason(exc), _first_message(exc)) from None


class DeadLetter(BaseModel):
    """A message that could not be processed, with why and where it came from (the ``*.dlq`` topics)."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    original: str  # the payload as text, or base64 when it was not UTF-8 (see ``encoding``)
    encoding: Literal["utf-8", "base64"] = "utf-8"
    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    failed_at: datetime

    @field_validator("failed_at")
    @classmethod
    def _failed_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @classmethod
    def for_payload(
        cls, raw: bytes, *, reason: str, error: str, topic: str, partition: int, offset: int,
        failed_at: datetime | None = None,
    ) -> DeadLetter:
        """Keep the payload byte-exact: as text when it decodes as UTF-8, else base64."""
        try:
            original, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            original, encoding = base64.b64encode(raw).decode("ascii"), "base64"
        return cls(
            original=original, encoding=encoding, reason=reason, error=error, topic=topic, partition=partition,
            offset=offset, failed_at=failed_at or datetime.now(UTC),
        )

    def payload(self) -> bytes:
        """The original bytes."""
        return base64.b64decode(self.original) if self.encoding == "base64" else self.original.encode("utf-8")

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        return cls.model_validate_json(raw)
