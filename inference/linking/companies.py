"""Entity linking: ORG and TICKER spans -> a company id (its primary ticker symbol).

The alias table ships with the package (``inference/linking/resources/company_aliases.json.gz``), built by
``scripts/company_aliases.py`` from the MIT-licensed ticker-sniffer alias list in ../shared/data/companies:
official names and alternate names, normalised (case, punctuation, legal suffixes such as "Inc." or "plc").
Only exact normalised matches link: a wrong link would put one company's bad news on another's alert.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from inference.decoding.prediction import EntitySpan

ALIASES_FILE = Path(__file__).parent / "resources" / "company_aliases.json.gz"
_SUFFIXES = {"inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "plc", "llc", "lp",
             "sa", "ag", "nv", "se", "holdings", "holding", "group", "the", "cos", "companies", "class", "a", "b"}
_PUNCT = re.compile(r"[^\w\s&]")
# Reuters exchange suffixes of US listings: <JNJ.N> (NYSE), <AAPL.O> (Nasdaq), <XYZ.A> (NYSE American).
_US_SUFFIX = re.compile(r"^(?P<sym>[A-Z0-9]+)\.(?:N|O|OQ|A|K|P)$")


def normalise_name(name: str) -> str:
    words = _PUNCT.sub(" ", name.lower().replace("’", "'").replace("'s", "")).split()
    while words and words[-1] in _SUFFIXES:
        words.pop()
    while words and words[0] == "the":
        words.pop(0)
    return " ".join(words)


def build_alias_table(csv_path: Path) -> dict[str, object]:
    """{"aliases": {normalised alias: symbol}, "symbols": [every symbol]}; ambiguous aliases are dropped."""
    seen: dict[str, set[str]] = {}
    symbols: list[str] = []
    with open(csv_path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            symbol = row["Symbol"].strip().upper()
            symbols.append(symbol)
            for alias in [row["Company Name"], *row["Alternate Names"].split(",")]:
                key = normalise_name(alias)
                if len(key) >= 3 and key.upper() != symbol:
                    seen.setdefault(key, set()).add(symbol)
    aliases = {}
    for key, candidates in sorted(seen.items()):
        # Preferred shares, warrants and units (BAC-PL, GS.PRA, ...) share their issuer's name: keep the common
        # stock (letters only, then shortest). Still ambiguous -> no link.
        plain = sorted((c for c in candidates if c.isalpha()), key=len) or sorted(candidates, key=len)
        if len(plain) == 1 or len(plain[0]) < len(plain[1]):
            aliases[key] = plain[0]
    return {"aliases": aliases, "symbols": sorted(set(symbols))}


class CompanyLinker:
    def __init__(self, aliases: dict[str, str], symbols: set[str]) -> None:
        self.aliases = aliases
        self.symbols = symbols

    @classmethod
    def load(cls, path: Path = ALIASES_FILE) -> "CompanyLinker":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            table = json.load(fh)
        return cls(table["aliases"], set(table["symbols"]))

    def company_of(self, span: EntitySpan) -> str | None:
        if span.label == "TICKER":
            symbol = (span.company_id or "").upper()
            m = _US_SUFFIX.match(symbol)
            symbol = m.group("sym") if m else symbol
            return symbol if symbol in self.symbols else None
        if span.label == "ORG":
            return self.aliases.get(normalise_name(span.text))
        return None

    def link(self, spans: list[EntitySpan]) -> list[EntitySpan]:
        return [replace(s, company_id=self.company_of(s)) for s in spans]


@lru_cache(maxsize=1)
def default_linker() -> CompanyLinker | None:
    return CompanyLinker.load() if ALIASES_FILE.is_file() else None
