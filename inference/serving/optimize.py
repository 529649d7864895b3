"""`finmon optimize`: an exported ``model.onnx`` -> the fast CPU graph (int8 compute), without retraining.

``finmon export`` stores the weights as int8 behind ``DequantizeLinear`` nodes but computes in fp32: every run
expands ~20 M weights and multiplies in fp32. This step

1. folds the ``DequantizeLinear`` of every MatMul/Gemm weight back into an fp32 initializer (exact: the values
   are the int8 reconstruction the model was evaluated with);
2. optionally runs onnxruntime's transformer fusions (``fuse=True``: SkipLayerNorm, BiasGelu; the attention of
   torch's SDPA export is not matched by them);
3. quantizes the weight MatMuls to int8 compute with one activation scale per ROW (``quantize_rows``: int8
   weights per output column as stored, uint8 activations scaled per token at run time, GELU outputs shifted
   onto all 256 steps, onnxruntime's ``MatMulIntegerToFloat``, which uses VNNI / AVX-512 where the CPU has
   them), so that a text's outputs do not depend on the other texts of its batch. MatMuls between two
   activations (attention scores) stay fp32;
4. reads the int8 embedding tables row by row (``gather_before_dequantize``) instead of expanding them whole.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference.errors import ConfigError
from inference.tensors import MODEL_NAME

log = logging.getLogger(__name__)
WEIGHT_CONSUMERS = {"MatMul", "Gemm", "Transpose"}
HIDDEN_SIZE, NUM_HEADS = 384, 12  # all-MiniLM-L6-v2
GELU_OPS = {"Erf", "Gelu", "BiasGelu", "FastGelu"}
GELU_STOPS = {"MatMul", "Gemm", "LayerNormalization", "SkipLayerNormalization", "Softmax"}  # the search for a GELU does not go past these
GELU_FLOOR = 0.17  # min of x * Phi(x) is -0.16997 (at x = -0.75): GELU outputs + 0.17 are >= 0
METADATA_FILE = "finmon.json"  # as inference.serving.triton_repository (not imported: scripts/gpu-check stays light)
RECORD_FILE = "metrics.json"  # the promotion gate's record of a version (inference.evaluation.promotion)


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


def quantize_rows(model: onnx.ModelProto, nodes: list[str]) -> int:
    """Rewrite the named weight MatMuls, in place, to int8 compute with ONE activation scale per row (per token).

    Each distinct input ``x`` (Q, K and V share theirs) is quantized once: ``s = max|x| / 127`` over its last axis,
    ``q = round(x / s) + 128`` as uint8 (QuantizeLinear per row of the 2-D view). Each MatMul becomes onnxruntime's
    ``MatMulIntegerToFloat`` (u8 x s8 -> int32 -> x the weight's per-column scale, VNNI kernels) and a ``Mul`` by
    ``s``. A row's result depends only on that row: a text scores the same alone, padded, or in any batch, which
    onnxruntime's own dynamic quantization (one scale over the whole batch) does not give. A GELU's output is never
    below -0.17, so it is quantized as ``x + 0.17`` on all 256 steps (``s = max / 255``, zero point 0), and
    ``0.17 * colsum(W)`` is subtracted after the MatMul (exact). Returns how many.

    The row scales are NOT folded into ``MatMulIntegerToFloat``'s activation scale: its CPU kernel reads one
    element of it (onnxruntime 1.32), which is also why the graph must not contain ``MatMulInteger -> Cast ->
    Mul(row x column scales)``, a pattern onnxruntime fuses into that kernel, silently wrong."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    targets = set(nodes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    consts = {"rowq_eps": np.array(1e-12, np.float32), "rowq_inv127": np.array(1 / 127, np.float32),
              "rowq_inv255": np.array(1 / 255, np.float32), "rowq_gelu": np.array(GELU_FLOOR, np.float32),
              "rowq_zero": np.array(0.0, np.float32), "rowq_128": np.array(128.0, np.float32),
              "rowq_one": np.array(1.0, np.float32), "rowq_flat": np.array([-1], np.int64),
              "rowq_last": np.array([-1], np.int64), "rowq_zp": np.array(128, np.uint8),
              "rowq_zp0": np.array(0, np.uint8)}
    quantized: dict[str, tuple[str, str, bool]] = {}  # activation -> (uint8 rows, row scales [..., 1], shifted)
    out, added, replaced = [], [], set()
    for node in graph.node:
        if node.name not in targets:
            out.append(node)
            continue
        x, weight = node.input
        w = numpy_helper.to_array(inits[weight]).astype(np.float32)
        if x not in quantized:
            a, shifted = f"{x}_rowq", _after_gelu(x, producer)
            consts[f"rowq_k{w.shape[0]}"] = np.array([-1, w.shape[0]], np.int64)
            if shifted:  # GELU >= -0.17: x + 0.17 >= 0 takes all 256 uint8 steps (zero point 0)
                out += [helper.make_node("Add", [x, "rowq_gelu"], [a + "_in"]),
                        _reduce("ReduceMax", a + "_in", a + "_hi", opset),
                        helper.make_node("Max", [a + "_hi", "rowq_eps"], [a + "_max"]),
                        helper.make_node("Mul", [a + "_max", "rowq_inv255"], [a + "_s"])]
                zero_point = "rowq_zero"
            else:  # symmetric: round(x / s) + 128
                out += [helper.make_node("Identity", [x], [a + "_in"]),
                        _reduce("ReduceMax", x, a + "_hi", opset), _reduce("ReduceMin", x, a + "_lo", opset),
                        helper.make_node("Neg", [a + "_lo"], [a + "_nlo"]),
                        helper.make_node("Max", [a + "_hi", a + "_nlo", "rowq_eps"], [a + "_max"]),
                        helper.make_node("Mul", [a + "_max", "rowq_inv127"], [a + "_s"])]
                zero_point = "rowq_128"
            out += [helper.make_node("Reshape", [a + "_s", "rowq_flat"], [a + "_s1"]),
                    helper.make_node("Mul", [a + "_s1", "rowq_zero"], [a + "_z"]),  # zero points, one per row
                    helper.make_node("Add", [a + "_z", zero_point], [a + "_zf"]),
                    helper.make_node("Cast", [a + "_zf"], [a + "_zp"], to=TensorProto.UINT8),
                    helper.make_node("Reshape", [a + "_in", f"rowq_k{w.shape[0]}"], [a + "_x2"]),
                    helper.make_node("QuantizeLinear", [a + "_x2", a + "_s1", a + "_zp"], [a + "_q2"], axis=0),
                    helper.make_node("Shape", [x], [a + "_shape"]),
                    helper.make_node("Reshape", [a + "_q2", a + "_shape"], [a + "_q"])]
            quantized[x] = (a + "_q", a + "_s", shifted)
        q, s, shifted = quantized[x]
        wq, ws = int8_per_channel(w, axis=1)  # per output column
        b = node.name or node.output[0]
        added += [numpy_helper.from_array(wq, b + "_wq"), numpy_helper.from_array(ws, b + "_ws"),
                  numpy_helper.from_array(np.zeros(wq.shape[1], np.int8), b + "_wzp")]
        replaced.add(weight)
        out.append(helper.make_node("MatMulIntegerToFloat", [q, b + "_wq", "rowq_one", b + "_ws",
                                                             "rowq_zp0" if shifted else "rowq_zp", b + "_wzp"],
                                    [b + "_f"], name=b + "_int8", domain="com.microsoft"))
        if shifted:  # (x + c) W - c * colsum(W) = x W
            correction = -GELU_FLOOR * (wq.astype(np.float32) * ws).sum(axis=0)
            added.append(numpy_helper.from_array(correction.astype(np.float32), b + "_shift"))
            out += [helper.make_node("Mul", [b + "_f", s], [b + "_r"], name=b + "_rows"),
                    helper.make_node("Add", [b + "_r", b + "_shift"], [node.output[0]], name=b + "_unshift")]
        else:
            out.append(helper.make_node("Mul", [b + "_f", s], [node.output[0]], name=b + "_rows"))
    still_read = {name for n in out for name in n.input}
    kept = [i for i in graph.initializer if i.name not in replaced or i.name in still_read]
    del graph.node[:]
    graph.node.extend(out)
    del graph.initializer[:]
    graph.initializer.extend(kept + added + [numpy_helper.from_array(v, k) for k, v in consts.items() if k in still_read])
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(targets)


