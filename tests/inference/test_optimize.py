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
from inference.serving.optimize import (
    derive_version,
    fold_weight_dequantize,
    fp32_math,
    gather_before_dequantize,
    is_int8_compute,
    optimize_in_place,
    optimize_onnx,
    optimize_version,
    quantize_rows,
    weight_matmuls,
)

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
    assert stats["int8_matmuls"] == 2 and ops["MatMulIntegerToFloat"] == 2
    assert ops["MatMul"] == 1  # hidden x hidden^T stays fp32
    assert stats["embedding_tables_read_by_row"] == 1 and ops["DequantizeLinear"] == 0
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
    assert ops["MatMulIntegerToFloat"] == 0 and ops["QuantizeLinear"] == 0 and ops["MatMul"] == 3
    assert ops["DequantizeLinear"] == 3  # the two weights and the whole embedding table, as the export has them
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
    assert is_int8_compute(onnx.load(str(version / "model.onnx")))
    assert sorted(p.name for p in version.parent.iterdir()) == ["1", "config.pbtxt"]  # no staging left behind
    with pytest.raises(ConfigError, match="already int8-compute"):
        optimize_in_place(version)
    with pytest.raises(ConfigError, match="already int8-compute"):
        optimize_version(version, tmp_path / "elsewhere")
    source = tmp_path / "exported" / "1"
    source.mkdir(parents=True)
    small_export(source / "model.onnx")
    (source / "metrics.json").write_text("{}")
    newer = optimize_version(source, version.parent / "2")  # a new version folder: served next, so stamped
    assert not (newer / "metrics.json").exists()  # the gate's record of the source is not the new graph's
    served = read_config(version.parent / "config.pbtxt").parameters[VERSION_PARAMETER].string_value
    assert served == json.loads((newer / "finmon.json").read_text())["model_version"] != meta["model_version"]


def test_a_failed_derivation_leaves_no_version_folder_and_an_existing_one_is_refused(tmp_path: Path) -> None:
    """Triton serves the highest version folder: a half-written one must never appear, nor overwrite another."""
    source = tmp_path / "finmon_mtl" / "1"
    source.mkdir(parents=True)
    small_export(source / "model.onnx")
    (source / "finmon.json").write_text(json.dumps({"model_version": "finmon_mtl-1-abc"}))

    def broken(model_in: Path, model_out: Path) -> dict:
        model_out.write_bytes(b"half a graph")
        raise ConfigError("the write failed half-way")

    with pytest.raises(ConfigError, match="half-way"):
        derive_version(source, source.parent / "2", broken, "derived_from", restamp=False)
    assert sorted(p.name for p in source.parent.iterdir()) == ["1"]  # no "2", no staging folder left behind

    def copy(model_in: Path, model_out: Path) -> dict:
        model_out.write_bytes(model_in.read_bytes())
        return {"note": "copied"}

    (source.parent / "2").mkdir()  # an empty folder may be filled
    made = derive_version(source, source.parent / "2", copy, "derived_from", restamp=False)
    meta = json.loads((made / "finmon.json").read_text())
    assert meta["derived_from"] == "finmon_mtl-1-abc" and meta["note"] == "copied"
    assert meta["model_version"].startswith("finmon_mtl-2-")
    before = (made / "model.onnx").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        derive_version(source, made, broken, "derived_from", restamp=False)
    assert (made / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in source.parent.iterdir()) == ["1", "2"]


def test_reading_the_embedding_by_row_is_exact(tmp_path: Path) -> None:
    small_export(tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert gather_before_dequantize(model) == 1
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "rows.onnx"))
    assert not [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "emb_q"]
    for ref, got in zip(_run(tmp_path / "m.onnx", IDS), _run(tmp_path / "rows.onnx", IDS), strict=True):
        np.testing.assert_array_equal(got, ref)


