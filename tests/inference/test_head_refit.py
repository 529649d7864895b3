"""`finmon model refit-topic-head`: the new version computes the fitted regression, and nothing else moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from inference.errors import ConfigError
from inference.labels import TOPICS
from inference.serving.predictor import OnnxPredictor
from inference.serving.triton_repository import latest_version
from inference.settings import model_settings
from inference.tokenize import TextTokenizer
from inference.training import data as D
from inference.training.head_refit import fit_head, pooled_features, refit_topic_head

DATA = D.default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "twitter_financial_news_topic").is_dir(), reason="shared data not found")


@pytest.fixture(scope="module")
def shipped() -> Path:
    settings = model_settings()
    return latest_version(settings.repository, settings.name).path


def test_the_refitted_version_is_the_regression_and_leaves_sentiment_and_entities_alone(shipped, tmp_path):
    from sklearn.linear_model import LogisticRegression

    examples = D.read_topic_csv(DATA / "twitter_financial_news_topic/topic_train.csv")[::113]  # the file is by label
    repo = tmp_path / "finmon_mtl"
    repo.mkdir()
    shutil.copy(shipped.parent / "config.pbtxt", repo / "config.pbtxt")
    out = refit_topic_head(shipped, repo / "7", examples, c=1.0)

    texts = [e.text for e in examples[:40]] + ["Fed hikes rates by 75 bp", "Apple to buy a startup", ""]
    before, after = OnnxPredictor(shipped).predict(texts), OnnxPredictor(out).predict(texts)
    # the reference: the same regression fitted here, on the source graph's own features
    x = pooled_features(onnx.load(str(shipped / "model.onnx")), TextTokenizer.from_dir(shipped), [e.text for e in examples])
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(x, [e.label for e in examples])
    probs = reference.predict_proba(pooled_features(onnx.load(str(shipped / "model.onnx")),
                                                    TextTokenizer.from_dir(shipped), texts))
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        assert b.sentiment_probs == a.sentiment_probs and b.entities == a.entities
        for j, label in enumerate(reference.classes_):
            assert b.topic_probs[TOPICS[label]] == pytest.approx(probs[k, j], abs=1e-4)
    assert sum(a.topic != b.topic for a, b in zip(before, after, strict=True)) > 0  # it did change the head

    meta, old = json.loads((out / "finmon.json").read_text()), json.loads((shipped / "finmon.json").read_text())
    assert meta["model_version"].startswith("finmon_mtl-7-") and meta["model_version"] == after[0].model_version
    assert meta["refitted_from"] == old["model_version"] and meta["topic_head_refit"] == {"examples": len(examples), "C": 1.0}
    assert not (out / "metrics.json").exists()  # the new graph earns its own gate record
    assert meta["model_version"] in (repo / "config.pbtxt").read_text()


def test_a_class_the_examples_lack_is_never_predicted_and_two_classes_work_too():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    for labels in (np.where(x[:, 0] > 0, 4, 11), np.where(x[:, 0] > 0.5, 4, np.where(x[:, 1] > 0, 11, 2))):
        weight, bias = fit_head(x, labels, c=10.0)
        assert weight.shape == (len(TOPICS), 8) and bias.shape == (len(TOPICS),)
        predicted = (x @ weight.T + bias).argmax(1)
        assert set(predicted) <= set(labels) and (predicted == labels).mean() > 0.9
    with pytest.raises(ConfigError):
        fit_head(x, np.zeros(60, int))