def _after_gelu(x: str, producer: dict[str, onnx.NodeProto], depth: int = 4) -> bool:
    """Whether ``x`` is a GELU's output: a GELU op, or an ``Erf`` at most ``depth`` producers up."""
    frontier = [producer[x]] if x in producer else []
    for _ in range(depth):
        if any(n.op_type in GELU_OPS for n in frontier):
            return True
        frontier = [producer[i] for n in frontier if n.op_type not in GELU_STOPS for i in n.input if i in producer]
    return False


def _reduce(op: str, x: str, y: str, opset: int) -> onnx.NodeProto:
    """``op`` over the last axis, kept (axes is an attribute before opset 18, an input from 18 on)."""
    if opset >= 18:
        return helper.make_node(op, [x, "rowq_last"], [y], keepdims=1)
    return helper.make_node(op, [x], [y], axes=[-1], keepdims=1)


def int8_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per index of ``axis`` (max |w| / 127): the rounding ``finmon export`` stores
    and ``quantize_rows`` computes with (exact again for weights stored that way). Returns (int8, 1-D scales)."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scale = np.abs(w).max(axis=reduce, keepdims=True).astype(np.float32) / np.float32(127.0)
    scale[scale == 0] = np.float32(1.0)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale.reshape(-1)


def _readers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """The nodes that read each tensor name."""
    readers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    return readers


