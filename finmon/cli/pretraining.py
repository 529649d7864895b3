"""`finmon pretrain`: domain-adaptive masked-LM training of the encoder (shared train text and/or the archive)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path


def _when(value: str) -> datetime:
    """An ISO date or timestamp; naive means UTC."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or timestamp: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def add_archive_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """The monitor's archive as unlabelled text (``finmon pretrain``, ``finmon soft-label``)."""
    p.add_argument("--from-clickhouse", metavar="DSN", default=None,
                   help=f"also {what} stored documents (chdb:///abs/dir or http(s)://user:pass@host:port)")
    p.add_argument("--database", default="finmon")
    p.add_argument("--since", type=_when, default=None, help="archive: published at or after (ISO date/time, UTC)")
    p.add_argument("--until", type=_when, default=None, help="archive: published before")
    p.add_argument("--archive-limit", type=int, default=0, help="archive: at most this many documents (0: all)")


def read_archive(args: argparse.Namespace, held_out: set[str]) -> list[str]:
    """The archive's texts (``add_archive_arguments``), none near a held-out text; [] without --from-clickhouse."""
    if not args.from_clickhouse:
        return []
    from ingest.archive import archive_texts
    from ingest.store import Store

    with Store.open(args.from_clickhouse, args.database) as store:
        return archive_texts(store, args.since, args.until, exclude=held_out, limit=args.archive_limit)


def register(sub: argparse._SubParsersAction) -> None:
    from inference.training.recipe import PretrainConfig

    d = PretrainConfig()
    p = sub.add_parser("pretrain", help="continued masked-LM training of the encoder on unlabelled text (train extra)")
    p.add_argument("--out", type=Path, default=d.out_dir, help="run folder: encoder/ (for `finmon train --encoder`), summary.json")
    p.add_argument("--data-dir", type=Path, default=None, help="training data (default: ../shared/data)")
    p.add_argument("--no-shared", action="store_true", help="skip the shared training sets' train-split text")
    add_archive_arguments(p, "read")
    p.add_argument("--exclude", type=Path, action="append", default=[],
                   help="further evaluation file whose texts must not be trained on (CSV/JSONL text, CoNLL); repeatable")
    for name in ("epochs", "max_steps", "batch_size", "max_length", "seed", "threads"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "weight_decay", "warmup", "mlm_probability"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    p.add_argument("--tiny", action="store_true", help="random 2-layer encoder (smoke tests)")
    p.set_defaults(handler=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from inference.training.corpus import corpus_splits, held_out_keys, shared_texts, unique
    from inference.training.pretrain import pretrain
    from inference.training.recipe import PretrainConfig
    from inference.training.recipe import TrainConfig

    train_cfg = TrainConfig(data_dir=args.data_dir) if args.data_dir else TrainConfig()
    splits = corpus_splits(train_cfg)
    held_out = held_out_keys(splits, args.exclude)
    texts = [] if args.no_shared else shared_texts(splits, held_out)
    corpus = {"shared": len(texts), "archive": 0, "held_out_keys": len(held_out)}
    if args.from_clickhouse:
        texts = unique(texts + read_archive(args, held_out), held_out)
        corpus["archive"] = len(texts) - corpus["shared"]
    cfg = PretrainConfig(out_dir=args.out, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                         max_length=args.max_length, seed=args.seed, threads=args.threads, lr=args.lr,
                         weight_decay=args.weight_decay, warmup=args.warmup, mlm_probability=args.mlm_probability,
                         tiny=args.tiny)
    summary = pretrain(texts, cfg, corpus)
    print(json.dumps({k: summary[k] for k in ("corpus", "steps", "loss_start", "loss_end")}, indent=1))
    return 0
