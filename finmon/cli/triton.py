"""`finmon triton serve|repo|config|check`: the model on a real Triton server."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

from inference.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this area's sub-commands to the `finmon` parser."""
    from inference.serving.triton_repository import GPU_REPOSITORY

    t = sub.add_parser("triton", help="serve the model from a Triton server, and talk to one")
    tsub = t.add_subparsers(dest="triton_command", required=True, metavar="SUBCOMMAND")

    s = tsub.add_parser("serve", help="run the bundled tritonserver (CPU, Python backend) until SIGINT/SIGTERM")
    s.add_argument("--repo", type=Path, default=GPU_REPOSITORY,
                   help="model repository; an onnxruntime (GPU) one is first assembled into a CPU one")
    s.add_argument("--work-dir", type=Path, default=None, help="where to assemble the CPU repository (default: temp)")
    for name in ("http", "grpc", "metrics"):
        s.add_argument(f"--{name}-port", type=int, default=0, help="0 (default): a free port")
    s.add_argument("--log-file", type=Path, default=None, help="tritonserver's own log (default: discarded)")
    s.add_argument("--ready-file", type=Path, default=None, help="write the endpoints here as JSON once ready")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    s.set_defaults(handler=_serve)

    r = tsub.add_parser("repo", help="assemble a servable repository from the exported one: CPU (Python backend, "
                                     "the int8 graph) or GPU (onnxruntime backend, the same weights as one fp32 graph)")
    r.add_argument("--kind", choices=("cpu", "gpu"), default="cpu")
    r.add_argument("--source", type=Path, default=GPU_REPOSITORY)
    r.add_argument("--out", type=Path, required=True)
    r.set_defaults(handler=_repo)

    c = tsub.add_parser("config", help="print (or write) the generated config.pbtxt")
    c.add_argument("--kind", choices=("gpu", "cpu"), default="gpu")
    c.add_argument("--tensorrt", action="store_true", help="GPU only: the onnxruntime TensorRT accelerator, FP16")
    c.add_argument("--model-version", default="", help="finmon model_version to stamp into the config")
    c.add_argument("--write", type=Path, default=None, help="write to this config.pbtxt instead of stdout")
    c.set_defaults(handler=_config)

    k = tsub.add_parser("check", help="connect as the ingest worker would (FINMON_TRITON_* settings) and predict")
    k.add_argument("--url", default=None)
    k.add_argument("--protocol", choices=("grpc", "http"), default=None)
    k.add_argument("text", nargs="*", help="texts to predict (default: one sample headline)")
    k.set_defaults(handler=_check)


def _serve(args: argparse.Namespace) -> int:
    from inference.serving.triton_config import read_config
    from inference.serving.triton_repository import assemble_cpu_repository
    from inference.serving.triton_server import TritonServer

    repo = Path(args.repo)
    if not repo.is_dir():
        raise ConfigError(f"no such model repository: {repo}")
    configs = list(repo.glob("*/config.pbtxt"))
    if any(read_config(c).backend != "python" for c in configs):
        work = args.work_dir or Path(tempfile.mkdtemp(prefix="finmon-triton-"))
        repo = assemble_cpu_repository(work, source=repo)
    server = TritonServer(repo, http_port=args.http_port, grpc_port=args.grpc_port,
                          metrics_port=args.metrics_port, log_file=args.log_file)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    with server.start(args.timeout):
        endpoints = {"grpc": server.grpc_url, "http": server.http_url, "metrics": server.metrics_url,
                     "repository": str(repo), "pid": server.pid}
        print(json.dumps(endpoints), flush=True)
        print(f"export FINMON_TRITON_URL={server.grpc_url} FINMON_TRITON_PROTOCOL=grpc", flush=True)
        if args.ready_file:
            args.ready_file.write_text(json.dumps(endpoints))
        while not stop.wait(1.0):
            if not server.running:
                log.error("tritonserver exited on its own")
                return 1
    return 0


def _repo(args: argparse.Namespace) -> int:
    from inference.serving.triton_repository import assemble_cpu_repository, assemble_gpu_repository

    assemble = assemble_gpu_repository if args.kind == "gpu" else assemble_cpu_repository
    print(assemble(args.out, source=args.source))
    return 0


def _config(args: argparse.Namespace) -> int:
    from inference.serving.triton_config import cpu_config, gpu_config, write_config

    if args.kind == "gpu":
        text = gpu_config(model_version=args.model_version, tensorrt=args.tensorrt)
    else:
        text = cpu_config(model_version=args.model_version)
    if args.write:
        write_config(args.write, text)
    else:
        print(text, end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    from inference.serving.triton_client import TritonPredictor
    from inference.serving.triton_settings import triton_settings

    overrides = {k: v for k, v in (("url", args.url), ("protocol", args.protocol)) if v}
    texts = args.text or ["Apple shares fall after the Fed raises rates; Tim Cook says demand in China is weak."]
    with TritonPredictor.from_settings(triton_settings(**overrides)) as predictor:
        for prediction in predictor.predict(texts):
            print(json.dumps(prediction.to_dict(), ensure_ascii=False))
    return 0