def gather_before_dequantize(model: onnx.ModelProto) -> int:
    """Embedding tables stored int8 per row: read the rows first, then expand only those (in place).

    ``DequantizeLinear(table) -> Gather(ids)`` expands the whole 30k x 384 table at every run (10 % of the
    export's time); ``Gather(int8 table) * Gather(scale)`` expands B x T rows, with the same values. Returns
    how many tables."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    readers = _readers(graph)
    rewritten: dict[str, list[onnx.NodeProto]] = {}
    drop: set[int] = set()
    tables = 0
    for node in graph.node:
        users = readers[node.output[0]] if node.op_type == "DequantizeLinear" else []
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if (not users or any(u.op_type != "Gather" or u.input[0] != node.output[0] for u in users)
                or node.input[0] not in inits or len(node.input) > 2 or axis != 0
                or len(inits[node.input[0]].dims) != 2):
            continue
        drop.add(id(node))
        tables += 1
        for i, gather in enumerate(users):
            g, ids = f"{node.output[0]}_rows{i}", gather.input[1]
            rewritten[gather.output[0]] = [
                helper.make_node("Gather", [node.input[0], ids], [g + "_q"]),
                helper.make_node("Cast", [g + "_q"], [g + "_f"], to=TensorProto.FLOAT),
                helper.make_node("Gather", [node.input[1], ids], [g + "_s"]),
                helper.make_node("Unsqueeze", [g + "_s", "rowq_last"], [g + "_s1"]),
                helper.make_node("Mul", [g + "_f", g + "_s1"], [gather.output[0]])]
            drop.add(id(gather))
    if not rewritten:
        return 0
    nodes = []
    for node in graph.node:
        if node.op_type == "Gather" and node.output[0] in rewritten:
            nodes += rewritten[node.output[0]]
        elif id(node) not in drop:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if "rowq_last" not in inits:
        graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), "rowq_last"))
    return tables


def is_int8_compute(model: onnx.ModelProto) -> bool:
    """Whether the graph is this module's output (its weight MatMuls run in int8)."""
    return any(n.op_type == "MatMulIntegerToFloat" for n in model.graph.node)


