"""`finmon optimize`: an exported ``model.onnx`` -> the fast CPU graph (int8 compute), without retraining.

``finmon export`` stores the weights as int8 behind ``DequantizeLinear`` nodes but computes in fp32: every run
expands ~20 M weights and multiplies in fp32. This step

1. folds the ``DequantizeLinear`` of every MatMul/Gemm weight back into an fp32 initializer (exact: the values
   are the int8 reconstruction the model was evaluated with); the embedding tables keep theirs (a Gather reads
   only the rows it needs, and they are most of the file's size);
2. optionally runs onnxruntime's transformer fusions (``fuse=True``: SkipLayerNorm, BiasGelu; the attention of
   torch's SDPA export is not matched by them);
3. quantizes the weight MatMuls with onnxruntime's dynamic quantization (int8 weights per output channel, int8
   activations per tensor at run time: ``DynamicQuantizeMatMul``, which uses VNNI / AVX-512 where the CPU has
   them). MatMuls between two activations (attention scores) stay fp32.

The result is about as big as the export (int8 weights) and is measured by ``finmon bench model`` and
``finmon eval`` before it is shipped (MODEL_CARD.md).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from inference.errors import ConfigError
from inference.tensors import MODEL_NAME

log = logging.getLogger(__name__)
WEIGHT_CONSUMERS = {"MatMul", "Gemm", "Transpose"}
HIDDEN_SIZE, NUM_HEADS = 384, 12  # all-MiniLM-L6-v2
METADATA_FILE = "finmon.json"  # as inference.serving.triton_repository (not imported: scripts/gpu-check stays light)


def fold_weight_dequantize(model: onnx.ModelProto, consumers_allowed: set[str] | None = WEIGHT_CONSUMERS) -> int:
    """Replace each constant DequantizeLinear feeding only ``consumers_allowed`` ops (None: any op) by its fp32
    result; returns how many."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, set[str]] = collections.defaultdict(set)
    for node in graph.node:
        for name in node.input:
            consumers[name].add(node.op_type)
    kept, folded = [], []
    for node in graph.node:
        if (node.op_type == "DequantizeLinear" and node.input[0] in inits and len(node.input) >= 2
                and consumers[node.output[0]]
                and (consumers_allowed is None or consumers[node.output[0]] <= consumers_allowed)):
            q = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            zero = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) if len(node.input) > 2 else 0.0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            if scale.ndim:
                shape[axis] = -1
            w = (q - np.reshape(zero, shape)) * scale.reshape(shape)
            folded.append(numpy_helper.from_array(w.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input}
    survivors = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(survivors + folded)
    return len(folded)


def weight_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes whose second input is a constant weight (the ones worth int8)."""
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def optimize_onnx(src: Path, dst: Path, *, quantize: bool = True, fuse: bool = False) -> dict[str, int]:
    """Write the optimised graph of ``src`` to ``dst``; returns what was done (counts)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    stats = {"folded_dequantize": fold_weight_dequantize(model)}
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(stage))
        if fuse:
            from onnxruntime.transformers import optimizer

            fused = optimizer.optimize_model(str(stage), model_type="bert", num_heads=NUM_HEADS,
                                             hidden_size=HIDDEN_SIZE, opt_level=1)
            stats.update({k: v for k, v in fused.get_fused_operator_statistics().items() if v})
            fused.save_model_to_file(str(stage))
            model = onnx.load(str(stage))
        if not quantize:
            onnx.save(model, str(dst))
            return stats
        nodes = weight_matmuls(model)
        stats["int8_matmuls"] = len(nodes)
        quantize_dynamic(str(stage), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         nodes_to_quantize=nodes, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return stats


def optimize_version(src: Path, out: Path, *, quantize: bool = True, fuse: bool = False) -> Path:
    """Copy an exported version folder to ``out`` with the optimised ``model.onnx`` and a new model_version."""
    src, out = Path(src), Path(out)
    if not (src / "model.onnx").is_file():
        raise ConfigError(f"{src} is not an exported version folder (no model.onnx)")
    if out.resolve() == src.resolve():
        raise ConfigError("optimize writes a new version folder; --out must differ from the source")
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.name != "model.onnx":
            shutil.copy(f, out / f.name)
    stats = optimize_onnx(src / "model.onnx", out / "model.onnx", quantize=quantize, fuse=fuse)
    meta_path = out / METADATA_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()[:8]
    number = out.name if out.name.isdigit() else "1"
    meta.update({"model_version": f"{MODEL_NAME}-{number}-{digest}", "optimized_from": meta.get("model_version", ""),
                 "dynamic_quantization": quantize, "transformer_fusion": fuse, "optimization": stats})
    meta_path.write_text(json.dumps(meta, indent=1))
    log.info("optimised %s -> %s (%s)", src, out, stats)
    return out


def optimize_in_place(version_dir: Path, *, fuse: bool = False) -> Path:
    """Optimise an exported version folder in place and re-stamp its repository's config.pbtxt with the new
    ``model_version`` (the Triton client checks that the served version matches the local tokenizer's)."""
    from inference.serving.triton_config import VERSION_PARAMETER, read_config, render, write_config

    version_dir = Path(version_dir)
    meta = json.loads((version_dir / METADATA_FILE).read_text()) if (version_dir / METADATA_FILE).is_file() else {}
    if meta.get("dynamic_quantization"):
        raise ConfigError(f"{version_dir} is already int8-compute (finmon.json: dynamic_quantization)")
    with tempfile.TemporaryDirectory(dir=version_dir.parent) as tmp:
        staged = optimize_version(version_dir, Path(tmp) / version_dir.name, fuse=fuse)
        for f in staged.iterdir():
            shutil.move(str(f), version_dir / f.name)
    config_path = version_dir.parent / "config.pbtxt"
    if config_path.is_file():
        config = read_config(config_path)
        config.parameters[VERSION_PARAMETER].string_value = json.loads((version_dir / METADATA_FILE).read_text())[
            "model_version"]
        write_config(config_path, render(config, "cpu" if config.backend == "python" else "gpu"))
    return version_dir


def fp32_math(model: onnx.ModelProto) -> int:
    """Undo the int8 compute of an optimised graph, in place: each ``MatMulInteger`` chain becomes
    ``DequantizeLinear`` (the same int8 weights) + fp32 ``MatMul``, the format ``finmon export`` writes.

    Used to measure "the same model exported as today" when only the optimised file is at hand; returns how
    many MatMuls were rewritten.
    """
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    new_nodes, rewritten = [], 0
    for node in graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            continue
        quantize = producer[node.input[0]]
        cast = consumers[node.output[0]][0]
        out_mul = consumers[cast.output[0]][0]
        scales = producer[next(i for i in out_mul.input if i != cast.output[0])]
        weight_scale = next(i for i in scales.input if i in inits)
        weight = f"{node.input[1]}_fp32"
        new_nodes += [
            onnx.helper.make_node("DequantizeLinear", [node.input[1], weight_scale, node.input[3]], [weight], axis=1),
            onnx.helper.make_node("MatMul", [quantize.input[0], weight], [out_mul.output[0]], name=node.name[:-6]),
        ]
        rewritten += 1
    replaced = {n.output[0] for n in new_nodes}
    kept = [n for n in graph.node if not set(n.output) & replaced] + new_nodes
    _drop_dead(graph, kept)
    return rewritten


def _drop_dead(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Keep the nodes (topologically sorted) and initializers the graph outputs need."""
    producer = {o: n for n in nodes for o in n.output}
    needed, todo, live = set(), [o.name for o in graph.output], []
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producer:
            todo.extend(i for i in producer[name].input if i)
    order: list[onnx.NodeProto] = []
    done: set[str] = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = [n for n in nodes if set(n.output) & needed]
    while pending:  # Kahn's order: a node after everything it reads
        ready = [n for n in pending if all(i in done for i in n.input)]
        if not ready:
            raise ConfigError("the graph has a cycle or a missing input")
        for n in ready:
            order.append(n)
            done.update(n.output)
        pending = [n for n in pending if n not in ready]
    live = [i for i in graph.initializer if i.name in needed]
    del graph.node[:]
    graph.node.extend(order)
    del graph.initializer[:]
    graph.initializer.extend(live)