def _dense_graph(path: Path) -> None:
    """x [b, s, HIDDEN] -> MatMul -> GELU (erf, as torch exports it) -> MatMul, quantized: the second MatMul
    takes the shifted path (GELU outputs + 0.17 in uint8), the first the symmetric one."""
    w1 = (RNG.standard_normal((HIDDEN, HIDDEN)) / 8).astype(np.float32)
    w2 = RNG.standard_normal((HIDDEN, 16)).astype(np.float32)
    consts = {"sqrt2": np.array(np.sqrt(2), np.float32), "one": np.array(1, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="dense1"),
             helper.make_node("Div", ["h", "sqrt2"], ["hs"]), helper.make_node("Erf", ["hs"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]), helper.make_node("Mul", ["h", "e1"], ["he"]),
             helper.make_node("Mul", ["he", "half"], ["g"]),
             helper.make_node("MatMul", ["g", "w2"], ["y"], name="dense2")]
    graph = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", HIDDEN])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 16])],
                              initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
                              + [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert quantize_rows(model, weight_matmuls(model)) == 2
    assert [n.name for n in model.graph.node if n.name.endswith("_unshift")] == ["dense2_unshift"]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_int8_compute_scores_a_row_alike_in_any_batch(tmp_path: Path) -> None:
    """One activation scale per row: a row's result must not move when a batch mate 100x larger (which would
    set a per-tensor scale) or padding joins it; and it must stay close to the fp32 product."""
    _dense_graph(tmp_path / "q.onnx")
    session = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    text = RNG.standard_normal((1, 5, HIDDEN)).astype(np.float32)
    loud = 100 * RNG.standard_normal((1, 7, HIDDEN)).astype(np.float32)
    padded = np.concatenate([text, np.zeros((1, 2, HIDDEN), np.float32)], axis=1)
    alone = session.run(None, {"x": text})[0]
    batch = session.run(None, {"x": np.concatenate([padded, loud], axis=0)})[0]
    np.testing.assert_array_equal(batch[0, :5], alone[0])
    model = onnx.load(str(tmp_path / "q.onnx"))
    fp32_math(model)
    exact = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": text})[0]
    assert 0 < np.abs(alone - exact).max() < 0.03 * np.abs(exact).max()


def test_shipped_model_scores_a_text_alike_in_any_batch_and_its_version_is_served() -> None:
    """The served graph is int8 compute (docs/benchmarks.md); a text's outputs alone and among longer texts must
    agree, or Triton's dynamic batcher and a replay would score one document differently."""
    from inference.serving.triton_config import VERSION_PARAMETER, read_config
    from inference.serving.triton_repository import GPU_REPOSITORY, latest_version
    from inference.tokenize import TextTokenizer

    shipped = latest_version(GPU_REPOSITORY)
    assert is_int8_compute(onnx.load(str(shipped.path / "model.onnx")))
    config = read_config(GPU_REPOSITORY / "finmon_mtl" / "config.pbtxt")
    assert config.parameters[VERSION_PARAMETER].string_value == shipped.model_version
    tokenizer = TextTokenizer.from_dir(shipped.path, 128)
    session = ort.InferenceSession(str(shipped.path / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = ["Wells Fargo shares fall", "$AAPL beats estimates as iPhone sales in China jump 20% in the quarter, "
             "and the Fed's Powell says rates stay high for longer; GOLD RALLIES"]
    alone = session.run(None, tokenizer.encode_texts(texts[:1]).arrays())
    together = session.run(None, tokenizer.encode_texts(texts).arrays())
    length = alone[2].shape[1]
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(b[:1, :length] if b.ndim == 3 else b[:1], a, rtol=0, atol=1e-5)


def test_gpu_repository_serves_the_shipped_weights_as_one_fp32_graph(tmp_path: Path) -> None:
    """`finmon triton repo --kind gpu` (deploy/ runs it; scripts/gpu-check checks the same graph): the int8 ops are
    CPU kernels, so none may stay in the GPU copy, which must give the shipped graph's labels under the same
    model_version and config."""
    from bench.corpus import texts
    from inference.serving.triton_config import VERSION_PARAMETER, read_config
    from inference.serving.triton_repository import GPU_REPOSITORY, assemble_gpu_repository, latest_version
    from inference.tokenize import TextTokenizer

    shipped = latest_version(GPU_REPOSITORY)
    out = assemble_gpu_repository(tmp_path / "gpu")
    served = out / "finmon_mtl"
    assert sorted(p.name for p in served.iterdir()) == sorted(["config.pbtxt", str(shipped.number)])  # no weightless folders
    config = read_config(served / "config.pbtxt")
    assert config.backend == "onnxruntime" and config.parameters[VERSION_PARAMETER].string_value == shipped.model_version
    gpu_dir = served / str(shipped.number)
    assert json.loads((gpu_dir / "finmon.json").read_text())["model_version"] == shipped.model_version
    proto = onnx.load(str(gpu_dir / "model.onnx"))
    assert not {"MatMulIntegerToFloat", "QuantizeLinear", "DequantizeLinear"} & set(_ops(proto))
    rebuilt = ort.InferenceSession(str(gpu_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    served_cpu = ort.InferenceSession(str(shipped.path / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = TextTokenizer.from_dir(gpu_dir, 128).encode_texts(texts(64)).arrays()
    a, b = rebuilt.run(None, feeds), served_cpu.run(None, feeds)
    mask = feeds["attention_mask"].astype(bool)
    assert np.mean(a[0].argmax(1) == b[0].argmax(1)) >= 0.97
    assert np.mean(a[1].argmax(1) == b[1].argmax(1)) >= 0.97
    assert np.mean((a[2].argmax(-1) == b[2].argmax(-1))[mask]) >= 0.99
