"""Malformed model outputs (a broken export, a wrong server) are refused, never decoded into wrong labels: wrong
shapes are the model's fault (``ModelUnavailable``: the worker backs off), a non-finite row may be one input's
(``InferenceError``: the pipeline dead-letters only that document). On the real shipped model and pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from inference.errors import InferenceError, ModelUnavailable
from inference.serving.predictor import OnnxPredictor, load_predictor
from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Backpressure, Message, Pipeline
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, Store

TEXTS = ["Acme shares fell 9% after weak guidance", "Globex beat earnings estimates", "Fed holds rates"]


@pytest.fixture(scope="module")
def predictor() -> OnnxPredictor:
    p = load_predictor()
    assert isinstance(p, OnnxPredictor)
    return p


def _broken(predictor: OnnxPredictor, monkeypatch: pytest.MonkeyPatch, damage) -> None:  # noqa: ANN001
    real = predictor.run

    def run(batch):  # noqa: ANN001
        return damage(batch, *real(batch))

    monkeypatch.setattr(predictor, "run", run)


@pytest.mark.parametrize("damage", [
    lambda b, t, s, k: (t[:-1], s, k),  # one row short
    lambda b, t, s, k: (t, s[:, :2], k),  # a sentiment class missing
    lambda b, t, s, k: (t, s, k[:, :-1]),  # token logits narrower than the batch
    lambda b, t, s, k: (t, s, k[..., :3]),  # fewer tags than the label set
], ids=["rows", "classes", "width", "tags"])
def test_wrong_shapes_are_model_unavailable(predictor, monkeypatch, damage) -> None:  # noqa: ANN001
    _broken(predictor, monkeypatch, damage)
    with pytest.raises(ModelUnavailable, match="malformed model output") as info:
        predictor.predict(TEXTS)
    assert info.value.code == "MALFORMED_OUTPUT"


def test_non_finite_values_are_an_inference_error(predictor, monkeypatch) -> None:  # noqa: ANN001
    def nan_row(b, t, s, k):  # noqa: ANN001
        t = t.copy()
        t[0, 0] = np.nan
        return t, s, k

    _broken(predictor, monkeypatch, nan_row)
    with pytest.raises(InferenceError, match="non-finite") as info:
        predictor.predict(TEXTS)
    assert not isinstance(info.value, ModelUnavailable)


async def test_the_pipeline_backs_off_on_shapes_and_dead_letters_only_the_nan_document(
    predictor, monkeypatch, store: Store  # noqa: ANN001
) -> None:
    settings = IngestSettings(batch_size=8, batch_timeout_s=0.05)
    letters = ListDeadLetters()
    pipeline = Pipeline(predictor, store, letters, settings, IngestMetrics(CollectorRegistry()))
    published = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for i, text in enumerate(TEXTS):
        doc = {"schema_version": 1, "id": f"d{i}", "source": "wire", "kind": "news", "published_at": published,
               "text": text}
        await pipeline.feed(Message(json.dumps(doc).encode(), "news.raw", 0, i))

    _broken(predictor, monkeypatch, lambda b, t, s, k: (t[:-1], s, k))
    with pytest.raises(Backpressure) as info:
        await pipeline.flush()
    assert info.value.cause == "model" and pipeline.pending == 3 and not letters.letters

    def nan_for_globex(b, t, s, k):  # noqa: ANN001
        t = t.copy()
        for row, enc in enumerate(b.encodings):
            if "glo" in " ".join(enc.tokens).lower():
                t[row] = np.nan
        return t, s, k

    monkeypatch.undo()  # the server is fixed; one input now yields NaN
    _broken(predictor, monkeypatch, nan_for_globex)
    results = await pipeline.flush()
    assert sorted((r.doc_id or "", r.outcome.value) for r in results) == [
        ("", "dead_letter"), ("d0", "stored"), ("d2", "stored")]
    assert [letter.offset for _, letter in letters.letters] == [1]
    assert letters.letters[0][1].reason == "inference_error"
    ids = [r["doc_id"] for r in store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL ORDER BY doc_id")]
    assert ids == ["d0", "d2"]
