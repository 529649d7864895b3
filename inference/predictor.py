"""Predictors: anything that turns texts into ``Prediction`` objects.

``Predictor`` is the interface the pipeline depends on; ``OnnxPredictor`` (in-process onnxruntime, no torch) and
the Triton client both implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from inference.prediction import Prediction


@runtime_checkable
class Predictor(Protocol):
    model_version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One ``Prediction`` per text, in input order. Raises ``InferenceError`` subclasses on failure."""
        ...

    async def apredict(self, texts: Sequence[str]) -> list[Prediction]:
        """The same, for asyncio callers (the pipeline). Raises ``ModelUnavailable`` when the backend is down."""
        ...
