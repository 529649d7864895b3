"""The knowledge graph and the linker: alias normalisation, ticker styles, places and institutions, ambiguity
left unlinked (or resolved by context), Reuters codes paired with their names, and the graph built from the
shared reference tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.decoding.prediction import EntitySpan
from inference.linking.graph import COMPANY, INSTITUTION, PLACE, Graph, Node
from inference.linking.installed import BASE_GRAPH, companies_dir
from inference.linking.linker import EntityLinker
from inference.linking.names import alias_key, display_key, ticker
from inference.linking.world import curated_nodes

SMALL = Graph({n.id: n for n in [
    Node("TSLA", COMPANY, "Tesla", ("Tesla, Inc.", "Tesla Motors"), ("TSLA",), sector="Consumer Discretionary", rank=2),
    Node("BRK.B", COMPANY, "Berkshire Hathaway", ("Berkshire Hathaway Inc.",), ("BRK.B", "BRK.A"), sector="Financials",
         rank=2),
    Node("GS", COMPANY, "Goldman Sachs", ("The Goldman Sachs Group, Inc.",), ("GS",), sector="Financials", rank=2),
    Node("JNJ", COMPANY, "Johnson & Johnson", (), ("JNJ",), sector="Health Care", rank=2),
    Node("META", COMPANY, "Meta Platforms", ("Facebook",), ("META",), rank=2),
    Node("FB", COMPANY, "Some Buffer ETF", (), ("FB",), etf=True),
    # two listed companies sharing a short name, in different sectors: only context can tell them apart
    Node("DELB", COMPANY, "Delta Bank", ("Delta",), ("DELB",), sector="Financials", rank=1),
    Node("DELE", COMPANY, "Delta Energy", ("Delta",), ("DELE",), sector="Energy", rank=1),
    Node("DOW", COMPANY, "Dow", ("Dow Inc.",), ("DOW",), sector="Materials", rank=2),
    Node("SECX", COMPANY, "SEC Holdings", ("SEC",), ("SECX",), rank=1),
    *curated_nodes(),
]})


def _link(texts: list[tuple[str, str]], topic: str | None = None, graph: Graph = SMALL) -> list[EntitySpan]:
    """Spans of one document: (label, text); a TICKER's raw symbol is what the rule extracted."""
    spans, at = [], 0
    for label, text in texts:
        symbol = text.strip("<>$") if label == "TICKER" else None
        spans.append(EntitySpan(at, at + len(text), label, text, 1.0, symbol))
        at += len(text) + 1
    return EntityLinker(graph).link(spans, topic)


def _ids(texts: list[tuple[str, str]], **kw) -> list[str | None]:
    return [s.entity_id for s in _link(texts, **kw)]


def test_alias_normalisation_ignores_case_punctuation_possessives_and_legal_forms() -> None:
    keys = {alias_key(n) for n in ("Tesla", "TESLA", "Tesla, Inc.", "Tesla Inc", "Tesla's", "tesla’s", "The Tesla")}
    assert keys == {"tesla"}
    assert alias_key("U.S.") == alias_key("US") == "us"
    assert alias_key("J.P. Morgan") == alias_key("JP Morgan") == alias_key("JPMorgan") == "jpmorgan"
    assert alias_key("Estée Lauder Cos.") == "esteelauder"
    assert alias_key("Inc.") == "inc"  # a name made only of a legal form is not emptied
    assert display_key("Elon Musk's") == display_key("ELON  MUSK") == "elon musk"
    assert display_key("Tiffany & Co.") == display_key("Tiffany") == "tiffany" and display_key("Inc.") == "inc"
    spans = _link([("ORG", "Goldman Sachs Group, Inc."), ("ORG", "GOLDMAN SACHS"), ("ORG", "Goldman Sachs's")])
    assert {s.entity_id for s in spans} == {"GS"} and {s.name for s in spans} == {"Goldman Sachs"}
    assert {s.company_id for s in spans} == {"GS"} and {s.sector for s in spans} == {"Financials"}


def test_ticker_styles_cashtags_and_reuters_codes() -> None:
    assert {ticker(t) for t in ("BRK.B", "BRK-B", "BRK/B", "brk.b", "$BRK.B")} == {"BRK.B"}
    assert ticker("BAC$L") == "BAC.PL" and ticker("JNJ.N", reuters=True) == "JNJ" and ticker("BRK.A") == "BRK.A"
    got = _ids([("TICKER", "$BRK-B"), ("TICKER", "$BRK.A"), ("TICKER", "$tsla"), ("TICKER", "<JNJ.N>"),
                ("TICKER", "<TSLA.O>"), ("TICKER", "$ZZZZ")])
    assert got == ["BRK.B", "BRK.B", "TSLA", "JNJ", "TSLA", "ZZZZ"]  # unknown: counted under its symbol
    assert _link([("TICKER", "$ZZZZ")])[0].company_id is None


