"""`finmon model refit-head`: a new version whose topic or sentiment head is refitted on the frozen encoder.

The text heads (one linear map each of the mean-pooled encoder output) were trained with the encoder, for three
epochs, with dropout, by plain cross-entropy: the topic head's small classes are under-fitted (MODEL_CARD.md, "Why
the small topics lose"). A multinomial logistic regression with an L2 penalty, fitted to convergence on the served
graph's own pooled features of the recipe's train split, separates them better (topic dev macro-F1 0.822 ->
0.881). With ``soft_labels`` (`finmon soft-label`'s file) the regression learns the distillation teacher's
probabilities too (``recipe.add_soft_labels``: a gold text's target is ``(1 - w) * label + w * teacher``, and the
other set's train tweets join with the teacher's alone): a soft target is fitted as one weighted row per class.
Only the head's two initialisers change, so the other head and the entities stay bit-identical, and the new graph
computes exactly what the regression computes (its softmax is the regression's probability).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from inference.errors import ConfigError
from inference.labels import SENTIMENTS, TOPICS
from inference.serving.optimize import derive_version
from inference.tensors import OUTPUTS
from inference.tokenize import TextTokenizer
from inference.training.data import TextExample

log = logging.getLogger(__name__)

HEADS = {"topic": (OUTPUTS[0].name, len(TOPICS)), "sentiment": (OUTPUTS[1].name, len(SENTIMENTS))}
# inverse L2 strength per head, each chosen by 5-fold cross-validation on its train split (MODEL_CARD.md)
DEFAULT_C = {"topic": 0.03, "sentiment": 0.1}


def head_gemm(model: onnx.ModelProto, task: str = "topic") -> tuple[str, str, str]:
    """(pooled features, weight, bias) tensor names of the Gemm that computes the task's logits (weight [K, H])."""
    output = HEADS[task][0]
    for node in model.graph.node:
        if output in node.output:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type != "Gemm" or attrs.get("transB") != 1 or attrs.get("transA", 0) != 0:
                raise ConfigError(f"{output} is not computed by Gemm(features, W^T, b) in this graph")
            return node.input[0], node.input[1], node.input[2]
    raise ConfigError(f"no {output} in this graph")


def pooled_features(model: onnx.ModelProto, tokenizer: TextTokenizer, texts: Sequence[str],
                    batch_size: int = 64, task: str = "topic") -> np.ndarray:
    """The task head's input for each text, from the graph itself (texts sorted by length, batches padded alone)."""
    import onnxruntime as ort

    features, _, _ = head_gemm(model, task)
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


def fit_head(features: np.ndarray, targets: np.ndarray | Sequence[int], c: float = DEFAULT_C["topic"],
             classes: int = len(TOPICS)) -> tuple[np.ndarray, np.ndarray]:
    """(weight [classes, H], bias [classes]) of an L2 multinomial logistic regression. ``targets`` are class
    indices, or an [N, classes] matrix of probabilities (a soft target: one row per class, weighted by its
    probability). A class no target reaches gets a weight row of zeros and a bias far below the others (never
    predicted), so the head keeps all its outputs."""
    from sklearn.linear_model import LogisticRegression

    targets = np.asarray(targets)
    if targets.ndim == 2:
        if targets.shape != (len(features), classes):
            raise ConfigError(f"soft targets have shape {targets.shape}, expected {(len(features), classes)}")
        rows, labels = np.nonzero(targets > 1e-6)
        x, y, w = features[rows], labels, targets[rows, labels]
    else:
        x, y, w = features, targets, None
    if len(set(y.tolist())) < 2:
        raise ConfigError("a head needs examples of at least two classes")
    fitted = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=w)
    weight = np.zeros((classes, features.shape[1]), np.float32)
    bias = np.full(classes, -30.0, np.float32)
    if len(fitted.classes_) == 2:  # sklearn's binary case has one row: the two classes' logits are -z/2, +z/2
        coef = np.vstack([-fitted.coef_[0] / 2, fitted.coef_[0] / 2])
        intercept = np.array([-fitted.intercept_[0] / 2, fitted.intercept_[0] / 2])
    else:
        coef, intercept = fitted.coef_, fitted.intercept_
    weight[fitted.classes_] = coef
    bias[fitted.classes_] = intercept
    return weight, bias


def head_targets(examples: Sequence[TextExample], classes: int) -> np.ndarray:
    """Class indices, or, when any example carries a teacher's soft target, an [N, classes] probability matrix."""
    if not any(e.soft for e in examples):
        return np.asarray([e.label for e in examples])
    return np.stack([np.asarray(e.soft) if e.soft else np.eye(classes)[e.label] for e in examples])


def refit_head(src: Path, out: Path, task: str = "topic", examples: Sequence[TextExample] | None = None, *,
               c: float | None = None, soft_labels: Path | None = None, soft_weight: float = 0.5,
               restamp: bool = True) -> Path:
    """Write version folder ``out``: ``src`` with the task's head refitted on ``examples`` (default: the recipe's
    train split of the task, never its dev split, with the teacher's ``soft_labels`` when given)."""
    if task not in HEADS:
        raise ConfigError(f"no {task!r} head to refit: topic or sentiment")
    src, c = Path(src), DEFAULT_C[task] if c is None else c

    def write(model_in: Path, model_out: Path) -> dict:  # called once derive_version has checked the folders
        nonlocal examples
        if examples is None:
            from inference.training.recipe import TrainConfig, load_splits

            cfg = TrainConfig(tasks=(task,), soft_labels=soft_labels, soft_weight=soft_weight)
            examples = load_splits(cfg)[task][0]
        if not examples:
            raise ConfigError(f"no training examples for the {task} head")
        model = onnx.load(str(model_in))
        _, w_name, b_name = head_gemm(model, task)
        x = pooled_features(model, TextTokenizer.from_dir(src), [e.text for e in examples], task=task)
        weight, bias = fit_head(x, head_targets(examples, HEADS[task][1]), c, HEADS[task][1])
        inits = {i.name: i for i in model.graph.initializer}
        for name, value in ((w_name, weight), (b_name, bias)):
            if tuple(inits[name].dims) != value.shape:
                raise ConfigError(f"{name} has shape {tuple(inits[name].dims)}, the refit {value.shape}")
            inits[name].CopyFrom(numpy_helper.from_array(value, name))
        onnx.save(model, str(model_out))
        log.info("%s head refitted on %d examples (C=%g): %s -> %s", task, len(examples), c, src, out)
        record: dict = {"examples": len(examples), "C": c}
        if any(e.soft for e in examples):
            record |= ({"soft_labels": Path(soft_labels).name, "soft_weight": soft_weight} if soft_labels
                       else {"soft_labels": "given"})
        return {f"{task}_head_refit": record}

    return derive_version(src, out, write, "refitted_from", restamp=restamp)
