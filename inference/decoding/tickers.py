"""Tickers as entities of their own type, found by a deterministic rule rather than learned.

No training set labels tickers, so a learned TICKER tag would only imitate a regex from weak labels. The rule is
exact where it matters (cashtags ``$TSLA``, Reuters instrument codes ``<JNJ.N>``, exchange-prefixed symbols
``NYSE: IBM`` / ``(NASDAQ:AAPL)``), cheap, and explainable; its spans replace any learned span they overlap.
Dollar amounts (``$100``, ``$1.5bn``) are not tickers: a cashtag starts with a letter.
"""

from __future__ import annotations

import re

from inference.decoding.prediction import EntitySpan

_PATTERNS = (
    # $TSLA, $BRK.B, $spy (social posts often lower-case them); not $100 or $1.5bn, not inside a word.
    re.compile(r"(?<![\w$])\$(?P<sym>[A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])"),
    # Reuters instrument codes: <JNJ.N>, <0005.HK>, <VOWG_p.DE>
    re.compile(r"<(?P<sym>[A-Z0-9_]{1,8}[a-z]?\.[A-Z]{1,3})>"),
    # NYSE: IBM, (NASDAQ:AAPL), Nasdaq: MSFT
    re.compile(r"\b(?:NYSE|NASDAQ|Nasdaq|AMEX|NYSEARCA|LSE|TSX|HKEX)\s?:\s?(?P<sym>[A-Z]{1,5}(?:\.[A-Z])?)\b"),
)


def find_tickers(text: str) -> list[EntitySpan]:
    """Ticker spans in ``text`` (character offsets), sorted, without overlaps."""
    spans: list[EntitySpan] = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(s.start < end and start < s.end for s in spans):
                continue
            spans.append(EntitySpan(start, end, "TICKER", text[start:end], 1.0, m.group("sym").upper()))
    return sorted(spans, key=lambda s: s.start)


def merge(learned: list[EntitySpan], tickers: list[EntitySpan]) -> list[EntitySpan]:
    """Ticker spans win over learned spans that overlap them."""
    kept = [s for s in learned if not any(t.start < s.end and s.start < t.end for t in tickers)]
    return sorted(kept + tickers, key=lambda s: (s.start, s.end))
