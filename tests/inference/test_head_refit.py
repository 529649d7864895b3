"""`finmon model refit-head`: the new version computes the fitted regression (hard or soft targets), and nothing
else moved."""

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
from inference.training.head_refit import fit_head, pooled_features, refit_head

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
    out = refit_head(shipped, repo / "7", "topic", examples, c=1.0)

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


def test_soft_targets_are_fitted_as_probabilities():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    labels = np.where(x[:, 0] > 0.3, 2, np.where(x[:, 1] > 0, 0, 1))
    hard = fit_head(x, labels, c=1.0, classes=3)
    one_hot = fit_head(x, np.eye(3)[labels], c=1.0, classes=3)  # a one-hot matrix is the same problem as labels
    for a, b in zip(hard, one_hot, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)

    def probs(head: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        z = x @ head[0].T + head[1]
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    # every text's target is 60 % its class, 40 % spread: the fitted head must not be sure of anything
    soft = 0.6 * np.eye(3)[labels] + 0.4 / 3
    confident, hedged = probs(fit_head(x, np.eye(3)[labels], c=100.0, classes=3)), probs(fit_head(x, soft, c=100.0, classes=3))
    assert confident.max(1).mean() > 0.9 and 0.55 < hedged.max(1).mean() < 0.8
    assert (hedged.argmax(1) == labels).mean() > 0.9
    with pytest.raises(ConfigError):
        fit_head(x, soft[:, :2], classes=3)


def test_a_sentiment_refit_with_teacher_labels_leaves_topic_and_entities_alone(shipped, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from inference.labels import SENTIMENTS
    from inference.training.recipe import add_soft_labels

    tweets = D.read_sentiment_csv(DATA / "twitter_financial_news_sentiment/sent_train.csv")
    train, dev = tweets[:60:2] + tweets[300:360:2], tweets[500:510]
    others = D.read_topic_csv(DATA / "twitter_financial_news_topic/topic_train.csv")[::400]  # no sentiment label
    teacher = [0.2, 0.3, 0.5]
    rows = [{"text": e.text, "sentiment": teacher} for e in train[:10] + others]
    splits = {"sentiment": (train, dev)}
    add_soft_labels(splits, rows, 0.5)
    examples = splits["sentiment"][0]
    assert len(examples) == len(train) + len(others) and sum(e.source == "teacher" for e in examples) == len(others)

    repo = tmp_path / "finmon_mtl"
    repo.mkdir()
    shutil.copy(shipped.parent / "config.pbtxt", repo / "config.pbtxt")
    out = refit_head(shipped, repo / "8", "sentiment", examples, c=1.0)
    texts = [e.text for e in train[:20]] + ["Shares of Acme plunge after guidance cut", ""]
    before, after = OnnxPredictor(shipped).predict(texts), OnnxPredictor(out).predict(texts)

    # the reference: each text once per class, weighted by its target probability
    graph, tok = onnx.load(str(shipped / "model.onnx")), TextTokenizer.from_dir(shipped)
    x = pooled_features(graph, tok, [e.text for e in examples], task="sentiment")
    targets = np.stack([np.asarray(e.soft) if e.soft else np.eye(3)[e.label] for e in examples])
    assert targets[0].tolist() == pytest.approx([0.5 * (k == train[0].label) + 0.5 * teacher[k] for k in range(3)])
    rows_, cls = np.nonzero(targets > 0)
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(x[rows_], cls, sample_weight=targets[rows_, cls])
    probs = reference.predict_proba(pooled_features(graph, tok, texts, task="sentiment"))
    for k, (a, b) in enumerate(zip(before, after, strict=True)):
        assert b.topic_probs == a.topic_probs and b.entities == a.entities
        for j, label in enumerate(reference.classes_):
            assert b.sentiment_probs[SENTIMENTS[label]] == pytest.approx(probs[k, j], abs=1e-4)
    assert any(a.sentiment_probs != b.sentiment_probs for a, b in zip(before, after, strict=True))
    meta = json.loads((out / "finmon.json").read_text())
    assert meta["sentiment_head_refit"] == {"examples": len(examples), "C": 1.0, "soft_labels": "given"}