def optimize_onnx(src: Path, dst: Path, *, quantize: bool = True, fuse: bool = False) -> dict[str, int]:
    """Write the optimised graph of ``src`` to ``dst``; returns what was done (counts)."""
    model = onnx.load(str(src))
    stats = {"folded_dequantize": fold_weight_dequantize(model)}
    if fuse:
        from onnxruntime.transformers import optimizer

        with tempfile.TemporaryDirectory() as tmp:
            stage = Path(tmp) / "fp32.onnx"
            onnx.save(model, str(stage))
            fused = optimizer.optimize_model(str(stage), model_type="bert", num_heads=NUM_HEADS,
                                             hidden_size=HIDDEN_SIZE, opt_level=1)
            stats.update({k: v for k, v in fused.get_fused_operator_statistics().items() if v})
            fused.save_model_to_file(str(stage))
            model = onnx.load(str(stage))
    if quantize:
        stats["int8_matmuls"] = quantize_rows(model, weight_matmuls(model))
        stats["embedding_tables_read_by_row"] = gather_before_dequantize(model)
    onnx.save(model, str(dst))
    return stats


def optimize_version(src: Path, out: Path, *, quantize: bool = True, fuse: bool = False, restamp: bool = True) -> Path:
    """Copy an exported version folder to ``out`` with the optimised ``model.onnx`` and a new model_version
    (stamped into the repository's config.pbtxt, when ``out`` is in one)."""
    src = Path(src)
    if (src / "model.onnx").is_file() and is_int8_compute(onnx.load(str(src / "model.onnx"), load_external_data=False)):
        raise ConfigError(f"{src} is already int8-compute (its MatMuls are MatMulIntegerToFloat)")

    def write(model_in: Path, model_out: Path) -> dict:
        stats = optimize_onnx(model_in, model_out, quantize=quantize, fuse=fuse)
        log.info("optimised %s -> %s (%s)", src, out, stats)
        return {"dynamic_quantization": quantize, "activation_scale": "per row" if quantize else None,
                "transformer_fusion": fuse, "optimization": stats}

    return derive_version(src, out, write, "optimized_from", restamp=restamp)


def derive_version(src: Path, out: Path, write: Callable[[Path, Path], dict], origin_key: str, *,
                   restamp: bool = True) -> Path:
    """A new version folder ``out`` made from the exported ``src``: the same files, but ``model.onnx`` written by
    ``write(src_model, out_model)`` (it returns what to record in finmon.json), a new model_version (``origin_key``
    records the one it came from), no promotion record (the new graph earns its own), and the repository's
    config.pbtxt stamped when ``restamp``."""
    src, out = Path(src), Path(out)
    if not (src / "model.onnx").is_file():
        raise ConfigError(f"{src} is not an exported version folder (no model.onnx)")
    if out.resolve() == src.resolve():
        raise ConfigError("a new version folder is written; --out must differ from the source")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} already exists and is not empty; choose a new version folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    # staged beside it and renamed when complete: Triton serves the highest version folder it finds, so a
    # half-written one (a failed or interrupted write) must never appear under a version number
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staged = Path(tmp) / "version"
        staged.mkdir()
        for f in src.iterdir():
            if f.is_file() and f.name not in ("model.onnx", RECORD_FILE):
                shutil.copy(f, staged / f.name)
        recorded = write(src / "model.onnx", staged / "model.onnx")
        meta_path = staged / METADATA_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        digest = hashlib.sha256((staged / "model.onnx").read_bytes()).hexdigest()[:8]
        number = out.name if out.name.isdigit() else "1"
        meta.update({"model_version": f"{MODEL_NAME}-{number}-{digest}", origin_key: meta.get("model_version", ""),
                     **recorded})
        meta_path.write_text(json.dumps(meta, indent=1))
        if out.exists():
            out.rmdir()  # empty (checked above)
        staged.rename(out)
    if restamp:
        _restamp(out)
    return out


