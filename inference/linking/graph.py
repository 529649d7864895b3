"""The knowledge graph: companies, places and institutions, their relations, and the in-memory index.

Ids: a company is its primary ticker (``AAPL``, ``BRK.B``); a place ``loc:<ISO code>`` (``loc:US``); an
institution ``org:<code>`` (``org:FED``). Relations are fields of the nodes: company -> sector -> industry,
company -> listings (tickers, exchange), institution -> country (a place id). The graph is written as one gzipped
JSON file (``finmon kg build``) and loaded into ClickHouse by ``finmon kg load``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inference.linking.names import alias_key, ticker

COMPANY, PLACE, INSTITUTION = "company", "place", "institution"
KINDS = (COMPANY, PLACE, INSTITUTION)
FORMAT_VERSION = 1
# the GICS sectors the S&P table assigns: what sector alerts and routing rules (``sectors: [Financials]``) name
SECTORS = ("Communication Services", "Consumer Discretionary", "Consumer Staples", "Energy", "Financials",
           "Health Care", "Industrials", "Information Technology", "Materials", "Real Estate", "Utilities")


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: str  # company | place | institution
    name: str  # the display name ("Apple", "United States", "Federal Reserve")
    aliases: tuple[str, ...] = ()  # surface forms as written (legal name, EDGAR name, short forms, demonyms)
    tickers: tuple[str, ...] = ()  # companies: every listed class in normal form (BRK.A, BRK.B)
    legal_name: str = ""
    exchange: str = ""  # of the primary listing: NYSE, Nasdaq, NYSE American, NYSE Arca, Cboe, OTC
    cik: int | None = None
    sector: str = ""  # GICS sector of S&P 500 members ("Financials")
    industry: str = ""  # GICS sub-industry
    etf: bool = False
    country: str = ""  # institutions: the place id they belong to ("loc:US"); "" for supranational ones
    rank: int = 0  # prior when an alias is shared: 2 S&P 500 member or curated, 1 listed common stock, 0 other


@dataclass
class Graph:
    nodes: dict[str, Node]
    sources: list[str] = field(default_factory=list)  # what it was built from (file names), for `finmon kg show`
    _aliases: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _tickers: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from inference.linking.world import INDEX_NAMES

        blocked = {alias_key(n) for n in INDEX_NAMES}
        aliases: dict[str, set[str]] = {}
        for node in self.nodes.values():
            for alias in (node.name, node.legal_name, *node.aliases):
                key = alias_key(alias) if alias else ""
                if len(key) >= 2:
                    aliases.setdefault(key, set()).add(node.id)
            for sym in node.tickers:
                self._tickers.setdefault(sym, node.id)
        # a curated place or institution owns its aliases: "Fed" or "SEC" never goes to a company of that name
        for key, ids in aliases.items():
            curated = {i for i in ids if self.nodes[i].kind != COMPANY}
            if curated or key not in blocked:
                self._aliases[key] = tuple(sorted(curated or ids))

    def candidates(self, name: str) -> tuple[Node, ...]:
        return tuple(self.nodes[i] for i in self._aliases.get(alias_key(name), ()))

    def by_ticker(self, symbol: str, reuters: bool = False) -> Node | None:
        node_id = self._tickers.get(ticker(symbol, reuters))
        return self.nodes[node_id] if node_id else None

    def get(self, node_id: str) -> Node | None:
        return self.nodes.get(node_id)

    def sectors(self) -> dict[str, set[str]]:
        """sector -> its industries (the sector -> industry relation)."""
        out: dict[str, set[str]] = {}
        for node in self.nodes.values():
            if node.sector:
                out.setdefault(node.sector, set()).add(node.industry)
        return out

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT_VERSION, "sources": self.sources,
               "nodes": [_compact(asdict(n)) for n in sorted(self.nodes.values(), key=lambda n: n.id)]}
        with open(path, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as fh:  # same graph, same bytes
            fh.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
        return path

    @classmethod
    def load(cls, path: Path) -> Graph:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        nodes = {}
        for raw in doc["nodes"]:
            raw["aliases"], raw["tickers"] = tuple(raw.get("aliases", ())), tuple(raw.get("tickers", ()))
            nodes[raw["id"]] = Node(**raw)
        return cls(nodes, list(doc.get("sources", [])))


def _compact(d: dict) -> dict:
    """Drop empty fields: the file stays small and readable."""
    return {k: v for k, v in d.items() if v not in ("", (), [], None, False, 0) or k in ("id", "kind", "name")}
