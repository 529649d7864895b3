"""`finmon model promote`: the gate a newly exported version must pass before it replaces the served one;
`finmon model refit-head`: a new version with the topic or sentiment head refitted on the frozen encoder."""

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
    r = msub.add_parser("refit-head", aliases=["refit-topic-head"],
                        help="write a new version: MODEL with its topic or sentiment head refitted (L2 logistic "
                        "regression on the graph's own features of the recipe's train split); needs the eval extra")
    r.add_argument("--model", type=Path, default=None, help="exported version folder (default: the newest)")
    r.add_argument("--out", type=Path, required=True, help="the new version folder, e.g. models/triton/finmon_mtl/5")
    r.add_argument("--task", choices=("topic", "sentiment"), default="topic", help="the head to refit (default topic)")
    r.add_argument("--c", type=float, default=None, help="inverse L2 strength (default: topic 0.03, sentiment 0.1, each chosen by cross-validation)")
    r.add_argument("--soft-labels", type=Path, default=None,
                   help="`finmon soft-label`'s file: fit the teacher's probabilities too (train texts only)")
    r.add_argument("--soft-weight", type=float, default=0.5,
                   help="a gold text's target: (1 - w) * label + w * teacher (default 0.5)")
    r.set_defaults(handler=_refit)


def _promote(args: argparse.Namespace) -> int:
    from inference.evaluation.promotion import promote, promotion_settings

    settings = promotion_settings(**({"tolerance": args.tolerance} if args.tolerance is not None else {}))
    result = promote(args.candidate, settings, current=args.current, prune=args.prune)
    print(result.table())
    return 0 if result.accepted else 1


def _refit(args: argparse.Namespace) -> int:
    from finmon.cli.model import check_soft_labels
    from inference.serving.triton_repository import latest_version
    from inference.training.head_refit import refit_head

    check_soft_labels(args)
    print(refit_head(args.model or latest_version().path, args.out, args.task, c=args.c,
                     soft_labels=args.soft_labels, soft_weight=args.soft_weight))
    return 0
