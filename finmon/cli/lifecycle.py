"""`finmon model promote`: the gate a newly exported version must pass before it replaces the served one;
`finmon model refit-topic-head`: a new version with the topic head refitted on the frozen encoder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("model", help="model lifecycle: versions in the Triton model repository")
    msub = m.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = msub.add_parser("promote", help="evaluate CANDIDATE and the current version on fixed files; refuse a regression")
    p.add_argument("candidate", type=Path, help="exported version folder, e.g. models/triton/finmon_mtl/2")
    p.add_argument("--current", type=Path, default=None,
                   help="version to compare with (default: the newest other version folder next to CANDIDATE)")
    p.add_argument("--tolerance", type=float, default=None, help="largest accepted drop of any metric (FINMON_PROMOTE_TOLERANCE)")
    p.add_argument("--prune", action="store_true", help="on acceptance, delete the other versions' weights (metrics stay)")
    p.set_defaults(handler=_promote)
    r = msub.add_parser("refit-topic-head", help="write a new version: MODEL with its topic head refitted (L2 logistic "
                        "regression on the graph's own features of the recipe's topic train split); needs the eval extra")
    r.add_argument("--model", type=Path, default=None, help="exported version folder (default: the newest)")
    r.add_argument("--out", type=Path, required=True, help="the new version folder, e.g. models/triton/finmon_mtl/4")
    r.add_argument("--c", type=float, default=None, help="inverse L2 strength (default 0.03, chosen by cross-validation)")
    r.set_defaults(handler=_refit)


def _promote(args: argparse.Namespace) -> int:
    from inference.evaluation.promotion import promote, promotion_settings

    settings = promotion_settings(**({"tolerance": args.tolerance} if args.tolerance is not None else {}))
    result = promote(args.candidate, settings, current=args.current, prune=args.prune)
    print(result.table())
    return 0 if result.accepted else 1


def _refit(args: argparse.Namespace) -> int:
    from inference.serving.triton_repository import latest_version
    from inference.training.head_refit import DEFAULT_C, refit_topic_head

    print(refit_topic_head(args.model or latest_version().path, args.out, c=DEFAULT_C if args.c is None else args.c))
    return 0
