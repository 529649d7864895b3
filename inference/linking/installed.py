"""Where the graph lives: built by ``finmon kg build`` into ``$FINMON_HOME/kg/graph.json.gz``; without it, built
in memory on first use from the reference tables when they are on this machine (a few seconds, never cached
behind the user's back: a cache would go stale when the tables or the code change); else the committed base
graph (``resources/graph_base.json.gz``: SEC names and tickers + MIT aliases + the curated table, no sectors)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from inference.linking.graph import Graph
from inference.settings import DEFAULT_HOME

log = logging.getLogger(__name__)

BASE_GRAPH = Path(__file__).parent / "resources" / "graph_base.json.gz"


def installed_path() -> Path:
    """``$FINMON_KG`` if set, else ``$FINMON_HOME/kg/graph.json.gz``."""
    return Path(os.environ.get("FINMON_KG") or DEFAULT_HOME / "kg" / "graph.json.gz")


def companies_dir() -> Path:
    from inference.training.data import default_data_dir  # the one place that knows where ../shared/data is

    return default_data_dir() / "companies"


def load_default_graph() -> Graph | None:
    path = installed_path()
    if path.is_file():
        return Graph.load(path)
    if (companies_dir() / "sp500_constituents.csv").is_file():
        from inference.linking.build import build_graph

        log.info("no knowledge graph at %s: building it from %s (`finmon kg build` saves it)", path, companies_dir())
        return build_graph(companies_dir())
    if BASE_GRAPH.is_file():
        log.warning("no knowledge graph at %s: using the base graph (no sectors); run `finmon kg build`", path)
        return Graph.load(BASE_GRAPH)
    return None
