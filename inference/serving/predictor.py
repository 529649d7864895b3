"""Predictors: anything that turns texts into ``Prediction`` objects.

``Predictor`` is the interface the pipeline depends on; ``OnnxPredictor`` (in-process onnxruntime, no torch) and
the Triton client both implement it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from inference.decoding.decode import decode
from inference.errors import ConfigError, InputError
from inference.decoding.prediction import Prediction
from inference.settings import MIN_SCORES, ModelSettings, model_settings
from inference.tensors import OUTPUTS
from inference.tokenize import Batch, TextTokenizer
from inference.serving.triton_repository import METADATA_FILE


@runtime_checkable
class Predictor(Protocol):
    model_version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One ``Prediction`` per text, in input order. Raises ``InferenceError`` subclasses on failure."""
        ...

    async def apredict(self, texts: Sequence[str]) -> list[Prediction]:
        """The same, for asyncio callers (the pipeline). Raises ``ModelUnavailable`` when the backend is down."""
        ...


class OnnxPredictor:
    """In-process onnxruntime over an exported version folder; no torch needed.

    Texts are sorted by length and cut into batches of ``batch_size`` so each batch pads only to its own longest
    text (dynamic padding). Empty or whitespace-only texts get a prediction too (the model sees only [CLS] [SEP]);
    a non-``str`` item raises ``InputError``.
    """

    def __init__(self, version_dir: Path, *, max_length: int = 128, batch_size: int = 32, threads: int = 0,
                 min_scores: tuple[float, float] = MIN_SCORES) -> None:
        import onnxruntime as ort

        self.version_dir = Path(version_dir)
        meta = json.loads((self.version_dir / METADATA_FILE).read_text())
        self.model_version: str = meta["model_version"]
        self.batch_size = batch_size
        self.min_scores = min_scores  # (unlinked, linked) entity span scores, see decode.confident
        self.tokenizer = TextTokenizer.from_dir(self.version_dir, max_length)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.version_dir / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self._outputs = [s.name for s in OUTPUTS]

    def run(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw logits for one tokenised batch (the ``Runner`` interface of inference.evaluation.evaluate)."""
        topic, sentiment, tokens = self.session.run(self._outputs, batch.arrays())
        return topic, sentiment, tokens

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text #{i} is {type(text).__name__}, not str")
        out: list[Prediction | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            part = [texts[i] for i in idx]
            batch = self.tokenizer.encode_texts(part)
            for i, p in zip(idx, decode(part, batch, *self.run(batch), self.model_version, *self.min_scores)):
                out[i] = p
        return out  # type: ignore[return-value]

    async def apredict(self, texts: Sequence[str]) -> list[Prediction]:
        return await asyncio.to_thread(self.predict, list(texts))


def load_predictor(settings: ModelSettings | None = None) -> Predictor:
    """The configured predictor: the Triton client when a Triton URL is set, else in-process onnxruntime."""
    settings = settings or model_settings()
    from inference.serving.triton_settings import triton_settings

    triton = triton_settings()
    if triton.url:
        from inference.serving.triton_client import TritonPredictor

        return TritonPredictor.from_settings(triton, settings)
    from inference.serving.triton_repository import exported_versions, latest_version

    if settings.version:
        matches = [v for v in exported_versions(settings.repository, settings.name) if str(v.number) == settings.version]
        if not matches:
            raise ConfigError(f"model version {settings.version} not found under {settings.repository}")
        version = matches[0]
    else:
        version = latest_version(settings.repository, settings.name)
    return OnnxPredictor(version.path, max_length=settings.max_length, batch_size=settings.batch_size,
                         threads=settings.threads, min_scores=settings.min_scores)
