"""`finmon model promote`: the gate a newly exported version must pass before it replaces the served one."""

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


def _promote(args: argparse.Namespace) -> int:
    from inference.evaluation.promotion import promote, promotion_settings

    settings = promotion_settings(**({"tolerance": args.tolerance} if args.tolerance is not None else {}))
    result = promote(args.candidate, settings, current=args.current, prune=args.prune)
    print(result.table())
    return 0 if result.accepted else 1
