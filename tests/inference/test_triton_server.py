"""The tritonserver launcher and `finmon triton ...` commands, with the real bundled binary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from finmon.cli import main
from inference.errors import ModelUnavailable
from inference.serving.triton_config import VERSION_PARAMETER, read_config
from inference.serving.triton_repository import assemble_cpu_repository, latest_version
from inference.serving.triton_server import TritonServer

pytestmark = pytest.mark.triton
FINMON = str(Path(sys.executable).parent / "finmon")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_assembled_repository_serves_the_exported_onnx_file(model_repository: Path, tmp_path: Path) -> None:
    repo = assemble_cpu_repository(tmp_path, source=model_repository)
    newest = latest_version(model_repository)
    served = repo / "finmon_mtl" / str(newest.number)
    assert (served / "model.onnx").resolve() == (newest.path / "model.onnx").resolve()
    assert (served / "model.py").is_file()
    config = read_config(repo / "finmon_mtl" / "config.pbtxt")
    assert config.backend == "python"
    assert config.parameters[VERSION_PARAMETER].string_value == newest.model_version


def test_server_starts_ready_and_stop_leaves_no_process_nor_shared_memory(triton_server_factory) -> None:
    server = triton_server_factory()
    assert server.ready()
    with urllib.request.urlopen(server.metrics_url, timeout=5) as resp:
        assert b"nv_inference_count" in resp.read()
    pgid = server.pid
    assert pgid is not None and _group_alive(pgid)
    prefix = server._shm_prefix
    server.stop()
    assert not server.running and not server.ready()
    assert not _group_alive(pgid), "backend stubs outlived the server"
    assert not list(Path("/dev/shm").glob(f"{prefix}*"))


def test_a_model_that_cannot_load_fails_start_with_the_server_log(model_repository: Path, tmp_path: Path) -> None:
    repo = assemble_cpu_repository(tmp_path / "repo", source=model_repository)
    for link in repo.glob("finmon_mtl/*/model.onnx"):
        link.unlink()
    server = TritonServer(repo, log_file=tmp_path / "server.log")
    with pytest.raises(ModelUnavailable, match="(?s)exited.*model.onnx"):
        server.start(timeout=60)
    assert not server.running


def test_cli_serve_runs_until_sigterm_and_check_predicts_through_it(model_repository: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen([FINMON, "triton", "serve", "--repo", str(model_repository), "--work-dir",
                             str(tmp_path / "work"), "--ready-file", str(ready)],
                            stdout=(tmp_path / "serve.log").open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        endpoints = json.loads(ready.read_text())
        with urllib.request.urlopen(f"http://{endpoints['http']}/v2/models/finmon_mtl/ready", timeout=5) as resp:
            assert resp.status == 200
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FINMON_MODEL_REPOSITORY", str(model_repository))
            assert main(["triton", "check", "--url", endpoints["grpc"], "Fed raises rates"]) == 0
        prediction = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert prediction["model_version"] == latest_version(model_repository).model_version
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert not _group_alive(endpoints["pid"])


def test_cli_config_prints_the_generated_config(tmp_path: Path) -> None:
    out = tmp_path / "config.pbtxt"
    assert main(["triton", "config", "--kind", "gpu", "--tensorrt", "--write", str(out)]) == 0
    config = read_config(out)
    assert config.backend == "onnxruntime"
    assert config.optimization.execution_accelerators.gpu_execution_accelerator[0].name == "tensorrt"


def test_a_finmon_home_with_a_space_still_gets_a_launchable_backend(tmp_path: Path) -> None:
    """Triton's Python backend starts its stub through an unquoted shell: its path may not contain a space."""
    from inference.serving.triton_server import prepare_backends

    backends = prepare_backends(tmp_path / "my home" / "triton")
    assert not any(c.isspace() for c in str(backends))
    assert os.access(backends / "python" / "triton_python_backend_stub", os.X_OK)
    assert not (tmp_path / "my home").exists()


def test_a_repository_path_with_a_space_is_refused_clearly(tmp_path: Path) -> None:
    from inference.errors import ConfigError

    with pytest.raises(ConfigError, match="space"):
        TritonServer(tmp_path / "my repo").command()
