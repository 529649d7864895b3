"""Normal forms of names and tickers: the keys the graph's index and the linker agree on.

An alias key ignores case, accents, punctuation, possessives, spacing and legal forms, so "Tesla", "TESLA",
"Tesla, Inc.", "Tesla's" and "Tesla Inc" share one key; "U.S." and "US" too ("u.s." -> "us"). A ticker's normal
form is upper case with one class separator: BRK.B, BRK-B, BRK/B and $brk.b are all ``BRK.B``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# legal forms and filler that never tell two companies apart (stripped from the end of a name only)
LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "company", "cos", "companies", "ltd", "limited", "plc",
    "llc", "lp", "llp", "sa", "ag", "nv", "se", "spa", "bv", "asa", "ab", "oyj", "holdings", "holding", "group",
    "&", "and", "the",
})
_JOIN = re.compile(r"[.'’`´]")  # dropped without a space: U.S. -> us, O'Reilly -> oreilly
_SPLIT = re.compile(r"[^\w&]+")
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b", re.IGNORECASE)
_TICKER_SEP = re.compile(r"[-/_]")
# Reuters instrument suffixes of listings: <JNJ.N> (NYSE), <AAPL.O>/<AAPL.OQ> (Nasdaq), .A (NYSE American), .K, .P
REUTERS_US = frozenset({"N", "O", "OQ", "A", "K", "P", "PK"})


@lru_cache(maxsize=1 << 16)  # a stream repeats its names: most calls are cache hits
def words(text: str) -> tuple[str, ...]:
    """Lower-case words of ``text`` without accents, possessives and punctuation (``&`` is kept as a word)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    text = _POSSESSIVE.sub("", text.casefold())
    text = _JOIN.sub("", text).replace("&", " & ")
    return tuple(w for w in _SPLIT.split(text) if w)


@lru_cache(maxsize=1 << 16)
def alias_key(text: str) -> str:
    """The index key of a name: its words without a leading "the" and trailing legal forms, joined without
    spaces (so "JP Morgan" and "JPMorgan" meet). A name made only of legal forms keys to itself."""
    ws = words(text)
    core = list(ws)
    while core and core[0] == "the":
        core.pop(0)
    while core and core[-1] in LEGAL_SUFFIXES:
        core.pop()
    return "".join(core or ws)


def display_key(text: str) -> str:
    """The key an unlinked name is counted under: readable words (``elon musk``), possessives and case folded."""
    ws = list(words(text))
    while len(ws) > 1 and ws[-1] in LEGAL_SUFFIXES - {"the"}:  # "Tiffany & Co." -> "tiffany"
        ws.pop()
    return " ".join(ws)


def ticker(symbol: str, reuters: bool = False) -> str:
    """``BRK-B``/``BRK/B``/``brk.b``/``$BRK.B`` -> ``BRK.B``; with ``reuters``, a Reuters code of a US listing
    ``JNJ.N`` -> ``JNJ`` (without it, ``BRK.A`` is a share class, not NYSE American)."""
    sym = symbol.strip().strip("<>").lstrip("$").upper()
    base, dot, tail = sym.partition(".")
    if reuters and dot and tail in REUTERS_US and "_" not in base:
        sym = base
    return _TICKER_SEP.sub(".", sym.replace("$", ".P"))  # NYSE ACT preferreds BAC$L -> BAC.PL
