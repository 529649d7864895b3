"""Test doubles for the pipeline: a deterministic predictor (the real model runs in the integration tests) and a
switch in front of the real store that makes it unreachable."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from inference.errors import InferenceError, ModelUnavailable
from inference.labels import SENTIMENTS, TOPICS
from inference.decoding.prediction import EntitySpan, Prediction
from ingest.store import Store, StoreUnavailable


def _pick(text: str, options: Sequence[str]) -> str:
    return options[hashlib.sha256(text.encode()).digest()[0] % len(options)]


class RulePredictor:
    """Topic and sentiment from a hash of the text; every capitalised word is an ORG span.

    ``down`` makes it raise ModelUnavailable (a stopped model server); texts containing ``poison`` raise
    InferenceError, as a model that cannot read one input would.
    """

    model_version = "rules-1"

    def __init__(self) -> None:
        self.down = False
        self.calls: list[int] = []

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if self.down:
            raise ModelUnavailable("model server is down")
        if any("poison" in t for t in texts):
            raise InferenceError("cannot read this input")
        self.calls.append(len(texts))
        return [self._one(t) for t in texts]

    async def apredict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.predict(texts)

    def _one(self, text: str) -> Prediction:
        topic, sentiment = _pick(text, TOPICS), _pick(text[::-1], SENTIMENTS)
        entities, pos = [], 0
        for word in text.split(" "):
            if word[:1].isupper() and word.isalpha():
                entities.append(EntitySpan(pos, pos + len(word), "ORG", word, 0.9))
            pos += len(word) + 1
        probs = {s: (0.8 if s == sentiment else 0.1) for s in SENTIMENTS}
        return Prediction(topic, {topic: 0.9}, sentiment, 0.8, probs, entities, self.model_version)


class FlakyStore:
    """The real store behind a switch that makes it unreachable, like a ClickHouse server that went away."""

    def __init__(self, store: Store) -> None:
        self.store, self.down = store, False

    def write_batch(self, docs: list) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        self.store.write_batch(docs)


class SharedStore:
    """One store used by several in-process workers (a consumer group): writes are serialised by a lock."""

    def __init__(self, store: Store) -> None:
        import threading

        self.store, self._lock = store, threading.Lock()

    def write_batch(self, docs: list) -> None:
        with self._lock:
            self.store.write_batch(docs)
