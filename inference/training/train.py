"""Training: objective ``sum_t lambda_t L_t`` over the tasks, task-sampled single-task batches, AdamW with
weight decay and linear warm-up/decay, dropout, a checkpoint per epoch and early stopping on dev splits carved
from train with a fixed seed. ``tasks=("topic",)`` etc. gives the serial single-task baselines (same encoder,
same recipe, same examples per task)."""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inference.training.batches import TaskBatch, TaskData, epoch_plan, stream
from inference.errors import ConfigError
from inference.evaluation.evaluate import evaluate_ner, evaluate_text
from inference.labels import IGNORE_INDEX, SENTIMENTS, TOPICS
from inference.training.export import load_model
from inference.training.model import MultiTaskModel, TextTeacher, base_model_path, top_layers, torch_runner
from inference.training.recipe import TrainConfig, load_splits
from inference.tokenize import Batch, TextTokenizer

log = logging.getLogger(__name__)
def dev_metrics(model: MultiTaskModel, tokenizer: TextTokenizer, splits: dict) -> dict[str, dict]:
    model.eval()
    run, m = torch_runner(model), {}
    if "topic" in splits:
        m["topic"] = evaluate_text(run, tokenizer, splits["topic"][1], "topic", len(TOPICS))
    if "sentiment" in splits:
        m["sentiment"] = evaluate_text(run, tokenizer, splits["sentiment"][1], "sentiment", len(SENTIMENTS))
    if "ner" in splits:
        dev = splits["ner"][1]
        m["ner"] = evaluate_ner(run, tokenizer, dev)
        for source in {e.source for e in dev}:
            m[f"ner_{source}"] = evaluate_ner(run, tokenizer, [e for e in dev if e.source == source])
    model.train()
    return m


def score(metrics: dict[str, dict]) -> float:
    """Early-stopping score: mean of topic accuracy, sentiment accuracy and entity F1 (tasks present)."""
    keys = {"topic": "accuracy", "sentiment": "accuracy", "ner": "f1"}
    return float(np.mean([metrics[t][k] for t, k in keys.items() if t in metrics]))


def class_weights(labels: list[int], n_classes: int, scheme: str) -> torch.Tensor | None:
    """Per-class loss weights of a text task: ``inverse_sqrt`` gives class c the weight count_c**-0.5, scaled so
    that the mean weight over the training examples is 1 (the loss keeps its size; small topics count more)."""
    if scheme == "none":
        return None
    if scheme != "inverse_sqrt":
        raise ValueError(f"unknown class weighting {scheme!r}")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
    w /= float((w * counts).sum() / counts.sum())
    return torch.tensor(w, dtype=torch.float32)


def loss_of(model: MultiTaskModel, tb: TaskBatch, weights: dict[str, torch.Tensor | None] | None = None,
            label_smoothing: float = 0.0) -> torch.Tensor:
    topic, sentiment, tokens = model(*(torch.from_numpy(a) for a in tb.batch.arrays().values()))
    labels = torch.from_numpy(tb.labels)
    if tb.task == "ner":
        return nn.functional.cross_entropy(tokens.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    logits = (topic if tb.task == "topic" else sentiment).float()
    return nn.functional.cross_entropy(logits, labels, weight=(weights or {}).get(tb.task), label_smoothing=label_smoothing)


def start_run(seed: int, threads: int, out: Path, max_length: int,
              tok_dir: Path | None = None) -> tuple[Path, Path, TextTokenizer]:
    """Seed everything, set torch's threads, create the run folder; (out, tokenizer dir, tokenizer). The
    tokenizer is the base model's unless ``tok_dir`` says otherwise."""
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = tok_dir or base_model_path()
    return out, tok_dir, TextTokenizer.from_dir(tok_dir, max_length)


def has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX512-BF16): bf16 autocast is then faster than fp32
    (1.5x for the student's training steps, 1.8x for the teacher's, here); elsewhere it is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def use_bf16(precision: str) -> bool:
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"unknown precision {precision!r}")
    return precision == "bf16" or (precision == "auto" and has_bf16_units())


