"""Normalisation of raw documents before the model sees them, and the content hash used for dedup.

The normalised text is what the model reads and what is stored, so entity spans point into the stored text.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from html.parser import HTMLParser

from ingest.records import RawDocument

_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^>]*>")
_SPACES = re.compile(r"\s+")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
# C0/C1 controls, zero-width characters and BOMs; whitespace controls (\t, \n, \r) are collapsed separately.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]")
_BLOCK_TAGS = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section", "article"}


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, dropping scripts and styles; block tags become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(text: str) -> str:
    """Text of an HTML fragment; plain text (no tags) only has its character references unescaped."""
    if not _TAG.search(text):
        return html.unescape(text)
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def normalise_text(text: str) -> str:
    """HTML stripped, unicode NFC, invisible characters removed, whitespace collapsed and trimmed."""
    text = unicodedata.normalize("NFC", strip_html(text))
    text = _INVISIBLE.sub("", text)
    return _SPACES.sub(" ", text).strip()


def normalise(doc: RawDocument) -> RawDocument:
    """A copy of ``doc`` with its text and title normalised (an empty title becomes None)."""
    title = normalise_text(doc.title) if doc.title else None
    return doc.model_copy(update={"text": normalise_text(doc.text), "title": title or None})


def content_hash(text: str) -> str:
    """Hash of what a reader would call "the same text": casefolded, URLs removed, whitespace collapsed.

    Reposts of one story that differ only by a link or by case hash equal.
    """
    key = _SPACES.sub(" ", _URL.sub(" ", unicodedata.normalize("NFKC", text).casefold())).strip()
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
