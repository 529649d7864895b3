"""Model repositories for Triton: where the exported versions live and how a servable CPU repository is assembled.

``finmon export`` writes the production repository ``models/triton/finmon_mtl/`` (GPU config.pbtxt plus
``<version>/model.onnx``, tokenizer files and ``finmon.json``). The bundled CPU tritonserver cannot run the
onnxruntime backend, so :func:`assemble_cpu_repository` builds a second repository next to it: the committed
Python-backend ``config.pbtxt`` (stamped with the exported ``model_version``) and, per version, ``model.py`` with a
link to the SAME ``model.onnx``. The committed graph computes in int8 on CPUs (``finmon optimize``); a GPU server
is given :func:`assemble_gpu_repository`'s copy instead, the same weights as one fp32 graph (deploy/ does it at
start-up).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from inference.errors import ConfigError
from inference.settings import REPO_ROOT
from inference.tensors import MODEL_NAME
from inference.serving.triton_config import VERSION_PARAMETER, read_config, render, write_config

log = logging.getLogger(__name__)

GPU_REPOSITORY = REPO_ROOT / "models" / "triton"
CPU_TEMPLATE = REPO_ROOT / "models" / "triton_cpu"
METADATA_FILE = "finmon.json"


@dataclass(frozen=True)
class ExportedVersion:
    """One numbered version folder of an exported model."""

    number: int
    path: Path
    model_version: str  # finmon's version string (finmon.json), shown on every Prediction


def version_metadata(version_dir: Path) -> dict:
    """A version folder's ``finmon.json``, or {} when it has none."""
    meta = Path(version_dir) / METADATA_FILE
    return json.loads(meta.read_text()) if meta.is_file() else {}


def exported_versions(repository: Path = GPU_REPOSITORY, name: str = MODEL_NAME) -> list[ExportedVersion]:
    """Version folders holding a model.onnx, oldest first."""
    model_dir = Path(repository) / name
    found = []
    for child in model_dir.iterdir() if model_dir.is_dir() else ():
        if child.name.isdigit() and (child / "model.onnx").is_file():
            found.append(ExportedVersion(int(child.name), child, str(version_metadata(child).get("model_version", ""))))
    return sorted(found, key=lambda v: v.number)


def latest_version(repository: Path = GPU_REPOSITORY, name: str = MODEL_NAME) -> ExportedVersion:
    versions = exported_versions(repository, name)
    if not versions:
        raise ConfigError(f"no exported model under {Path(repository) / name} (run `finmon export` first)")
    return versions[-1]


def assemble_cpu_repository(out: Path, source: Path = GPU_REPOSITORY, template: Path = CPU_TEMPLATE,
                            name: str = MODEL_NAME) -> Path:
    """Write a servable Python-backend repository for every exported version into ``out``; returns ``out``.

    Only the newest version is served (version_policy latest 1), as in production.
    """
    newest = latest_version(source, name)
    out = Path(out)
    target = out / name
    if target.exists():
        shutil.rmtree(target)
    config = read_config(template / name / "config.pbtxt")
    if newest.model_version:
        config.parameters[VERSION_PARAMETER].string_value = newest.model_version
    write_config(target / "config.pbtxt", render(config, "cpu"))
    for version in exported_versions(source, name):
        vdir = target / str(version.number)
        vdir.mkdir(parents=True)
        shutil.copy2(template / name / "model.py", vdir / "model.py")
        os.symlink((version.path / "model.onnx").resolve(), vdir / "model.onnx")
    log.info("assembled CPU Triton repository %s (newest version %d, %s)", out, newest.number,
             newest.model_version or "no model_version")
    return out


def assemble_gpu_repository(out: Path, source: Path = GPU_REPOSITORY, name: str = MODEL_NAME) -> Path:
    """Write the repository for a GPU Triton into ``out``: the committed config.pbtxt and, for every version with
    weights, its files with ``model.onnx`` rebuilt as one fp32 graph (``optimize.gpu_graph``; same model_version,
    same weights; about 105 MB). Returns ``out``."""
    import onnx

    from inference.serving.optimize import gpu_graph

    newest = latest_version(source, name)
    target = Path(out) / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(Path(source) / name / "config.pbtxt", target / "config.pbtxt")
    for version in exported_versions(source, name):  # the versions with weights
        vdir = target / str(version.number)
        vdir.mkdir()
        for f in version.path.iterdir():
            if f.is_file() and f.name != "model.onnx":
                shutil.copy2(f, vdir / f.name)
        model = onnx.load(str(version.path / "model.onnx"))
        rebuilt = gpu_graph(model)
        onnx.save(model, str(vdir / "model.onnx"))
        log.info("GPU repository %s: version %d as one fp32 graph (%d int8 MatMuls rebuilt)", out, version.number,
                 rebuilt)
    log.info("assembled GPU Triton repository %s (newest version %d, %s)", out, newest.number,
             newest.model_version or "no model_version")
    return Path(out)