def optimize_in_place(version_dir: Path, *, fuse: bool = False) -> Path:
    """Optimise an exported version folder in place (a new ``model_version``)."""
    version_dir = Path(version_dir)
    with tempfile.TemporaryDirectory(dir=version_dir.parent) as tmp:
        staged = optimize_version(version_dir, Path(tmp) / version_dir.name, fuse=fuse, restamp=False)
        for f in staged.iterdir():
            shutil.move(str(f), version_dir / f.name)
    _restamp(version_dir)
    return version_dir


def _restamp(version_dir: Path) -> None:
    """Stamp the repository's config.pbtxt with this version's ``model_version``, as ``finmon export`` does (the
    Triton client checks that the served version matches the local tokenizer's)."""
    from inference.serving.triton_config import VERSION_PARAMETER, read_config, render, write_config

    config_path = version_dir.parent / "config.pbtxt"
    if config_path.is_file():
        config = read_config(config_path)
        config.parameters[VERSION_PARAMETER].string_value = json.loads((version_dir / METADATA_FILE).read_text())[
            "model_version"]
        write_config(config_path, render(config, "cpu" if config.backend == "python" else "gpu"))


def fp32_math(model: onnx.ModelProto) -> int:
    """Undo the int8 compute of an optimised graph, in place: each ``MatMulIntegerToFloat`` (and its row
    quantization) becomes ``DequantizeLinear`` (the same int8 weights) + fp32 ``MatMul``, and each embedding read
    by row is expanded whole again: the format ``finmon export`` writes.

    Used to measure "the same model exported as today" when only the optimised file is at hand, and by
    scripts/gpu-check (the int8 ops are CPU kernels); returns how many MatMuls were rewritten.
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    readers = _readers(graph)
    new_nodes, rewritten = [], 0
    for node in graph.node:
        if node.op_type == "MatMulIntegerToFloat" and node.input[1] in inits:
            quantize = producer[producer[node.input[0]].input[0]]  # Reshape(QuantizeLinear(Reshape(shift(x))))
            x = producer[producer[quantize.input[0]].input[0]].input[0]
            tail = readers[node.output[0]][0]  # x the row scales, then (after a GELU) the shift taken back
            if tail.output[0] in readers and readers[tail.output[0]][0].name.endswith("_unshift"):
                tail = readers[tail.output[0]][0]
            weight = f"{node.input[1]}_fp32"
            new_nodes += [
                helper.make_node("DequantizeLinear", [node.input[1], node.input[3], node.input[5]], [weight], axis=1),
                helper.make_node("MatMul", [x, weight], [tail.output[0]], name=node.name.removesuffix("_int8"))]
            rewritten += 1
        elif (node.op_type == "Gather" and node.input[0] in inits
              and inits[node.input[0]].data_type == TensorProto.INT8):
            cast = readers[node.output[0]][0]
            scaled = readers[cast.output[0]][0]
            scale = producer[producer[next(i for i in scaled.input if i != cast.output[0])].input[0]].input[0]
            table = f"{node.input[0]}_fp32"
            new_nodes += [helper.make_node("DequantizeLinear", [node.input[0], scale], [table], axis=0),
                          helper.make_node("Gather", [table, node.input[1]], [scaled.output[0]])]
    replaced = {n.output[0] for n in new_nodes}
    kept = [n for n in graph.node if not set(n.output) & replaced] + new_nodes
    _drop_dead(graph, kept)
    return rewritten


def gpu_graph(model: onnx.ModelProto) -> int:
    """The same weights as one plain fp32 graph, in place, for CUDA and TensorRT: the int8 ops of this module are
    CPU kernels (the CUDA execution provider would hand them back to the CPU), and TensorRT reads Q/DQ pairs as
    explicit int8. Returns how many int8 MatMuls were rebuilt."""
    rewritten = fp32_math(model) if is_int8_compute(model) else 0
    fold_weight_dequantize(model, None)
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
