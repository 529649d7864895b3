"""Build the graph from the reference tables in ``../shared/data/companies`` (see its SOURCE.md) plus the curated
places and institutions. Run by ``finmon kg build``; nothing here is committed but the code, because the listing
and S&P tables carry licence caveats (Nasdaq's notice, Wikipedia/GICS).

A company is one node per CIK (SEC map and S&P table), else per listing symbol; listings without a CIK join by
ticker. Its id is the S&P symbol, else the SEC's first plain ticker, else the listing symbol.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from inference.errors import FinmonError
from inference.linking.graph import COMPANY, Graph, Node
from inference.linking.names import alias_key, ticker
from inference.linking.world import curated_nodes

log = logging.getLogger(__name__)

SP500, NASDAQ, NYSE = "sp500_constituents.csv", "nasdaq_listed_symbols.csv", "nyse_other_listed.csv"
SEC, SNIFFER = "sec_company_tickers_exchange.json", "company_aliases_ticker_sniffer.csv"
_NYSE_EXCHANGES = {"N": "NYSE", "A": "NYSE American", "P": "NYSE Arca", "Z": "Cboe", "V": "IEX"}
# security descriptions that follow the company name in the listing files
_SECURITY = re.compile(
    r"\s*(?:-\s.*|,?\s+(?:Class [A-Z]\b.*|Common Stock.*|Common Shares.*|Ordinary Shares.*|American Depositary.*|"
    r"Depositary Shares.*|Units?\b.*|Warrants?\b.*|Rights?\b.*|Series [A-Z]\b.*|\d+(?:\.\d+)?% .*|Shares of Beneficial.*|"
    r"Capital Stock.*|Subordinate Voting.*))$", re.IGNORECASE)
_LEGAL_TAIL = re.compile(r"(?:,?\s+(?:&\s+Co|Inc|Incorporated|Corp|Corporation|Co|Company|Ltd|Limited|plc|PLC|LLC|"
                         r"L\.P|N\.V|S\.A|AG|SE)\.?)+$")
_FUND = re.compile(r"\b(?:ETF|ETN|FUND|TRUST|PORTFOLIO|SHARES)\b", re.IGNORECASE)
_CLASS = re.compile(r"\s*\((?:Class [A-Z]|Series [A-Z]|The)\)$")


# short forms people write that no table lists (reviewed by hand); the primary ticker -> extra aliases
COMPANY_ALIASES: dict[str, tuple[str, ...]] = {
    "JPM": ("JPMorgan", "JP Morgan", "J.P. Morgan", "JPMorgan Chase", "Chase"),
    "GS": ("Goldman",), "MS": ("Morgan Stanley",), "C": ("Citi", "Citibank"), "WFC": ("Wells",),
    "BAC": ("BofA", "BoA"), "BRK.B": ("Berkshire",), "XOM": ("Exxon",), "CVX": ("Chevron",),
    "META": ("Facebook", "Instagram", "WhatsApp"), "GOOGL": ("Google", "YouTube"), "AMZN": ("Amazon", "AWS"),
    "MSFT": ("Microsoft",), "NVDA": ("Nvidia",), "AMD": ("AMD",), "INTC": ("Intel",), "IBM": ("IBM",),
    "KO": ("Coca-Cola", "Coke"), "PEP": ("Pepsi", "PepsiCo"), "MCD": ("McDonald's",), "WMT": ("Walmart", "Wal-Mart"),
    "DIS": ("Disney",), "BA": ("Boeing",), "GE": ("GE", "General Electric"), "GM": ("GM", "General Motors"),
    "F": ("Ford",), "T": ("AT&T",), "VZ": ("Verizon",), "JNJ": ("J&J", "Johnson & Johnson"), "PFE": ("Pfizer",),
    "UNH": ("UnitedHealth",), "HD": ("Home Depot",), "NFLX": ("Netflix",), "AAPL": ("Apple",), "TSLA": ("Tesla",),
}


# a trailing word that describes what a company does: people drop it ("Teladoc" for Teladoc Health, "Truist" for
# Truist Financial), so the name without it is an alias too — unless what is left is a common word ("United")
_DESCRIPTORS = frozenset({
    "financial", "automotive", "holdings", "technologies", "technology", "therapeutics", "pharmaceuticals",
    "communications", "entertainment", "brands", "industries", "systems", "software", "networks", "platforms",
    "health", "healthcare", "bancorp", "bancshares", "worldwide", "enterprises", "global", "biosciences",
    "semiconductor", "interactive", "labs", "robotics", "motors", "airways", "video", "innovation",
})
_COMMON = frozenset({
    "united", "first", "national", "american", "general", "international", "global", "new", "great", "southern",
    "northern", "western", "eastern", "pacific", "atlantic", "central", "capital", "community", "peoples",
    "citizens", "home", "state", "trust", "energy", "health", "bank", "advanced", "applied", "digital", "data",
    "core", "power", "life", "smart", "prime", "alpha", "focus", "summit", "pioneer", "liberty", "victory",
    "select", "premier", "royal", "standard", "universal", "world", "north", "south", "west", "east", "china",
})


def _short_name(name: str) -> str | None:
    """"Teladoc Health" -> "Teladoc"; None when nothing can be dropped or what is left is too generic."""
    ws = _LEGAL_TAIL.sub("", name).split()
    if len(ws) < 2 or ws[-1].casefold() not in _DESCRIPTORS:
        return None
    rest = ws[:-1]
    key = alias_key(" ".join(rest))
    if len(key) < 4 or (len(rest) == 1 and rest[0].casefold() in _COMMON | _DESCRIPTORS):
        return None
    return " ".join(rest)


class GraphBuildError(FinmonError):
    """A reference table is missing or not in the expected format."""


@dataclass
class _Draft:
    cik: int | None = None
    names: list[str] = field(default_factory=list)  # best first
    tickers: list[str] = field(default_factory=list)  # primary first
    exchange: str = ""
    sector: str = ""
    industry: str = ""
    etf: bool = False
    sp500: bool = False
    listed: bool = False
    sp_tickers: set[str] = field(default_factory=set)
    sec_names: list[str] = field(default_factory=list)  # EDGAR names of the CIK
    listings: dict[str, tuple[str, bool]] = field(default_factory=dict)  # ticker -> (exchange, ETF)
    names_of: dict[str, list[str]] = field(default_factory=dict)  # ticker -> names from listings/aliases


def build_graph(companies_dir: Path, base: bool = False) -> Graph:
    """The full graph from the five reference tables; raises GraphBuildError naming a missing file.

    ``base``: only the SEC map (US public domain) and the MIT alias list — the graph committed as
    ``resources/graph_base.json.gz`` for machines without the tables (no sectors, no ETF flags)."""
    files = (SEC, SNIFFER) if base else (SP500, NASDAQ, NYSE, SEC, SNIFFER)
    for name in files:
        if not (companies_dir / name).is_file():
            raise GraphBuildError(f"{companies_dir / name} is missing (see ../shared/data/companies/SOURCE.md)")
    drafts: dict[str, _Draft] = {}  # key: "cik:N" or "sym:TICKER"
    owner: dict[str, str] = {}  # normal ticker -> draft key

    def draft_for(cik: int | None, sym: str) -> _Draft:
        root = re.split(r"[.]", sym)[0]  # BAC.PL (preferred), XYZ.U (unit), XYZ.WS: their issuer's node
        key = owner.get(sym) or (owner.get(root) if cik is None and "." in sym else None) or (
            f"cik:{cik}" if cik else f"sym:{sym}")
        d = drafts.setdefault(key, _Draft(cik=cik))
        owner.setdefault(sym, key)
        if sym not in d.tickers:
            d.tickers.append(sym)
        return d

    with open(companies_dir / SP500, encoding="utf-8", newline="") if not base else _empty() as fh:
        for row in csv.DictReader(fh):
            sym, cik = ticker(row["Symbol"]), int(row["CIK"])
            d = draft_for(cik, sym)
            d.tickers.remove(sym)
            d.tickers.insert(0 if not d.sp500 else len(d.tickers), sym)
            d.names.insert(0, _CLASS.sub("", row["Security"]).strip())
            d.sector, d.industry, d.sp500 = row["GICS Sector"], row["GICS Sub-Industry"], True
            d.sp_tickers.add(sym)
    sec = json.loads((companies_dir / SEC).read_text(encoding="utf-8"))
    for cik, name, sym, exchange in sec["data"]:
        d = draft_for(int(cik), ticker(sym))
        d.sec_names.append(name)
        d.exchange = d.exchange or (exchange or "")
    with open(companies_dir / NASDAQ, encoding="utf-8", newline="") if not base else _empty() as fh:
        for row in csv.DictReader(fh):
            if not row.get("Security Name") or row.get("Test Issue") != "N":
                continue  # trailer rows and test issues
            sym = ticker(row["Symbol"])
            _listing(draft_for(None, sym), sym, row["Company Name"], "Nasdaq", row["ETF"] == "Y")
    with open(companies_dir / NYSE, encoding="utf-8", newline="") if not base else _empty() as fh:
        for row in csv.DictReader(fh):
            if row.get("Test Issue") == "Y" or not row["ACT Symbol"]:
                continue
            sym = ticker(row["ACT Symbol"])
            exchange = _NYSE_EXCHANGES.get(row["Exchange"], row["Exchange"])
            _listing(draft_for(None, sym), sym, row["Company Name"], exchange, row["ETF"] == "Y")
    with open(companies_dir / SNIFFER, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            sym = ticker(row["Symbol"])
            d = draft_for(None, sym)
            d.names_of.setdefault(sym, []).extend([row["Company Name"], *row["Alternate Names"].split(",")])
    for sym, extra in COMPANY_ALIASES.items():
        if sym in owner:
                drafts[owner[sym]].names_of.setdefault(sym, []).extend(extra)
    nodes = [_node(d) for d in drafts.values()]
    graph = Graph({n.id: n for n in [*nodes, *curated_nodes()]}, [*files, "world.py"])
    log.info("built graph: %d nodes (%d companies) from %s", len(graph.nodes), len(nodes), companies_dir)
    return graph


def _empty() -> io.StringIO:
    return io.StringIO("")


def _listing(d: _Draft, sym: str, company: str, exchange: str, etf: bool) -> None:
    name = _SECURITY.sub("", company.strip()).strip(" ,")
    if name:
        d.names_of.setdefault(sym, []).append(name)
    d.listings[sym] = (exchange, etf)
    d.listed = True


def _node(d: _Draft) -> Node:
    plain = [t for t in d.tickers if "." not in t] or d.tickers
    primary = d.tickers[0] if d.sp500 else min(plain, key=lambda t: (t not in d.listings, len(t), t))
    # names of the issuer's own share classes only: an ETN or a fund filed under a bank's CIK is not the bank
    family = {t for t in d.tickers if t.split(".")[0] == primary.split(".")[0]} | d.sp_tickers
    exchange, etf = d.listings.get(primary, (d.exchange, False))
    # an ETN filed under its bank's CIK carries the bank's EDGAR name: a fund is named by its listings only
    own = [a for t in d.tickers if t in family for a in d.names_of.get(t, ())[:1]]
    sec = [n for n in d.sec_names if not (etf and own) or _FUND.search(n)]
    names = [n.strip() for n in d.names + sec + own if n and n.strip()]
    extra = [a.strip() for t in d.tickers if t in family for a in d.names_of.get(t, ())[1:] if a.strip()]
    # a name written ALL CAPS (the EDGAR style) is an alias, not what people read
    display = _LEGAL_TAIL.sub("", next((n for n in names if not n.isupper()), names[0] if names else primary)) or primary
    legal = max((n for n in names if alias_key(n) == alias_key(display) or n.isupper()), key=len, default="")
    rank = 2 if d.sp500 else (1 if primary in d.listings and not etf else 0)
    seen, unique = {display}, []
    # a fund, an unlisted or OTC name is found by its own names only: the alias list's guesses for it
    # ("Credit Suisse" for a Credit Suisse ETN) would take the names of companies the graph does not hold
    short = [a for a in {_short_name(display), _short_name(legal)} if a] if rank else []
    for alias in [*names, *(extra if rank else ()), *short]:
        if alias not in seen:
            seen.add(alias)
            unique.append(alias)
    return Node(primary, COMPANY, display, tuple(unique), tuple(d.tickers), legal if legal != display else "",
                exchange or d.exchange, d.cik, d.sector, d.industry, etf, rank=rank)
