"""The promotion gate: a candidate version replaces the current one only if no task got worse.

Both versions are scored on the SAME fixed evaluation (by default the recipe's dev splits and the hand-checked
tweet spans); every gated metric (accuracy and macro-F1 of each text task, entity F1 of each NER set, tweet span
precision) of the candidate may fall at most ``tolerance`` below the current one. Each accepted version keeps its
scores in ``metrics.json`` next to its weights, so once the old weights are gone (only the served version's weights
stay in git) the gate compares with what was recorded, provided the evaluation is the same (its fingerprint: the
options and the SHA-256 of every file read).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from inference.errors import ConfigError
from inference.settings import REPO_ROOT, StageSettings

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
WEIGHT_FILES = ("model.onnx", "tokenizer.json")
GATED = {"accuracy", "macro_f1", "f1"}  # per task; plus tweet_spans.precision


class PromotionSettings(StageSettings):
    """The promotion gate (env prefix ``FINMON_PROMOTE_``)."""

    section: ClassVar[str] = "promote"
    model_config = SettingsConfigDict(env_prefix="FINMON_PROMOTE_", extra="ignore")

    tolerance: float = 0.005  # largest drop of any gated metric the gate accepts (0.005 = half a point)
    dev: bool = True  # evaluate on the dev splits the training recipe carves from train
    spans: Path | None = REPO_ROOT / "eval" / "tweet_spans.jsonl"  # hand-checked tweet spans; empty: none
    topic_csv: Path | None = None  # further fixed topic file (topic_train.csv format)
    sentiment_csv: Path | None = None  # further fixed sentiment file (sent_train.csv format)
    finer_csv: Path | None = None  # further fixed FiNER-ORD file (csv)
    conll: Path | None = None  # further fixed CoNLL-2003 file

    @field_validator("spans", "topic_csv", "sentiment_csv", "finer_csv", "conll", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


def promotion_settings(**overrides: object) -> PromotionSettings:
    return PromotionSettings(**overrides)  # type: ignore[arg-type]


def evaluation_options(s: PromotionSettings) -> dict:
    return {"dev": s.dev, "spans": s.spans, "topic_csv": s.topic_csv, "sentiment_csv": s.sentiment_csv,
            "finer_csv": s.finer_csv, "conll": s.conll}


def fingerprint(options: dict) -> dict:
    """What the scores depend on besides the model: the options and the content of every file read."""
    from inference.training.recipe import NER_SOURCES, TrainConfig

    files = [Path(v) for k, v in options.items() if k != "dev" and v]
    if options.get("dev"):
        cfg = TrainConfig()
        d = Path(cfg.data_dir)
        files += [d / "twitter_financial_news_topic/topic_train.csv", d / "twitter_financial_news_sentiment/sent_train.csv"]
        files += [d / rel for name in cfg.ner_sources for rel in NER_SOURCES[name][0]]
    digests = {}
    for f in files:
        try:
            digests[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise ConfigError(f"evaluation file {f}: {exc}") from exc
    return {"dev": bool(options.get("dev")), "files": dict(sorted(digests.items()))}


def gated_metrics(result: dict) -> dict[str, float]:
    out = {}
    for task, m in result.items():
        if not isinstance(m, dict) or task == "baseline":
            continue
        for k in sorted(GATED & m.keys()) + (["precision"] if task == "tweet_spans" else []):
            out[f"{task}.{k}"] = float(m[k])
    return out


@dataclass
class Comparison:
    rows: list[tuple[str, float | None, float | None]]  # (metric, current, candidate)
    tolerance: float
    current: str
    candidate: str
    regressions: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.regressions

    def table(self) -> str:
        lines = [f"{'metric':<28}{'current':>10}{'candidate':>11}{'delta':>9}",
                 f"{'':<28}{self.current[-10:]:>10}{self.candidate[-10:]:>11}"]
        for name, cur, cand in self.rows:
            delta = f"{cand - cur:+.4f}" if cur is not None and cand is not None else ""
            flag = "  REGRESSION" if name in self.regressions else ""
            lines.append(f"{name:<28}{_f(cur):>10}{_f(cand):>11}{delta:>9}{flag}")
        if self.accepted:
            return "\n".join(lines + [f"accepted (tolerance {self.tolerance})"])
        return "\n".join(lines + [f"refused: {', '.join(self.regressions)} fell by more than {self.tolerance}"])


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def compare(current: dict[str, float], candidate: dict[str, float], tolerance: float, names: tuple[str, str]) -> Comparison:
    """Every metric of the current version must be present in the candidate and not fall by more than tolerance."""
    rows, bad = [], []
    for key in sorted(current.keys() | candidate.keys()):
        cur, cand = current.get(key), candidate.get(key)
        rows.append((key, cur, cand))
        if cur is not None and (cand is None or cand < cur - tolerance):
            bad.append(key)
    return Comparison(rows, tolerance, names[0], names[1], bad)


def _model_version(version_dir: Path) -> str:
    meta = version_dir / "finmon.json"
    return json.loads(meta.read_text())["model_version"] if meta.is_file() else version_dir.name


def current_version(candidate: Path) -> Path | None:
    """The newest other version folder next to the candidate that has weights or recorded metrics."""
    others = [c for c in candidate.parent.iterdir() if c.is_dir() and c.name.isdigit() and c.resolve() != candidate.resolve()
              and ((c / "model.onnx").is_file() or (c / METRICS_FILE).is_file())]
    return max(others, key=lambda c: int(c.name)) if others else None


Evaluator = Callable[..., dict]


def scores(version_dir: Path, options: dict, print_: dict, evaluate: Evaluator) -> dict:
    """Gated metrics of a version: evaluated when its weights are here, else read from its metrics.json."""
    if (version_dir / "model.onnx").is_file():
        return gated_metrics(evaluate(version_dir, **options))
    recorded = version_dir / METRICS_FILE
    if not recorded.is_file():
        raise ConfigError(f"{version_dir}: neither weights nor {METRICS_FILE} to compare with")
    data = json.loads(recorded.read_text())
    if data.get("evaluation") != print_:
        raise ConfigError(f"{recorded} was recorded on a different evaluation ({data.get('evaluation')}); "
                          f"evaluate with the same options or restore the old weights")
    return data["metrics"]


def record(version_dir: Path, metrics: dict[str, float], print_: dict) -> Path:
    path = version_dir / METRICS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_version": _model_version(version_dir), "evaluation": print_,
                               "recorded": datetime.now(timezone.utc).isoformat(), "metrics": metrics}, indent=1))
    tmp.replace(path)  # atomic, and replaces a link instead of writing through it
    return path


def promote(candidate: Path, settings: PromotionSettings | None = None, *, current: Path | None = None,
            prune: bool = False, evaluate: Evaluator | None = None) -> Comparison:
    """Compare ``candidate`` (a version folder) with the current version; on acceptance record its metrics (and
    the current one's, if evaluated) and, with ``prune``, delete every other version's weights."""
    from inference.evaluation.evaluate import evaluate_files

    s = settings or promotion_settings()
    evaluate = evaluate or evaluate_files
    candidate = Path(candidate)
    if not (candidate / "model.onnx").is_file():
        raise ConfigError(f"{candidate}: not an exported version folder (no model.onnx)")
    options = evaluation_options(s)
    print_ = fingerprint(options)
    current = current or current_version(candidate)
    cand_scores = gated_metrics(evaluate(candidate, **options))
    if current is None:
        log.info("no current version next to %s: nothing to compare with", candidate)
        result = Comparison([(k, None, v) for k, v in sorted(cand_scores.items())], s.tolerance, "none",
                            _model_version(candidate))
    else:
        cur_scores = scores(current, options, print_, evaluate)
        result = compare(cur_scores, cand_scores, s.tolerance, (_model_version(current), _model_version(candidate)))
    if result.accepted:
        record(candidate, cand_scores, print_)
        if current is not None and not (current / METRICS_FILE).is_file():
            record(current, cur_scores, print_)
        if prune:
            for other in candidate.parent.iterdir():
                if other.is_dir() and other.name.isdigit() and other.resolve() != candidate.resolve():
                    for name in WEIGHT_FILES:
                        (other / name).unlink(missing_ok=True)
                    log.info("removed the weights of %s (its %s stays)", other, METRICS_FILE)
    return result


def next_version(model_dir: Path) -> int:
    """The number a newly exported model gets: one above every version folder (with or without weights)."""
    numbers = [int(c.name) for c in Path(model_dir).iterdir() if c.is_dir() and c.name.isdigit()] if Path(model_dir).is_dir() else []
    return max(numbers, default=0) + 1

