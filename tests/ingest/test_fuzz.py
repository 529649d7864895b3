"""Property-based fuzzing (hypothesis) of the decoder (``RawDocument.parse_json``), the validator and the
normaliser, alone and through the pipeline: no exception escapes, every bad value is dead-lettered with its reason,
good documents are unaffected; every field and the record's key + headers have a size limit.

Bounded: ``max_examples`` per property (FINMON_FUZZ_EXAMPLES scales them), no deadline (the machine is shared);
run with ``--hypothesis-show-statistics`` to see how many cases ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ingest import records
from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.normalise import _INVISIBLE, content_hash, normalise_text
from ingest.pipeline import Message, Outcome, Pipeline
from ingest.records import RawDocument, RecordError
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store
from ingest.validation import Validator
from tests.ingest.doubles import RulePredictor

SCALE = float(os.environ.get("FINMON_FUZZ_EXAMPLES", "1"))
NOW = datetime.now(UTC)
LIMITS = IngestSettings(max_message_bytes=64 * 1024, max_text_chars=2000, max_header_bytes=512)
REASON = re.compile(r"^[a-z0-9_]+(:[A-Za-z0-9_.]+)?$")


def bounded(examples: int):  # noqa: ANN201
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
words = st.from_regex(r"[A-Za-z0-9$]{1,12}", fullmatch=True)
good_text = st.tuples(st.lists(words, min_size=1, max_size=25).map(" ".join),
                      st.sampled_from(["{}", "<p>{}</p>", "  {}\n", "{} &amp; co", "<b>{}</b><script>x()</script>",
                                       "{}\u200b", "Caf\u0065\u0301 {}"])).map(lambda t: t[1].format(t[0]))


@st.composite
def good_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": draw(st.from_regex(r"[a-z0-9:_-]{1,40}", fullmatch=True)),
        "source": draw(st.sampled_from(["wire", "twitter", "reddit", "rss:example.test"])),
        "kind": draw(st.sampled_from(["news", "post"])),
        "published_at": (NOW - draw(st.timedeltas(timedelta(0), timedelta(days=3000)))).isoformat(),
        "text": draw(good_text),
    }
    for name, value in (("title", st.text(max_size=80)), ("url", st.just("https://example.test/a?b=c")),
                        ("author", st.text(max_size=20)), ("lang", st.sampled_from(["en", "zh-Hans", "pt-BR"])),
                        ("meta", st.dictionaries(st.text(max_size=8), json_values, max_size=3))):
        if draw(st.booleans()):
            doc[name] = draw(st.none() | value if name == "title" else value)  # a title may be null
    if draw(st.booleans()):
        doc["schema_version"] = 1
    return doc


def _too_long(field: str, limit: int):  # noqa: ANN202
    return field, lambda doc, n: {**doc, field: "a" * (limit + 1 + n)}, f"invalid_field:{field}"


# (name, change to a good document or its bytes, the reason expected) - each names one way input goes bad
MUTATIONS: list[tuple[str, Any, str]] = [
    *[(f"missing {f}", lambda doc, n, f=f: {k: v for k, v in doc.items() if k != f}, f"missing_field:{f}")
      for f in ("id", "source", "kind", "published_at", "text")],
    *[(f"{f} not a string", lambda doc, n, f=f: {**doc, f: [n]}, f"invalid_field:{f}")
      for f in ("id", "source", "text", "title", "url", "author", "lang")],
    ("kind unknown", lambda doc, n: {**doc, "kind": f"tweet{n}"}, "invalid_field:kind"),
    ("blank id", lambda doc, n: {**doc, "id": " " * (n % 5 + 1)}, "invalid_field:id"),
    ("blank text", lambda doc, n: {**doc, "text": "\t" * (n % 5 + 1)}, "invalid_field:text"),
    ("html only", lambda doc, n: {**doc, "text": "<div> <br/>" * (n % 3 + 1) + "</div>"}, "empty_text"),
    ("invisible only", lambda doc, n: {**doc, "text": "\u200b\ufeff\x00" * (n % 3 + 1)}, "empty_text"),
    ("text too long", lambda doc, n: {**doc, "text": "word " * (LIMITS.max_text_chars // 5 + 1 + n)},
     "text_too_long"),
    _too_long("id", records.MAX_ID_LENGTH), _too_long("source", records.MAX_SOURCE_LENGTH),
    _too_long("author", records.MAX_AUTHOR_LENGTH), _too_long("lang", records.MAX_LANG_LENGTH),
    _too_long("title", records.MAX_TITLE_LENGTH),
    ("meta too large", lambda doc, n: {**doc, "meta": {"k": "v" * (records.MAX_META_BYTES + n)}},
     "invalid_field:meta"),
    ("lone surrogate", lambda doc, n: {**doc, "text": doc["text"] + "\ud800"}, "invalid_field:text"),
    ("surrogate in meta", lambda doc, n: {**doc, "meta": {"k": "\udfff"}}, "invalid_field:meta"),
    ("naive timestamp", lambda doc, n: {**doc, "published_at": "2024-05-01T10:00:00"}, "bad_timestamp"),
    ("not a timestamp", lambda doc, n: {**doc, "published_at": f"yesterday {n}"}, "bad_timestamp"),
    ("number timestamp", lambda doc, n: {**doc, "published_at": [n]}, "bad_timestamp"),
    ("before 2000", lambda doc, n: {**doc, "published_at": f"19{n % 99:02d}-01-01T00:00:00+00:00"},
     "implausible_timestamp"),
    ("far future", lambda doc, n: {**doc, "published_at": (NOW + timedelta(days=2 + n)).isoformat()},
     "implausible_timestamp"),
    ("schema version", lambda doc, n: {**doc, "schema_version": n + 2}, "unsupported_schema_version"),
    ("schema version true", lambda doc, n: {**doc, "schema_version": True}, "unsupported_schema_version"),
    ("not an object", lambda doc, n: [doc] * (n % 3), "not_an_object"),
    ("truncated", lambda doc, n: json.dumps(doc).encode()[: -(n % 5 + 1)], "invalid_json"),
    ("not utf-8", lambda doc, n: json.dumps(doc).encode().replace(b'"text": "', b'"text": "\xff', 1), "not_utf8"),
    ("deep nesting", lambda doc, n: b"[" * (100_000 + n) + b"]" * (100_000 + n), "too_large"),
    ("nesting within size", lambda doc, n: b'{"meta":' + b"[" * (3000 + n) + b"]" * (3000 + n) + b"}",
     "invalid_json"),
    ("too large", lambda doc, n: {**doc, "text": "x" * (LIMITS.max_message_bytes + n)}, "too_large"),
]


def _payload(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _check_rejection(validator: Validator, raw: bytes, header_bytes: int = 0) -> str | None:
    """None when the payload is a document; else its reason, which must be well-formed."""
    try:
        validator.parse(raw, header_bytes)
    except RecordError as exc:
        assert REASON.match(exc.reason), exc.reason
        return exc.reason
    return None


@bounded(250)
@given(st.binary(max_size=600) | json_values.map(lambda v: json.dumps(v).encode()))
def test_no_input_escapes_the_validator_except_as_a_record_error(raw: bytes) -> None:
    _check_rejection(Validator(LIMITS), raw)


@bounded(200)
@given(good_docs(), st.binary(max_size=40), st.integers(0, 3))
def test_arbitrary_bytes_in_a_field_never_escape(doc: dict[str, Any], junk: bytes, where: int) -> None:
    text = junk.decode("utf-8", errors="surrogateescape")  # lone surrogates for the bytes that are not UTF-8
    field = ("text", "title", "source", "author")[where]
    _check_rejection(Validator(LIMITS), json.dumps({**doc, field: text}).encode())


@bounded(200)
@given(good_docs())
def test_good_documents_are_accepted_unchanged_but_for_the_normalised_text(doc: dict[str, Any]) -> None:
    parsed = Validator(LIMITS).parse(json.dumps(doc).encode())
    assert (parsed.id, parsed.source, parsed.kind) == (doc["id"], doc["source"], doc["kind"])
    assert parsed.published_at == datetime.fromisoformat(doc["published_at"])
    assert parsed.text == normalise_text(doc["text"]) and parsed.text
    assert parsed.meta == doc.get("meta", {})


@bounded(200)
@given(good_docs(), st.sampled_from(MUTATIONS), st.integers(0, 50))
def test_every_bad_value_is_rejected_with_its_reason(doc: dict[str, Any], mutation: tuple, n: int) -> None:
    name, change, reason = mutation
    assert _check_rejection(Validator(LIMITS), _payload(change(doc, n))) == reason, name


@bounded(100)
@given(good_docs(), st.integers(LIMITS.max_header_bytes + 1, 10 * LIMITS.max_header_bytes))
def test_oversized_keys_and_headers_are_rejected(doc: dict[str, Any], header_bytes: int) -> None:
    validator = Validator(LIMITS)
    assert _check_rejection(validator, json.dumps(doc).encode(), header_bytes) == "headers_too_large"
    assert _check_rejection(validator, json.dumps(doc).encode(), LIMITS.max_header_bytes) is None


@bounded(250)
@given(st.text(max_size=400) | st.lists(st.sampled_from(["<p>", "</p>", "<script>", "</script>", "&amp;", "&#0;",
                                                        "&#x110000;", "<!--", "-->", "\u200b", "\x00", " ", "\n",
                                                        "<a href='x>'>", "e\u0301", "word"]), max_size=40).map("".join))
def test_normalised_text_is_clean(text: str) -> None:
    out = normalise_text(text)
    assert out == out.strip() and "  " not in out and not re.search(r"[\t\n\r\f\v]", out)
    assert not _INVISIBLE.search(out)
    content_hash(out)  # the hash takes whatever the normaliser returns


class _Recorded:
    """Keeps what the pipeline stored (the batch is written to a real ClickHouse once, after the examples)."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}

    def write_batch(self, docs: list) -> None:
        self.docs.update({d.doc_id: d for d in docs})


