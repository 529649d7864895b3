"""Recipe options against class imbalance: inverse-sqrt class weights and label smoothing in the text losses
(tiny random model, one batch). Needs the train extra (torch)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inference.training.batches import TaskData  # noqa: E402
from inference.training.data import TextExample  # noqa: E402
from inference.training.model import MultiTaskModel  # noqa: E402
from inference.training.train import class_weights, loss_of  # noqa: E402
from inference.tokenize import TextTokenizer, base_model_path  # noqa: E402


def test_inverse_sqrt_weights_favour_small_classes_and_keep_the_mean():
    labels = [0] * 100 + [1] * 25
    w = class_weights(labels, 3, "inverse_sqrt")
    assert w[1] / w[0] == pytest.approx(2.0) and w[2] == 0.0  # 4x fewer examples -> 2x the weight; absent -> 0
    assert float((w[0] * 100 + w[1] * 25) / 125) == pytest.approx(1.0)  # mean weight per example stays 1
    assert class_weights(labels, 3, "none") is None
    with pytest.raises(ValueError):
        class_weights(labels, 3, "balanced")


def test_the_loss_uses_the_weights_and_the_smoothing():
    torch.manual_seed(0)
    model = MultiTaskModel.tiny().eval()
    tok = TextTokenizer.from_dir(base_model_path())
    examples = [TextExample(f"tweet number {i} about markets", 0 if i < 6 else 5, "twitter_topic") for i in range(8)]
    tb = TaskData("topic", examples).make(tok, examples)
    logits = model(*(torch.from_numpy(a) for a in tb.batch.arrays().values()))[0]
    labels = torch.from_numpy(tb.labels)
    w = class_weights(tb.labels.tolist(), 20, "inverse_sqrt")
    with torch.no_grad():
        weighted = loss_of(model, tb, {"topic": w})
        expected = torch.nn.functional.cross_entropy(logits, labels, weight=w)
        plain = loss_of(model, tb)
        smoothed = loss_of(model, tb, label_smoothing=0.1)
    assert torch.allclose(weighted, expected) and not torch.allclose(weighted, plain)
    assert torch.allclose(smoothed, torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))
    assert not torch.allclose(smoothed, plain)
