"""The committed Triton configs (GPU production and CPU test), the tensor contract and the client cannot drift.

Each config.pbtxt is parsed with Triton's own ModelConfig schema and put through ``check_served_config``, the
check the client runs against the live server at start; the exported ONNX graph is checked the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from inference.errors import ConfigError
from inference.settings import REPO_ROOT
from inference.tensors import INPUTS, MODEL_NAME, NUMPY_DTYPES, OUTPUTS
from inference.serving.triton_client import check_served_config
from inference.serving.triton_config import VERSION_PARAMETER, cpu_config, gpu_config, read_config
from inference.serving.triton_settings import TritonSettings

GPU = REPO_ROOT / "models" / "triton" / MODEL_NAME / "config.pbtxt"
CPU = REPO_ROOT / "models" / "triton_cpu" / MODEL_NAME / "config.pbtxt"


def as_served(config: mc.ModelConfig) -> dict:
    """The JSON form Triton's get_model_config returns (the client checks exactly this)."""
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


@pytest.mark.parametrize("path", [GPU, CPU], ids=["gpu", "cpu"])
def test_committed_config_matches_the_tensor_contract_and_the_client(path: Path) -> None:
    config = read_config(path)
    assert config.name == MODEL_NAME == TritonSettings().model_name
    check_served_config(as_served(config))
    assert [i.name for i in config.input] == [s.name for s in INPUTS]
    assert [o.name for o in config.output] == [s.name for s in OUTPUTS]
    assert config.max_batch_size >= TritonSettings().max_batch, "the client would send batches the server rejects"
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    assert all(0 < b <= config.max_batch_size for b in config.dynamic_batching.preferred_batch_size)
    assert config.version_policy.WhichOneof("policy_choice") == "latest"


def test_gpu_config_is_the_production_one() -> None:
    config = read_config(GPU)
    assert config.backend == "onnxruntime" and config.default_model_filename == "model.onnx"
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_GPU]


def test_cpu_config_runs_the_python_backend_on_cpu() -> None:
    config = read_config(CPU)
    assert config.backend == "python"
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]
    assert (CPU.parent / "model.py").is_file()


def test_committed_configs_are_what_the_generator_writes() -> None:
    """Regenerate (the GPU file is stamped with the exported model_version by `finmon export`)."""
    gpu = read_config(GPU)
    version = gpu.parameters[VERSION_PARAMETER].string_value if VERSION_PARAMETER in gpu.parameters else ""
    assert GPU.read_text() == gpu_config(model_version=version)
    assert CPU.read_text() == cpu_config()


@pytest.mark.parametrize("mutate", [
    lambda c: setattr(c.input[2], "data_type", mc.TYPE_INT32),
    lambda c: setattr(c.output[0], "name", "topic"),
    lambda c: c.output[2].dims.__setitem__(1, 9),
    lambda c: c.input.pop(),
], ids=["dtype", "name", "dims", "missing"])
def test_a_drifted_config_is_rejected(mutate) -> None:
    config = read_config(CPU)
    mutate(config)
    with pytest.raises(ConfigError, match="tensor contract"):
        check_served_config(as_served(config))


def test_tensorrt_option_is_valid_triton_config() -> None:
    from google.protobuf import text_format

    config = text_format.Parse(gpu_config(tensorrt=True), mc.ModelConfig())
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    with pytest.raises(ValueError):
        from inference.serving.triton_config import model_config

        model_config("cpu", tensorrt=True)


def test_exported_onnx_graph_has_the_contract_tensors(model_repository: Path) -> None:
    import onnx

    from inference.serving.triton_repository import latest_version

    graph = onnx.load(str(latest_version(model_repository).path / "model.onnx"), load_external_data=False).graph
    onnx_types = {"int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}
    for specs, values in ((INPUTS, graph.input), (OUTPUTS, graph.output)):
        by_name = {v.name: v.type.tensor_type for v in values}
        for spec in specs:
            assert spec.name in by_name, spec.name
            assert by_name[spec.name].elem_type == onnx_types[NUMPY_DTYPES[spec.dtype]]
            assert len(by_name[spec.name].shape.dim) == len(spec.dims) + 1  # plus the batch dimension
            fixed = [d.dim_value for d in by_name[spec.name].shape.dim[1:]]
            assert [f if s != -1 else -1 for f, s in zip(fixed, spec.dims)] == list(spec.dims)
