"""Normalisation (what the model reads and the store keeps) and the content hash used for dedup."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from ingest.normalise import content_hash, normalise, normalise_text, strip_html
from ingest.records import RawDocument


def test_html_is_stripped_scripts_dropped_and_entities_unescaped() -> None:
    html = "<div><p>Fed&nbsp;holds rates</p><script>var x = '<p>';</script><style>p{}</style><br/>S&amp;P 500 up</div>"
    assert normalise_text(html) == "Fed holds rates S&P 500 up"


def test_plain_text_with_angle_brackets_is_not_mangled() -> None:
    assert normalise_text("EPS < 1.0 and P/E > 30 &amp; rising") == "EPS < 1.0 and P/E > 30 & rising"
    assert strip_html("a < b") == "a < b"


def test_unicode_is_nfc_and_invisible_characters_and_whitespace_are_cleaned() -> None:
    decomposed = "Nestle\u0301 \u200bshares\t\n\n fell\x00  "
    out = normalise_text(decomposed)
    assert out == "Nestlé shares fell" and unicodedata.is_normalized("NFC", out)


def test_normalise_keeps_every_other_field() -> None:
    doc = RawDocument(id="x", source="s", kind="post", published_at=datetime(2026, 1, 1, tzinfo=UTC),
                      text=" <b>Hi</b>  there ", title="  <i></i> ", meta={"a": 1})
    out = normalise(doc)
    assert (out.text, out.title) == ("Hi there", None)
    assert out.model_dump(exclude={"text", "title"}) == doc.model_dump(exclude={"text", "title"})


def test_content_hash_ignores_case_urls_and_spacing_but_not_words() -> None:
    a = content_hash("Acme beats estimates https://t.co/abc")
    assert a == content_hash("ACME  beats estimates http://t.co/other")
    assert a == content_hash("acme beats estimates")
    assert a != content_hash("Acme misses estimates")
