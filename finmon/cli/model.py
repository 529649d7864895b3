"""`finmon train`, `finmon eval`, `finmon export`: the multi-task model's life cycle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inference.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from inference.training.recipe import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train the multi-task model (or a single-task baseline); needs the train extra")
    p.add_argument("--data-dir", type=Path, default=None, help="training data (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=d.out_dir, help="run folder: a checkpoint per epoch, best/, summary.json")
    p.add_argument("--tasks", default=",".join(d.tasks), help="comma list of topic,sentiment,ner (one task = serial baseline)")
    p.add_argument("--task-weights", default="topic=1,sentiment=1,ner=1", help="lambda per task, e.g. topic=1,ner=0.5")
    p.add_argument("--sampling", choices=("proportional", "sqrt", "uniform"), default=d.sampling)
    p.add_argument("--class-weighting", choices=("none", "inverse_sqrt"), default=d.class_weighting,
                   help="text tasks: weight each class's loss by count**-0.5 (small topics count more)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="text tasks' cross-entropy")
    p.add_argument("--ner-sources", default=",".join(d.ner_sources), help="comma list of conll,finer,sec,btc,wnut")
    p.add_argument("--sentiment-sources", default=",".join(d.sentiment_sources),
                   help="comma list of twitter,phrasebank,fiqa (extra sources go to train only)")
    p.add_argument("--pseudo-labels", type=Path, default=None,
                   help="extra sentiment CSV written by `finmon pseudo-label` (train only)")
    for name in ("epochs", "batch_size", "max_length", "patience", "seed", "limit", "threads"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "weight_decay", "warmup", "dropout", "dev_fraction"):
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    p.add_argument("--train-word-embeddings", action="store_true", help="also fine-tune the word-piece embeddings")
    p.add_argument("--tiny", action="store_true", help="random 2-layer encoder (smoke tests)")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this checkpoint (runs/mtl/best) or exported version (models/triton/finmon_mtl/1)")
    p.add_argument("--encoder", type=Path, default=None, help="start from this encoder (`finmon pretrain`'s <out>/encoder)")
    p.add_argument("--freeze-encoder", action="store_true", help="train the heads only (the encoder stays as loaded)")
    p.add_argument("--train-layers", type=int, default=d.train_layers,
                   help="freeze the encoder but its top K layers (a token branch forking below them stays exact)")
    p.add_argument("--token-layers", type=int, default=d.token_layers,
                   help="give the token head its own copy of the top K encoder layers (trained even with --freeze-encoder)")
    p.add_argument("--sentiment-layers", type=int, default=d.sentiment_layers,
                   help="give the sentiment head its own copy of the top K encoder layers (the same, for sentiment)")
    p.add_argument("--ner-case-augment", type=float, default=d.ner_case_augment,
                   help="share of NER train sentences added again in headline / upper case (0..1)")
    p.add_argument("--ner-negatives", action="store_true",
                   help="add the topic train tweets' capitalised common words as non-names (partial labels)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default=d.precision,
                   help="bf16 autocast (weights stay fp32); auto: bf16 where the CPU has AMX / AVX512-BF16")
    p.add_argument("--teacher", action="store_true",
                   help="fine-tune the distillation teacher, all-mpnet-base-v2 (teacher extra), on topic and sentiment")
    p.add_argument("--soft-labels", type=Path, default=None,
                   help="the teacher's probabilities written by `finmon soft-label` (text tasks, train only)")
    p.add_argument("--soft-weight", type=float, default=d.soft_weight,
                   help="a gold-labelled text's target: (1 - w) * its label + w * the teacher's probabilities")
    p.set_defaults(handler=_train)

    e = sub.add_parser("eval", help="evaluate a model on files in the shared training formats")
    e.add_argument("--model", type=Path, default=None, help="exported version folder or training checkpoint (default: shipped)")
    e.add_argument("--topic-csv", type=Path)
    e.add_argument("--sentiment-csv", type=Path)
    e.add_argument("--finer-csv", type=Path)
    e.add_argument("--conll", type=Path)
    e.add_argument("--dev", action="store_true", help="also evaluate on the dev splits the training recipe carves from train")
    e.add_argument("--baselines", action="store_true",
                   help="also train TF-IDF + logistic regression on the recipe's train split and score it beside the model")
    e.add_argument("--per-class", action="store_true", help="also report F1 per topic / sentiment class")
    e.add_argument("--spans", type=Path, help="hand-checked span file (eval/tweet_spans.jsonl): span precision")
    e.add_argument("--span-curve", action="store_true",
                   help="with --spans: span precision and the NER files' decoded entity F1 at several span-score bars")
    e.add_argument("--json", type=Path, help="also write the metrics as JSON")
    e.set_defaults(handler=_eval)

    q = sub.add_parser("pseudo-label", help="label the topic set's training tweets with the sentiment of an ensemble")
    q.add_argument("teachers", type=Path, nargs="+", help="training checkpoint folders (e.g. runs/single-sentiment/best)")
    q.add_argument("--out", type=Path, required=True, help="CSV in the sentiment set's format (text,label)")
    q.add_argument("--data-dir", type=Path, default=None, help="training data (default: ../shared/data)")
    q.add_argument("--min-confidence", type=float, default=0.0, help="keep tweets whose mean top probability reaches this")
    q.add_argument("--threads", type=int, default=0)
    q.set_defaults(handler=_pseudo_label)

    t = sub.add_parser("soft-label", help="the teacher's topic and sentiment probabilities for the recipe's train tweets")
    t.add_argument("teacher", type=Path, help="teacher checkpoint folder (`finmon train --teacher`, e.g. runs/teacher/best)")
    t.add_argument("--out", type=Path, required=True, help="JSONL file: text, topic and sentiment probabilities")
    t.add_argument("--data-dir", type=Path, default=None, help="training data (default: ../shared/data)")
    from finmon.cli.pretraining import add_archive_arguments

    add_archive_arguments(t, "label")
    t.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.set_defaults(handler=_soft_label)

    a = sub.add_parser("soup", help="average the weights of several training checkpoints into one")
    a.add_argument("checkpoints", type=Path, nargs="+", help="training checkpoint folders of the same model")
    a.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    a.set_defaults(handler=_soup)

    x = sub.add_parser("export", help="export a checkpoint to ONNX + tokenizer + Triton config (a model-repository version)")
    x.add_argument("checkpoint", type=Path, help="training checkpoint folder (e.g. runs/mtl/best)")
    x.add_argument("--repo", type=Path, default=None, help="model repository (default: models/triton)")
    x.add_argument("--version", type=int, default=None,
                   help="version number (default: the next free one; the others stay until `finmon model promote --prune`)")
    x.add_argument("--quantize", "--optimize", action="store_true",
                   help="int8 compute: the graph of `finmon optimize` (int8 MatMuls, activations scaled per row)")
    x.add_argument("--keep-others", action="store_true", help="keep other version folders (default: one version at a time)")
    x.set_defaults(handler=_export)

    o = sub.add_parser("optimize", help="turn an exported version folder into the int8-compute graph (no retraining)")
    o.add_argument("--model", type=Path, default=None, help="exported version folder (default: the shipped one)")
    o.add_argument("--out", type=Path, default=None, help="version folder to write (default: replace --model in place)")
    o.add_argument("--fuse", action="store_true", help="also apply onnxruntime's transformer fusions")
    o.set_defaults(handler=_optimize)


def _folders(*paths: Path | None) -> None:
    """Refuse a missing checkpoint or data folder at once, before torch is imported (that takes a while)."""
    for path in paths:
        if path is not None and not path.is_dir():
            raise ConfigError(f"no such folder: {path}")


def _files(*paths: Path | None) -> None:
    for path in paths:
        if path is not None and not path.exists():
            raise ConfigError(f"no such file: {path}")


def check_soft_labels(args: argparse.Namespace) -> None:
    """--soft-labels names a file and --soft-weight is a share (`finmon train` and `finmon model refit-head`)."""
    _files(args.soft_labels)
    if not 0.0 <= args.soft_weight <= 1.0:
        raise ConfigError(f"--soft-weight {args.soft_weight}: a weight between 0 and 1 is expected")


def _train(args: argparse.Namespace) -> int:
    _folders(args.data_dir, args.init)
    _files(args.pseudo_labels)
    check_soft_labels(args)
    if not 0.0 <= args.ner_case_augment <= 1.0:
        raise ConfigError(f"--ner-case-augment {args.ner_case_augment}: a share between 0 and 1 is expected")
    from inference.training.recipe import TrainConfig
    from inference.training.train import train

    cfg = TrainConfig(
        out_dir=args.out, tasks=tuple(args.tasks.split(",")), sampling=args.sampling,
        class_weighting=args.class_weighting, label_smoothing=args.label_smoothing,
        task_weights={k: float(v) for k, v in (kv.split("=") for kv in args.task_weights.split(","))},
        ner_sources=tuple(args.ner_sources.split(",")), sentiment_sources=tuple(args.sentiment_sources.split(",")),
        epochs=args.epochs, batch_size=args.batch_size,
        max_length=args.max_length, patience=args.patience, seed=args.seed, limit=args.limit, threads=args.threads,
        lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup, dropout=args.dropout,
        dev_fraction=args.dev_fraction, freeze_word_embeddings=not args.train_word_embeddings, tiny=args.tiny,
        init=args.init, encoder=args.encoder, freeze_encoder=args.freeze_encoder, train_layers=args.train_layers,
        pseudo_labels=args.pseudo_labels,
        token_layers=args.token_layers, sentiment_layers=args.sentiment_layers,
        ner_case_augment=args.ner_case_augment, ner_negatives=args.ner_negatives,
        precision=args.precision, teacher=args.teacher, soft_labels=args.soft_labels, soft_weight=args.soft_weight,
    )
    if args.data_dir:
        cfg.data_dir = args.data_dir
    summary = train(cfg)
    print(json.dumps(summary["history"][-1], indent=1))
    return 0


def _pseudo_label(args: argparse.Namespace) -> int:
    _folders(*args.teachers, args.data_dir)
    import torch

    from inference.training.teacher import label_topic_tweets

    if args.threads:
        torch.set_num_threads(args.threads)
    n = label_topic_tweets(args.teachers, args.out, data_dir=args.data_dir, min_confidence=args.min_confidence)
    print(f"{n} tweets labelled -> {args.out}")
    return 0


def _soft_label(args: argparse.Namespace) -> int:
    _folders(args.teacher, args.data_dir)
    from inference.training.distillation import TEACHER_MARK

    if not (args.teacher / TEACHER_MARK).is_file():
        raise ConfigError(f"{args.teacher} is not a teacher checkpoint (made by `finmon train --teacher`)")
    import torch

    from finmon.cli.pretraining import read_archive
    from inference.training import data as D
    from inference.training.corpus import corpus_splits, held_out_keys, unique
    from inference.training.distillation import teacher_probs, train_tweets, write_soft_labels
    from inference.training.recipe import TrainConfig
    from inference.training.train import use_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(data_dir=args.data_dir) if args.data_dir else TrainConfig()
    tweets = train_tweets(cfg)
    texts = tweets
    if args.from_clickhouse:  # unlabelled for both tasks; never a dev or evaluation text
        texts = tweets + unique(read_archive(args, set()), held_out_keys(corpus_splits(cfg)) | {
            D.near_duplicate_key(t) for t in tweets})
    n = write_soft_labels(texts, teacher_probs(args.teacher, texts, bf16=use_bf16(args.precision)), args.out)
    print(f"{n} texts labelled ({len(tweets)} train tweets, {n - len(tweets)} from the archive) -> {args.out}")
    return 0


def _soup(args: argparse.Namespace) -> int:
    _folders(*args.checkpoints)
    from inference.training.soup import average_checkpoints

    print(average_checkpoints(args.checkpoints, args.out))
    return 0


def _eval(args: argparse.Namespace) -> int:
    _files(args.model, args.topic_csv, args.sentiment_csv, args.finer_csv, args.conll)
    from inference.evaluation.evaluate import evaluate_files, format_table

    result = evaluate_files(model=args.model, topic_csv=args.topic_csv, sentiment_csv=args.sentiment_csv,
                            finer_csv=args.finer_csv, conll=args.conll, dev=args.dev, baselines=args.baselines,
                            per_class=args.per_class, spans=args.spans, curve=args.span_curve)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def _optimize(args: argparse.Namespace) -> int:
    from inference.serving.optimize import optimize_in_place, optimize_version
    from inference.serving.triton_repository import latest_version

    source = args.model or latest_version().path
    print(optimize_version(source, args.out, fuse=args.fuse) if args.out else optimize_in_place(source, fuse=args.fuse))
    return 0


def _export(args: argparse.Namespace) -> int:
    _folders(args.checkpoint)
    from inference.training.export import export

    from inference.evaluation.promotion import next_version
    from inference.serving.triton_repository import GPU_REPOSITORY
    from inference.tensors import MODEL_NAME

    version, keep = args.version, args.keep_others
    if version is None:  # a new version folder beside the served one, for the promotion gate
        version, keep = next_version(Path(args.repo or GPU_REPOSITORY) / MODEL_NAME), True
    path = export(args.checkpoint, repo=args.repo, version=version, quantize=args.quantize, keep_others=keep)
    print(path)
    return 0
