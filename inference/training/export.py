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
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from inference.errors import ConfigError
from inference.labels import ENTITY_TYPES, NER_TAGS, SENTIMENTS, TOPICS
from inference.training.model import MultiTaskModel, branch_layers
from inference.tensors import INPUTS, MODEL_NAME, OUTPUTS
from inference.tokenize import CASES, TOKENIZER_FILE, base_model_path
from inference.serving.optimize import int8_per_channel, is_int8_compute
from inference.serving.triton_config import gpu_config, write_config
from inference.serving.triton_repository import GPU_REPOSITORY, METADATA_FILE, version_metadata

log = logging.getLogger(__name__)
MIN_QUANT_SIZE = 4096  # smaller tensors (biases, LayerNorm) stay fp32


def round_weights(model: MultiTaskModel) -> MultiTaskModel:
    """Replace every 2-D weight by its int8 per-row reconstruction (in place); returns the model."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2 and p.numel() >= MIN_QUANT_SIZE:
                q, scale = int8_per_channel(p.numpy(), axis=0)
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
            q, scale = int8_per_channel(w, axis)
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


def _weights(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every float weight of a graph by name, in the order the graph first uses it; int8-stored ones expanded as
    their DequantizeLinear node does."""
    raw = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in raw and node.input[1] in raw:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            q, scale = raw.pop(node.input[0]), raw.pop(node.input[1])
            shape = [1] * q.ndim
            shape[axis] = -1
            raw[node.output[0]] = q.astype(np.float32) * scale.reshape(shape)
    ordered: dict[str, np.ndarray] = {}
    for node in proto.graph.node:
        for name in node.input:
            if name in raw and name not in ordered and raw[name].dtype == np.float32 and raw[name].size > 1:
                ordered[name] = raw[name]
    return ordered


def import_export(version_dir: Path) -> MultiTaskModel:
    """The torch model of an exported version, weights exactly as served (so a shipped model can be refitted when
    its training checkpoint is gone: ``finmon train --init models/triton/finmon_mtl/1``).

    ONNX renames and transposes what it folds, and the generated names change with the exporter's version, so the
    map is learnt, not assumed: a model of the same architecture with distinct random values in every parameter
    is exported here, and each of its weights is matched to the parameter (or transposed parameter) with the same
    values. The served graph's weights are then read by name where the name is a parameter's, the others in the order
    the graph uses them (the order of the forward pass), shape checked one by one.
    """
    version_dir = Path(version_dir)
    meta = version_metadata(version_dir)
    from transformers import BertConfig, BertModel

    if "encoder_config" in meta:
        config = BertConfig.from_dict(meta["encoder_config"])
    else:  # exports before the config was recorded: the base encoder, widened to the casing channel
        config = BertConfig.from_pretrained(str(base_model_path()))
        config.type_vocab_size = len(CASES)
    model = MultiTaskModel(BertModel(config, add_pooling_layer=False), **branch_layers(meta))
    served_proto = onnx.load(str(version_dir / "model.onnx"))
    if is_int8_compute(served_proto):  # its weights are folded into int8 MatMul operands: not read back (yet)
        raise ConfigError(f"{version_dir} is an int8-compute graph (`finmon optimize`); start from the version it "
                          f"was optimised from ({meta.get('optimized_from') or 'see its finmon.json'}) or from its "
                          "training checkpoint")
    params = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in params.values():
            p.copy_(torch.randn(p.shape, generator=generator))
    with tempfile.TemporaryDirectory() as tmp:
        probe = _weights(onnx.load(str(export_onnx(model, Path(tmp) / "probe.onnx", int8_weights=False))))
    served = _weights(served_proto)
    wrong = ValueError(f"{version_dir}/model.onnx does not hold this architecture's weights "
                       f"({len(served)} weights, expected {len(probe)})")
    if len(served) != len(probe):
        raise wrong
    # generated names ("onnx::MatMul_794") may recur with another meaning: only a parameter's name is trusted
    unnamed = iter([name for name in served if name not in params])
    loaded: set[str] = set()
    with torch.no_grad():
        for name, value in probe.items():
            source = name if name in params else next(unnamed, None)
            if source is None or served[source].shape != value.shape:
                raise wrong
            for pname, p in params.items():
                p_np = p.numpy()
                if p_np.shape == value.shape and np.array_equal(p_np, value):
                    w = served[source]
                elif p_np.ndim == 2 and p_np.shape[::-1] == value.shape and np.array_equal(p_np.T, value):
                    w = served[source].T
                else:
                    continue
                p.copy_(torch.tensor(np.ascontiguousarray(w, dtype=np.float32)))
                loaded.add(pname)
                break
    missing = sorted(set(params) - loaded)
    if missing:
        raise ValueError(f"{version_dir}/model.onnx: no weights found for {', '.join(missing[:5])}")
    return model.eval()


def load_model(path: Path) -> MultiTaskModel:
    """A training checkpoint (``model.pt``) or, failing that, an exported version folder (``model.onnx``)."""
    path = Path(path)
    if (path / "model.onnx").is_file() and not (path / "model.pt").is_file():
        return import_export(path)
    return MultiTaskModel.load(path)


def export(checkpoint: Path, repo: Path | None = None, version: int = 1, quantize: bool = False,
           keep_others: bool = False, int8_weights: bool = True) -> Path:
    """Write ``<repo>/finmon_mtl/<version>/`` (model.onnx, tokenizer.json, finmon.json) and the GPU config.pbtxt."""
    repo = Path(repo or GPU_REPOSITORY)
    model_dir = repo / MODEL_NAME
    out = model_dir / str(version)
    model = load_model(checkpoint)  # first: a bad checkpoint must not cost the versions already there
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
        "cases": CASES, "max_length": 128, "token_layers": len(model.token_layers),
        "sentiment_layers": len(model.sentiment_layers),
        "encoder_config": model.encoder.config.to_dict(),
    }
    summary = Path(checkpoint).parent / "summary.json"
    if summary.is_file():
        meta["training"] = json.loads(summary.read_text())
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=1))
    write_config(model_dir / "config.pbtxt", gpu_config(model_version=meta["model_version"]))
    log.info("exported %s to %s", meta["model_version"], out)
    return out