def test_places_and_institutions_with_short_forms_and_demonyms() -> None:
    got = _ids([("LOC", t) for t in ("U.S.", "US", "USA", "United States", "America", "UK", "Britain", "China",
                                     "PRC", "Chinese")])
    assert got == ["loc:US"] * 5 + ["loc:GB"] * 2 + ["loc:CN"] * 3
    got = _ids([("ORG", t) for t in ("Fed", "Federal Reserve", "FOMC", "ECB", "SEC", "OPEC", "OPEC+")])
    assert got == ["org:FED"] * 3 + ["org:ECB", "org:SEC", "org:OPEC", "org:OPEC"]
    assert SMALL.get("org:FED").kind == INSTITUTION and SMALL.get("org:FED").country == "loc:US"
    assert SMALL.get("loc:US").kind == PLACE
    # a curated institution owns its alias; a LOC span never links to a company
    assert _ids([("LOC", "Tesla"), ("ORG", "China")]) == ["tesla", "loc:CN"]
    for node in curated_nodes():  # every curated alias reaches its own node
        for alias in (node.name, *node.aliases):
            assert node in SMALL.candidates(alias), alias


def test_ambiguity_is_left_unlinked_unless_context_resolves_it() -> None:
    assert _ids([("ORG", "Delta")]) == ["delta"]  # two listed companies, same prior, no context: unlinked
    assert _link([("ORG", "Delta")])[0].company_id is None
    assert _ids([("ORG", "Delta"), ("ORG", "Goldman Sachs")]) == ["DELB", "GS"]  # a bank next to a bank
    assert _ids([("ORG", "Delta")], topic="Energy | Oil") == ["DELE"]  # the topic names the sector
    assert _ids([("ORG", "Delta"), ("TICKER", "$DELE")]) == ["DELE", "DELE"]  # the document's own cashtag
    assert _ids([("ORG", "Dow")]) == ["dow"]  # "the Dow" is an index, never Dow Inc.
    assert _ids([("TICKER", "$DOW")]) == ["DOW"]


def test_reuters_code_after_a_name_is_that_names_listing() -> None:
    # FB is a fund now; "Meta Platforms Inc <FB.O>" is Meta (the code annotates the name before it)
    assert _ids([("ORG", "Meta Platforms Inc"), ("TICKER", "<FB.O>")]) == ["META", "META"]
    assert _ids([("TICKER", "<FB.O>")]) == ["FB"]
    assert _ids([("ORG", "Johnson and Johnson Inc"), ("TICKER", "<JNJ.N>")]) == ["JNJ", "JNJ"]


def test_per_is_merged_by_normal_name_and_a_company_tagged_per_is_still_found() -> None:
    spans = _link([("PER", "Elon Musk"), ("PER", "ELON MUSK's"), ("PER", "Tesla Holdings")])
    assert [s.entity_id for s in spans] == ["elon musk", "elon musk", "TSLA"]
    assert spans[0].company_id is None and spans[0].name == "Elon Musk"


def test_graph_round_trips_through_its_file(tmp_path: Path) -> None:
    path = SMALL.save(tmp_path / "g.json.gz")
    again = Graph.load(path)
    assert again.nodes == SMALL.nodes and again.sectors() == SMALL.sectors()
    assert SMALL.save(tmp_path / "g2.json.gz").read_bytes() == path.read_bytes()  # same graph, same bytes


def test_committed_base_graph_links_without_the_reference_tables() -> None:
    linker = EntityLinker(Graph.load(BASE_GRAPH))
    spans = [EntitySpan(0, 5, "ORG", "Apple"), EntitySpan(6, 11, "TICKER", "$MSFT", company_id="MSFT"),
             EntitySpan(12, 16, "LOC", "U.S."), EntitySpan(17, 24, "ORG", "Unknown Widgets Ltd")]
    assert [s.entity_id for s in linker.link(spans)] == ["AAPL", "MSFT", "loc:US", "unknown widgets"]


@pytest.mark.skipif(not (companies_dir() / "sp500_constituents.csv").is_file(), reason="no ../shared/data here")
def test_graph_built_from_the_reference_tables() -> None:
    from inference.linking.build import build_graph

    graph = build_graph(companies_dir())
    jpm, brk, googl, spy = (graph.get(i) for i in ("JPM", "BRK.B", "GOOGL", "SPY"))
    assert jpm.sector == "Financials" and jpm.industry == "Diversified Banks" and jpm.cik == 19617
    assert jpm.exchange == "NYSE" and not jpm.etf
    assert set(brk.tickers) >= {"BRK.A", "BRK.B"} and graph.by_ticker("BRK-A") is brk
    assert set(googl.tickers) >= {"GOOG", "GOOGL"} and graph.candidates("Google") == (googl,)
    assert spy.etf and spy.exchange == "NYSE Arca"
    assert len(graph.sectors()) == 11 and sum(n.sector != "" for n in graph.nodes.values()) == 500
    linker = EntityLinker(graph)
    spans = [EntitySpan(0, 8, "ORG", "JPMorgan"), EntitySpan(9, 22, "ORG", "Credit Suisse")]
    assert [s.entity_id for s in linker.link(spans)] == ["JPM", "credit suisse"]  # not an ETN named after it
