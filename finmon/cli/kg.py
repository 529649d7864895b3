"""`finmon kg` sub-commands: build the knowledge graph, load it into ClickHouse, evaluate the linker, look a name up."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    kg = sub.add_parser("kg", help="knowledge graph: build, load into ClickHouse, evaluate the linker, look up names")
    area = kg.add_subparsers(dest="kg_command", required=True, metavar="KG_COMMAND")

    b = area.add_parser("build", help="build the graph from ../shared/data/companies + the curated places/institutions")
    b.add_argument("--data", type=Path, default=None, help="the companies folder (default: <data dir>/companies)")
    b.add_argument("--out", type=Path, default=None, help="graph file (default: $FINMON_KG or $FINMON_HOME/kg/graph.json.gz)")
    b.add_argument("--base", action="store_true",
                   help="only the SEC map and the MIT alias list (what ships as resources/graph_base.json.gz)")
    b.set_defaults(handler=_build)

    load = area.add_parser("load", help="write the graph into the kg_entities / kg_relations tables (after migrate)")
    _store_args(load)
    load.set_defaults(handler=_load)

    e = area.add_parser("eval", help="precision/recall of the linker on the hand-checked mentions")
    e.add_argument("--file", type=Path, default=None, help="mentions JSONL (default: the committed linking_eval.jsonl)")
    e.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the metrics (and errors) here")
    e.set_defaults(handler=_eval)

    show = area.add_parser("show", help="link names as the pipeline would and print the graph nodes")
    show.add_argument("names", nargs="+", help='e.g. "Tesla Inc." \\$BRK-B "<JNJ.N>" U.S. Fed')
    show.add_argument("--label", default=None, help="span label (default: TICKER for $X / <X.N>, else ORG)")
    show.set_defaults(handler=_show)


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dsn", default=None, help="chdb:///abs/dir or http(s)://... (default: FINMON_INGEST_CLICKHOUSE_DSN)")
    p.add_argument("--database", default=None, help="database name (default: FINMON_INGEST_CLICKHOUSE_DATABASE)")
    p.add_argument("--graph", type=Path, default=None, help="graph file (default: the installed graph)")


def _build(args: argparse.Namespace) -> int:
    from inference.linking.build import build_graph
    from inference.linking.installed import BASE_GRAPH, companies_dir, installed_path

    graph = build_graph(args.data or companies_dir(), base=args.base)
    path = graph.save(args.out or (BASE_GRAPH if args.base else installed_path()))
    companies = sum(n.kind == "company" for n in graph.nodes.values())
    print(f"{len(graph.nodes)} nodes ({companies} companies, {len(graph.sectors())} sectors) -> {path}")
    return 0


def _graph(path: Path | None):
    from inference.linking.graph import Graph
    from inference.linking.installed import load_default_graph
    from inference.linking.build import GraphBuildError

    graph = Graph.load(path) if path else load_default_graph()
    if graph is None:
        raise GraphBuildError("no knowledge graph: run `finmon kg build`")
    return graph


def _load(args: argparse.Namespace) -> int:
    from ingest.kg import load_graph
    from ingest.settings import ingest_settings
    from ingest.store import Store

    settings = ingest_settings()
    graph = _graph(args.graph)
    with Store.connect(settings, args.dsn, args.database) as store:
        counts = load_graph(store, graph)
    print(f"loaded {counts['entities']} entities and {counts['relations']} relations")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from inference.linking.evaluation import EVAL_FILE, evaluate, read_mentions
    from inference.linking.linker import EntityLinker

    mentions = read_mentions(args.file or EVAL_FILE)
    metrics = evaluate(EntityLinker(_graph(None)), mentions)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"mentions {metrics['mentions']}  links {metrics['links']}  gold links {metrics['gold_links']}  "
          f"correct {metrics['correct']}  precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}")
    for split, m in metrics.get("splits", {}).items():
        print(f"  {split:<5} mentions {m['mentions']:>4}  precision {m['precision']:.3f}  recall {m['recall']:.3f}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from inference.decoding.prediction import EntitySpan
    from inference.linking.linker import EntityLinker

    from inference.errors import ConfigError
    from inference.labels import ENTITY_TYPES

    if args.label and args.label not in ENTITY_TYPES:
        raise ConfigError(f"unknown span label {args.label!r} (use one of {', '.join(ENTITY_TYPES)})")
    linker = EntityLinker(_graph(None))
    for name in args.names:
        label = args.label or ("TICKER" if name.startswith(("$", "<")) else "ORG")
        span = linker.link([EntitySpan(0, len(name), label, name, 1.0, name.strip("<>$") if label == "TICKER" else None)])[0]
        node = linker.graph.get(span.entity_id or "")
        detail = (f"{node.kind} {node.name!r} tickers={','.join(node.tickers[:4])} exchange={node.exchange or '-'} "
                  f"sector={node.sector or '-'} industry={node.industry or '-'} etf={node.etf} country={node.country or '-'}"
                  if node else "unlinked")
        print(f"{name!r:<28} -> {span.entity_id:<14} {detail}")
    return 0
