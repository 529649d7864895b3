"""Linking: ORG, LOC and TICKER spans -> graph ids; every span gets an ``entity_id`` and a display ``name``.

* TICKER spans by symbol in every style (``$BRK.B``, ``BRK-B``, Reuters ``<JNJ.N>``);
* ORG spans by normalised alias (companies, institutions, places: "China" the state); LOC spans by place or
  institution alias only ("Amazon" the river is not the company);
* an alias shared by several nodes goes to the one with the highest prior (an S&P 500 member over a fund named
  after it); a tie is broken by the document's context — the companies it names unambiguously, their sectors,
  the topic — and otherwise left unlinked: a wrong link would put one company's bad news on another's alert;
* PER spans and everything unlinked are counted under their normal name (``elon musk``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from inference.decoding.prediction import EntitySpan
from inference.linking.graph import COMPANY, Graph, Node
from inference.linking.names import LEGAL_SUFFIXES, display_key, ticker, words
from inference.linking.installed import load_default_graph

log = logging.getLogger(__name__)

TICKER, ORG, LOC, PER = "TICKER", "ORG", "LOC", "PER"
# topics that point at one sector when a name is shared by companies of different sectors
TOPIC_SECTORS = {"Energy | Oil": "Energy", "Financials": "Financials", "Gold | Metals | Materials": "Materials"}


class EntityLinker:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def candidates(self, span: EntitySpan) -> tuple[Node, ...]:
        if span.label == TICKER:
            node = self.graph.by_ticker(span.company_id or span.text, reuters=span.text.startswith("<"))
            return (node,) if node and node.kind == COMPANY else ()
        if span.label == ORG or (span.label == PER and _legal_tail(span.text)):
            return self.graph.candidates(span.text)  # "Forge Global Holdings" tagged PER is still a company
        if span.label == LOC:
            return tuple(n for n in self.graph.candidates(span.text) if n.kind != COMPANY)
        return ()

    def link(self, spans: Sequence[EntitySpan], topic: str | None = None) -> list[EntitySpan]:
        """The spans of one document, linked; the document's unambiguous links are the context of the rest."""
        return [linked(s, n) for s, n in zip(spans, self.resolve(spans, topic), strict=True)]

    def resolve(self, spans: Sequence[EntitySpan], topic: str | None = None) -> list[Node | None]:
        """The graph node each span names (None: not in the graph, or ambiguous in this document)."""
        found = [self.candidates(s) for s in spans]
        chosen: list[Node | None] = [_by_prior(c) for c in found]
        context = {n.id for n in chosen if n}
        sectors = {n.sector for n in chosen if n and n.sector} | {TOPIC_SECTORS.get(topic or "", "")} - {""}
        for i, cands in enumerate(found):
            if chosen[i] is None and len(cands) > 1:
                chosen[i] = _by_context(cands, context, sectors)
        _pair_reuters_codes(spans, chosen)
        return chosen


def _pair_reuters_codes(spans: Sequence[EntitySpan], chosen: list[Node | None]) -> None:
    """"Meta Platforms Inc <FB.O>": a Reuters code right after a name is that name's listing. The name's company
    wins over what the code alone resolves to (an old ticker now used by a fund, a foreign listing the graph does
    not hold), and a name the graph does not know takes the code's company."""
    for i in range(1, len(spans)):
        code, name = spans[i], spans[i - 1]
        if code.label != TICKER or not code.text.startswith("<") or name.label not in (ORG, PER):
            continue
        if not 0 <= code.start - name.end <= 1:
            continue
        a, b = chosen[i - 1], chosen[i]
        if a is not None and a.kind == COMPANY:
            chosen[i] = a
        elif a is None and b is not None and b.rank > 0:
            chosen[i - 1] = b


def _legal_tail(text: str) -> bool:
    ws = words(text)
    return len(ws) > 1 and ws[-1] in LEGAL_SUFFIXES - {"&", "and", "the"}


def _by_prior(cands: tuple[Node, ...]) -> Node | None:
    if not cands:
        return None
    top = max(c.rank for c in cands)
    best = [c for c in cands if c.rank == top]
    return best[0] if len(best) == 1 else None


def _by_context(cands: tuple[Node, ...], context: set[str], sectors: set[str]) -> Node | None:
    top = max(c.rank for c in cands)
    best = [c for c in cands if c.rank == top]
    for test in (lambda c: c.id in context, lambda c: bool(c.sector) and c.sector in sectors):
        hits = [c for c in best if test(c)]
        if len(hits) == 1:
            return hits[0]
    return None


def linked(span: EntitySpan, node: Node | None) -> EntitySpan:
    """The span counted under ``node`` (its graph id, display name, sector), or under its own normal name."""
    if node is not None:
        company = node.id if node.kind == COMPANY else None
        return replace(span, company_id=company, entity_id=node.id, name=node.name, sector=node.sector or None)
    if span.label == TICKER:
        key = ticker(span.company_id or span.text, reuters=span.text.startswith("<"))
    else:
        key = display_key(span.text) or span.text.casefold()
    return replace(span, company_id=None, entity_id=key, name=span.text, sector=None)


@lru_cache(maxsize=1)
def default_linker() -> EntityLinker | None:
    """The linker over the installed graph (``finmon kg build``), else the committed base graph."""
    graph = load_default_graph()
    return EntityLinker(graph) if graph else None
