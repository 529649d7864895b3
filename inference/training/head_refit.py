"""`finmon model refit-topic-head`: a new version whose topic head is refitted on the frozen encoder's features.

The topic head (one linear map of the mean-pooled encoder output) was trained with the encoder, for three epochs,
with dropout, by plain cross-entropy: its small classes are under-fitted (MODEL_CARD.md, "Why the small topics
lose"). A multinomial logistic regression with an L2 penalty, fitted to convergence on the served graph's own
pooled features of the recipe's topic train split, separates them better (dev macro-F1 0.822 -> 0.881). Only the
head's two initialisers change, so sentiment and entities stay bit-identical, and the new graph computes exactly
what the regression computes (its softmax is the regression's probability).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from inference.errors import ConfigError
from inference.labels import TOPICS
from inference.serving.optimize import derive_version
from inference.tensors import OUTPUTS
from inference.tokenize import TextTokenizer
from inference.training.data import TextExample

log = logging.getLogger(__name__)

TOPIC_OUTPUT = OUTPUTS[0].name  # topic_logits
DEFAULT_C = 0.03  # inverse L2 strength, chosen by 5-fold cross-validation on the train split (MODEL_CARD.md)


def topic_head(model: onnx.ModelProto) -> tuple[str, str, str]:
    """(pooled features, weight, bias) tensor names of the Gemm that computes ``topic_logits`` (weight [20, H])."""
    for node in model.graph.node:
        if TOPIC_OUTPUT in node.output:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type != "Gemm" or attrs.get("transB") != 1 or attrs.get("transA", 0) != 0:
                raise ConfigError(f"{TOPIC_OUTPUT} is not computed by Gemm(features, W^T, b) in this graph")
            return node.input[0], node.input[1], node.input[2]
    raise ConfigError(f"no {TOPIC_OUTPUT} in this graph")


def pooled_features(model: onnx.ModelProto, tokenizer: TextTokenizer, texts: Sequence[str],
                    batch_size: int = 64) -> np.ndarray:
    """The topic head's input for each text, from the graph itself (texts sorted by length, batches padded alone)."""
    import onnxruntime as ort

    features, _, _ = topic_head(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(features, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    out: np.ndarray | None = None
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        [rows] = session.run([features], tokenizer.encode_texts([texts[i] for i in idx]).arrays())
        if out is None:
            out = np.zeros((len(texts), rows.shape[1]), np.float32)
        out[idx] = rows
    return out if out is not None else np.zeros((0, 0), np.float32)


def fit_head(features: np.ndarray, labels: Sequence[int], c: float = DEFAULT_C) -> tuple[np.ndarray, np.ndarray]:
    """(weight [20, H], bias [20]) of an L2 multinomial logistic regression; a class absent from ``labels`` gets
    a weight row of zeros and a bias far below the others (never predicted), so the head keeps all 20 outputs."""
    from sklearn.linear_model import LogisticRegression

    if len(set(np.asarray(labels).tolist())) < 2:
        raise ConfigError("the topic head needs examples of at least two topics")
    fitted = LogisticRegression(C=c, max_iter=5000).fit(features, np.asarray(labels))
    weight = np.zeros((len(TOPICS), features.shape[1]), np.float32)
    bias = np.full(len(TOPICS), -30.0, np.float32)
    if len(fitted.classes_) == 2:  # sklearn's binary case has one row: the two classes' logits are -z/2, +z/2
        coef = np.vstack([-fitted.coef_[0] / 2, fitted.coef_[0] / 2])
        intercept = np.array([-fitted.intercept_[0] / 2, fitted.intercept_[0] / 2])
    else:
        coef, intercept = fitted.coef_, fitted.intercept_
    weight[fitted.classes_] = coef
    bias[fitted.classes_] = intercept
    return weight, bias


def refit_topic_head(src: Path, out: Path, examples: Sequence[TextExample] | None = None, *,
                     c: float = DEFAULT_C, restamp: bool = True) -> Path:
    """Write version folder ``out``: ``src`` with its topic head refitted on ``examples`` (default: the recipe's
    topic train split, never its dev split)."""
    src = Path(src)

    def write(model_in: Path, model_out: Path) -> dict:  # called once derive_version has checked the folders
        nonlocal examples
        if examples is None:
            from inference.training.recipe import TrainConfig, load_splits

            examples = load_splits(TrainConfig(tasks=("topic",)))["topic"][0]
        if not examples:
            raise ConfigError("no training examples for the topic head")
        model = onnx.load(str(model_in))
        _, w_name, b_name = topic_head(model)
        x = pooled_features(model, TextTokenizer.from_dir(src), [e.text for e in examples])
        weight, bias = fit_head(x, [e.label for e in examples], c)
        inits = {i.name: i for i in model.graph.initializer}
        for name, value in ((w_name, weight), (b_name, bias)):
            if tuple(inits[name].dims) != value.shape:
                raise ConfigError(f"{name} has shape {tuple(inits[name].dims)}, the refit {value.shape}")
            inits[name].CopyFrom(numpy_helper.from_array(value, name))
        onnx.save(model, str(model_out))
        log.info("topic head refitted on %d examples (C=%g): %s -> %s", len(examples), c, src, out)
        return {"topic_head_refit": {"examples": len(examples), "C": c}}

    return derive_version(src, out, write, "refitted_from", restamp=restamp)
