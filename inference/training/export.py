"""`finmon export`: a training checkpoint -> one ONNX graph with three outputs, in a Triton model repository.

Size: the fp32 encoder is ~90 MB, over the 40 MB the repository may carry. Weights are therefore STORED as int8
(symmetric, one scale per output channel / embedding row) and expanded by ``DequantizeLinear`` nodes, while all
arithmetic stays fp32. Before export the same rounding is applied to the torch weights (``round_weights``), so the
ONNX graph computes exactly what that torch model computes (parity tested to 1e-3), and the accuracy cost of the
rounding is measured on the dev splits (MODEL_CARD.md). ``--quantize`` (``--optimize``) then writes the int8-compute
graph of ``inference.serving.optimize`` (what ``finmon optimize`` does to an existing export).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from inference.labels import ENTITY_TYPES, NER_TAGS, SENTIMENTS, TOPICS
from inference.training.model import MultiTaskModel
from inference.tensors import INPUTS, MODEL_NAME, OUTPUTS
from inference.tokenize import CASES, TOKENIZER_FILE
from inference.serving.triton_config import gpu_config, write_config
from inference.serving.triton_repository import GPU_REPOSITORY, METADATA_FILE

log = logging.getLogger(__name__)
MIN_QUANT_SIZE = 4096  # smaller tensors (biases, LayerNorm) stay fp32


def _per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scale = np.abs(w).max(axis=reduce, keepdims=True).astype(np.float32) / np.float32(127.0)
    scale[scale == 0] = np.float32(1.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.reshape(-1)


def round_weights(model: MultiTaskModel) -> MultiTaskModel:
    """Replace every 2-D weight by its int8 per-row reconstruction (in place); returns the model."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 and p.numel() >= MIN_QUANT_SIZE:
                q, scale = _per_channel(p.numpy(), axis=0)
                p.copy_(torch.from_numpy(q.astype(np.float32) * scale[:, None]))
    return model


def _store_int8(graph: onnx.GraphProto) -> None:
    """Store each big 2-D initializer as int8 + scale behind a DequantizeLinear node (axis found exactly)."""
    kept, nodes = [], []
    for init in graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim != 2 or w.size < MIN_QUANT_SIZE or w.dtype != np.float32:
            kept.append(init)
            continue
        best = None
        for axis in (0, 1):
            q, scale = _per_channel(w, axis)
            shape = [-1, 1] if axis == 0 else [1, -1]
            err = float(np.abs(q.astype(np.float32) * scale.reshape(shape) - w).max())
            if best is None or err < best[0]:
                best = (err, axis, q, scale)
        err, axis, q, scale = best
        if err > 1e-6 * float(np.abs(w).max()):
            log.warning("initializer %s is not int8-representable (max error %.3g); rounding it", init.name, err)
        name = init.name
        kept += [numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(scale, name + "_scale")]
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale"], [name], axis=axis))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in reversed(nodes):
        graph.node.insert(0, node)


def export_onnx(model: MultiTaskModel, path: Path, int8_weights: bool = True) -> Path:
    model.eval()
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in INPUTS)
    dynamic = {s.name: {0: "batch", 1: "sequence"} for s in INPUTS}
    dynamic.update({"topic_logits": {0: "batch"}, "sentiment_logits": {0: "batch"},
                    "token_logits": {0: "batch", 1: "sequence"}})
    torch.onnx.export(model, example, str(path), input_names=[s.name for s in INPUTS],
                      output_names=[s.name for s in OUTPUTS], dynamic_axes=dynamic, opset_version=17, dynamo=False)
    if int8_weights:
        proto = onnx.load(str(path))
        _store_int8(proto.graph)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
    return path


def export(checkpoint: Path, repo: Path | None = None, version: int = 1, quantize: bool = False,
           keep_others: bool = False, int8_weights: bool = True) -> Path:
    """Write ``<repo>/finmon_mtl/<version>/`` (model.onnx, tokenizer.json, finmon.json) and the GPU config.pbtxt."""
    repo = Path(repo or GPU_REPOSITORY)
    model_dir = repo / MODEL_NAME
    out = model_dir / str(version)
    model = MultiTaskModel.load(checkpoint)  # first: a bad checkpoint must not cost the versions already there
    if not keep_others and model_dir.is_dir():
        for child in model_dir.iterdir():
            if child.is_dir() and child.name.isdigit():
                shutil.rmtree(child)
    out.mkdir(parents=True, exist_ok=True)
    if int8_weights:
        round_weights(model)
    onnx_path = export_onnx(model, out / "model.onnx", int8_weights)
    if quantize:
        from inference.serving.optimize import optimize_onnx

        tmp = out / "model.export.onnx"
        onnx_path.rename(tmp)
        optimize_onnx(tmp, onnx_path)
        tmp.unlink()
    shutil.copy(Path(checkpoint) / TOKENIZER_FILE, out / TOKENIZER_FILE)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:8]
    meta = {
        "model_version": f"{MODEL_NAME}-{version}-{digest}", "created": datetime.now(timezone.utc).isoformat(),
        "checkpoint": str(checkpoint), "int8_weights": int8_weights, "dynamic_quantization": quantize,
        "topics": TOPICS, "sentiments": SENTIMENTS, "ner_tags": NER_TAGS, "entity_types": ENTITY_TYPES,
        "cases": CASES, "max_length": 128,
    }
    summary = Path(checkpoint).parent / "summary.json"
    if summary.is_file():
        meta["training"] = json.loads(summary.read_text())
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=1))
    write_config(model_dir / "config.pbtxt", gpu_config(model_version=meta["model_version"]))
    log.info("exported %s to %s", meta["model_version"], out)
    return out