STORED = _Recorded()


@bounded(60)
@given(st.lists(st.one_of(good_docs().map(lambda d: ("good", d)),
                          st.tuples(st.just("bad"), st.tuples(good_docs(), st.sampled_from(MUTATIONS),
                                                              st.integers(0, 9)))),
                min_size=1, max_size=12))
def test_the_pipeline_dead_letters_every_bad_message_and_stores_every_good_one(items: list) -> None:
    letters, store = ListDeadLetters(), _Recorded()
    pipeline = Pipeline(RulePredictor(), store, letters, IngestSettings(**{**LIMITS.__dict__, "batch_size": 5}),
                        IngestMetrics(CollectorRegistry()))
    expected_good, expected_bad = set(), {}
    messages = []
    for offset, (kind, value) in enumerate(items):
        if kind == "good":
            doc = {**value, "id": f"{value['id']}-{offset}", "text": f"{value['text']} item{offset}"}
            expected_good.add(doc["id"])
            messages.append(Message(json.dumps(doc).encode(), "news.raw", 0, offset))
        else:
            doc, (name, change, reason), n = value
            expected_bad[offset] = reason
            messages.append(Message(_payload(change(doc, n)), "news.raw", 0, offset))

    async def run() -> list:
        results = []
        for message in messages:
            if (result := await pipeline.feed(message)) is not None:
                results.append(result)
            if pipeline.should_flush():
                results.extend(await pipeline.flush())
        results.extend(await pipeline.flush())
        return results

    results = asyncio.run(run())
    assert len(results) == len(messages)
    assert pipeline.positions == {("news.raw", 0): len(messages)}
    assert {r.doc_id for r in results if r.outcome == Outcome.STORED} == expected_good == set(store.docs)
    dead = {letter.offset: letter.reason for _, letter in letters.letters}
    assert dead == expected_bad
    STORED.docs.update(store.docs)


def test_what_the_fuzzed_pipeline_stored_is_accepted_by_clickhouse(store: Store) -> None:
    """The good documents of the property above (unicode, HTML, odd meta) in one batch into a real ClickHouse."""
    if not STORED.docs:
        test_the_pipeline_dead_letters_every_bad_message_and_stores_every_good_one()
    store.write_batch(list(STORED.docs.values()))
    rows = store.query(f"SELECT doc_id, text FROM {DOCUMENTS} FINAL")
    assert {r["doc_id"]: r["text"] for r in rows} == {k: d.doc.text for k, d in STORED.docs.items()}

