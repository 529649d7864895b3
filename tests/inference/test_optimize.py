"""finmon optimize: the int8-compute graph, and its inverse, on a small graph shaped like the export's
(an int8-stored embedding read by Gather, int8-stored MatMul weights, an activation x activation MatMul)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.errors import ConfigError
from inference.serving.optimize import fold_weight_dequantize, fp32_math, optimize_in_place, optimize_onnx

RNG = np.random.default_rng(0)
VOCAB, HIDDEN = 50, 64


def _int8(name: str, shape: tuple[int, int], axis: int) -> tuple[list, onnx.NodeProto, np.ndarray]:
    w = RNG.standard_normal(shape).astype(np.float32)
    scale = (np.abs(w).max(axis=1 - axis) / 127).astype(np.float32)
    q = np.clip(np.rint(w / (scale[:, None] if axis == 0 else scale[None, :])), -127, 127).astype(np.int8)
    inits = [numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(scale, name + "_scale")]
    node = helper.make_node("DequantizeLinear", [name + "_q", name + "_scale"], [name], axis=axis)
    return inits, node, q.astype(np.float32) * (scale[:, None] if axis == 0 else scale[None, :])


def small_export(path: Path) -> dict[str, np.ndarray]:
    """ids -> Gather(embedding) -> MatMul(w1) -> Relu -> MatMul(w2) -> scores = h @ h^T; returns fp32 weights."""
    e_init, e_dq, emb = _int8("emb", (VOCAB, HIDDEN), 0)
    w1_init, w1_dq, w1 = _int8("w1", (HIDDEN, HIDDEN), 1)
    w2_init, w2_dq, w2 = _int8("w2", (HIDDEN, HIDDEN), 0)
    nodes = [e_dq, w1_dq, w2_dq,
             helper.make_node("Gather", ["emb", "ids"], ["x"]),
             helper.make_node("MatMul", ["x", "w1"], ["h1"], name="dense1"),
             helper.make_node("Relu", ["h1"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["hidden"], name="dense2"),
             helper.make_node("Transpose", ["hidden"], ["ht"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["hidden", "ht"], ["scores"], name="attention")]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
                              [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["b", "s", HIDDEN]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["b", "s", "s"])],
                              initializer=e_init + w1_init + w2_init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {"emb": emb, "w1": w1, "w2": w2}


def _ops(path: Path | onnx.ModelProto) -> collections.Counter:
    model = onnx.load(str(path)) if isinstance(path, Path) else path
    return collections.Counter(n.op_type for n in model.graph.node)


def _run(path: Path, ids: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})


IDS = RNG.integers(0, VOCAB, (3, 9)).astype(np.int64)


def test_fold_keeps_the_embedding_int8_and_is_exact(tmp_path: Path) -> None:
    w = small_export(tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert fold_weight_dequantize(model) == 2
    assert _ops(model)["DequantizeLinear"] == 1  # the Gather's table stays int8-stored
    folded = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    np.testing.assert_array_equal(folded["w1"], w["w1"])
    np.testing.assert_array_equal(folded["w2"], w["w2"])


def test_optimize_quantizes_only_weight_matmuls_and_stays_close(tmp_path: Path) -> None:
    small_export(tmp_path / "m.onnx")
    stats = optimize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx")
    ops = _ops(tmp_path / "q.onnx")
    assert stats["int8_matmuls"] == 2 and ops["MatMulInteger"] == 2
    assert ops["MatMul"] == 1  # hidden x hidden^T stays fp32
    ref, got = _run(tmp_path / "m.onnx", IDS), _run(tmp_path / "q.onnx", IDS)
    rel = np.abs(ref[0] - got[0]).max() / np.abs(ref[0]).max()
    assert 0 < rel < 0.05  # int8 activations: close, but not the same computation


def test_fp32_math_undoes_the_int8_compute(tmp_path: Path) -> None:
    small_export(tmp_path / "m.onnx")
    optimize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx")
    model = onnx.load(str(tmp_path / "q.onnx"))
    assert fp32_math(model) == 2
    onnx.checker.check_model(model)
    ops = _ops(model)
    assert ops["MatMulInteger"] == 0 and ops["DynamicQuantizeLinear"] == 0 and ops["MatMul"] == 3
    onnx.save(model, str(tmp_path / "back.onnx"))
    ref, back = _run(tmp_path / "m.onnx", IDS), _run(tmp_path / "back.onnx", IDS)
    # the int8 weights were re-quantized per output column: fp32 math again, within the rounding of one step
    np.testing.assert_allclose(back[0], ref[0], rtol=0, atol=0.02 * np.abs(ref[0]).max())


def test_optimize_in_place_restamps_the_served_version(tmp_path: Path) -> None:
    from inference.serving.triton_config import VERSION_PARAMETER, gpu_config, read_config, write_config

    version = tmp_path / "finmon_mtl" / "1"
    version.mkdir(parents=True)
    small_export(version / "model.onnx")
    (version / "finmon.json").write_text(json.dumps({"model_version": "finmon_mtl-1-old"}))
    write_config(version.parent / "config.pbtxt", gpu_config(model_version="finmon_mtl-1-old"))
    optimize_in_place(version)
    meta = json.loads((version / "finmon.json").read_text())
    assert meta["model_version"] != "finmon_mtl-1-old" and meta["optimized_from"] == "finmon_mtl-1-old"
    served = read_config(version.parent / "config.pbtxt").parameters[VERSION_PARAMETER].string_value
    assert served == meta["model_version"]
    assert _ops(version / "model.onnx")["MatMulInteger"] == 2
    assert sorted(p.name for p in version.parent.iterdir()) == ["1", "config.pbtxt"]  # no staging left behind
    with pytest.raises(ConfigError, match="already int8-compute"):
        optimize_in_place(version)


def test_shipped_model_is_deterministic_fp32_math_and_its_version_is_served() -> None:
    """The int8-compute graph quantizes activations per batch, so a text's probabilities depend on its batch
    mates (up to ~0.01 measured between Triton and in-process): it is not shipped (see docs/benchmarks.md)."""
    from inference.serving.triton_config import VERSION_PARAMETER, read_config
    from inference.serving.triton_repository import GPU_REPOSITORY, latest_version

    shipped = latest_version(GPU_REPOSITORY)
    assert _ops(shipped.path / "model.onnx")["MatMulInteger"] == 0
    config = read_config(GPU_REPOSITORY / "finmon_mtl" / "config.pbtxt")
    assert config.parameters[VERSION_PARAMETER].string_value == shipped.model_version