def new_model(cfg: TrainConfig, teacher_dir: Path | None) -> nn.Module:
    """The model a run starts from (the teacher's pre-trained weights are in ``teacher_dir``)."""
    if cfg.teacher:
        if cfg.init:
            return TextTeacher.load(cfg.init).train()
        return TextTeacher.from_pretrained(teacher_dir, dropout=cfg.dropout) if teacher_dir else TextTeacher.tiny()
    if cfg.init:
        return load_model(cfg.init)
    if cfg.tiny and not cfg.encoder:
        return MultiTaskModel.tiny()
    return MultiTaskModel.from_pretrained(cfg.encoder, dropout=cfg.dropout)


def adamw_schedule(model: nn.Module, lr: float, weight_decay: float, warmup: float, total: int):
    """AdamW (no decay on biases and LayerNorm) with linear warm-up over ``warmup`` of ``total`` steps, then linear
    decay to 0."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in trainable if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warm = max(1, int(warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched


def train(cfg: TrainConfig) -> dict:
    """Train, keep the best epoch in ``out_dir/best`` and return the run summary (also in ``summary.json``)."""
    if cfg.teacher and "ner" in cfg.tasks:
        raise ConfigError("the teacher learns the text tasks only: --tasks topic,sentiment")
    bf16 = use_bf16(cfg.precision)
    teacher_dir = None
    if cfg.teacher and not cfg.tiny:
        from inference.training.distillation import teacher_base_path

        teacher_dir = teacher_base_path()
    out, tok_dir, tokenizer = start_run(cfg.seed, cfg.threads, Path(cfg.out_dir), cfg.max_length, teacher_dir)
    model = new_model(cfg, teacher_dir)
    if isinstance(model, MultiTaskModel):
        model.add_branch("token", cfg.token_layers or len(model.token_layers))
        model.add_branch("sentiment", cfg.sentiment_layers or len(model.sentiment_layers))
    if cfg.freeze_word_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    if cfg.freeze_encoder or cfg.train_layers:
        model.encoder.requires_grad_(False)
    top = top_layers(model, cfg.train_layers, "train")
    top.requires_grad_(True)
    splits = load_splits(cfg)
    tasks = [TaskData(t, splits[t][0]) for t in cfg.tasks]
    n_classes = {"topic": len(TOPICS), "sentiment": len(SENTIMENTS)}
    weights = {t.task: class_weights([e.label for e in t.examples], n_classes[t.task], cfg.class_weighting)
               for t in tasks if t.task in n_classes}
    rng = random.Random(cfg.seed)
    steps_per_epoch = len(epoch_plan(tasks, cfg.batch_size, cfg.sampling, random.Random(0)))
    total = steps_per_epoch * cfg.epochs
    opt, sched = adamw_schedule(model, cfg.lr, cfg.weight_decay, cfg.warmup, total)
    history, best, bad, started = [], -1.0, 0, time.time()
    log.info("training %s on %s examples, %d steps/epoch", cfg.tasks, {t.task: len(t.examples) for t in tasks}, steps_per_epoch)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if cfg.freeze_encoder or cfg.train_layers:
            model.encoder.eval()  # no dropout in a frozen encoder: its features stay what the other heads learnt on
            top.train()
        bar = tqdm(stream(tasks, tokenizer, cfg.batch_size, cfg.sampling, rng), total=steps_per_epoch,
                   desc=f"epoch {epoch}/{cfg.epochs}", mininterval=5)
        running: dict[str, float] = {}
        for tb in bar:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = cfg.task_weights.get(tb.task, 1.0) * loss_of(model, tb, weights, cfg.label_smoothing)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
            value = float(loss.detach())
            running[tb.task] = 0.98 * running.get(tb.task, value) + 0.02 * value
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            metrics = dev_metrics(model, tokenizer, splits)
        s = score(metrics)
        history.append({"epoch": epoch, "score": s, "metrics": metrics, "elapsed_s": round(time.time() - started)})
        log.info("epoch %d dev score %.4f %s", epoch, s, json.dumps(metrics))
        model.save(out / f"epoch-{epoch}", tok_dir)
        if s > best:
            best, bad = s, 0
            shutil.rmtree(out / "best", ignore_errors=True)
            shutil.copytree(out / f"epoch-{epoch}", out / "best")
        else:
            bad += 1
            if bad > cfg.patience:
                log.info("early stop after epoch %d", epoch)
                break
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
               "history": history, "best_score": best, "train_seconds": round(time.time() - started)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
