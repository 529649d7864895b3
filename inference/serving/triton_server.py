"""Starts and stops a real ``tritonserver``: the binary bundled in the nvidia-pytriton wheel (Python backend only).

Gotchas handled here (see DESIGN.md): the backend stub must find THIS interpreter's libpython (its LIBDIR goes
first on ``LD_LIBRARY_PATH``) and this environment's packages (its ``bin`` goes first on ``PATH``, which the
embedded interpreter searches for ``python3``); the stub matching the running Python is copied next to the
backend library; ports are free ones on 127.0.0.1; every server gets its own shared-memory prefix; the whole
process group (server and stubs) is stopped, SIGKILL after a grace period.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from inference.errors import ConfigError, ModelUnavailable
from inference.settings import DEFAULT_HOME

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def bundled_tritonserver() -> Path:
    """The ``tritonserver`` folder shipped inside the nvidia-pytriton wheel (not imported: it is heavy)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("nvidia-pytriton is not installed: pip install 'finmon[triton]'")
    root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise ConfigError(f"no tritonserver binary under {root}")
    return root


def _spaced(path: Path) -> bool:
    return any(c.isspace() for c in str(path))


def prepare_backends(cache: Path = DEFAULT_HOME / "triton") -> Path:
    """A backend directory whose Python backend has the stub built for the running Python version.

    The Python backend starts its stub through an unquoted shell command, so the stub's path must not contain a
    space: under a FINMON_HOME that has one, the copy goes to a per-user folder in the system temp directory.
    """
    dist = bundled_tritonserver()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if _spaced(Path(cache).absolute()):
        cache = Path(tempfile.gettempdir()) / f"finmon-triton-{os.getuid()}"
    backends = Path(cache) / f"backends-py{version}"
    target = backends / "python"
    target.mkdir(parents=True, exist_ok=True)
    sources = [p for p in (dist / "backends" / "python").iterdir() if p.is_file()]
    sources.append(dist / "python_backend_stubs" / version / "triton_python_backend_stub")
    for src in sources:
        dst = target / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)  # atomic: concurrent test sessions never see half a file
    return backends


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class TritonServer:
    """One tritonserver process serving ``repository``. Ports stay fixed across restarts (clients reconnect)."""

    def __init__(self, repository: Path, *, http_port: int = 0, grpc_port: int = 0, metrics_port: int = 0,
                 log_file: Path | None = None, verbose: int = 0) -> None:
        self.repository = Path(repository)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self._own_log = log_file is None  # a temp log, kept only for error messages, removed on stop
        if log_file is None:
            fd, name = tempfile.mkstemp(prefix="tritonserver-", suffix=".log")
            os.close(fd)
            log_file = Path(name)
        self.log_file = Path(log_file)
        self.verbose = verbose
        self._proc: subprocess.Popen[bytes] | None = None
        self._shm_prefix = f"finmon_{os.getpid()}_{secrets.token_hex(4)}_"

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        if _spaced(self.repository.absolute()):  # the Python backend passes model paths through an unquoted shell
            raise ConfigError(f"Triton cannot load models from a path with a space: {self.repository} "
                              "(use --work-dir or a repository path without spaces)")
        return [
            str(bundled_tritonserver() / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={prepare_backends()}",
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
            f"--http-address={HOST}", f"--http-port={self.http_port}",
            f"--grpc-address={HOST}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={HOST}", f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false", "--strict-readiness=true", "--exit-on-error=true",
            "--disable-auto-complete-config", f"--log-verbose={self.verbose}",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        wheel_libs = str(bundled_tritonserver().parent.parent / "nvidia_pytriton.libs")  # the stub's libcudart...
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH", ""), wheel_libs) if p)
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def start(self, timeout: float = 60.0) -> "TritonServer":
        """Start the process and wait until the server (and so every model) is ready."""
        if self.running:
            return self
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(self.command(), env=self.environment(), stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        log.info("tritonserver pid %d: grpc %s, http %s, metrics %s", self._proc.pid, self.grpc_url,
                 self.http_url, self.metrics_url)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ModelUnavailable(f"tritonserver exited with code {self._proc.returncode}{self._log_hint()}")
            if self.ready():
                return
            time.sleep(0.2)
        raise ModelUnavailable(f"tritonserver not ready after {timeout:.0f}s{self._log_hint()}")

    def ready(self) -> bool:
        """Server and models ready (HTTP health), and the metrics endpoint, which starts last, listening."""
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1) as resp:
                if resp.status != 200:
                    return False
            with socket.create_connection((HOST, self.metrics_port), timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group (server and backend stubs), SIGKILL what is left after ``grace``."""
        self._signal(signal.SIGTERM, grace)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (used by the fault-tolerance tests)."""
        self._signal(signal.SIGKILL, 5.0)

    def _signal(self, sig: signal.Signals, grace: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            # SIGTERM the server alone so it unloads its models (and frees their shared memory) itself
            proc.send_signal(sig) if sig == signal.SIGTERM else os.killpg(proc.pid, sig)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        try:  # stubs outliving their server would hold shared memory
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for region in Path("/dev/shm").glob(f"{self._shm_prefix}*"):  # left behind by a killed stub
            region.unlink(missing_ok=True)
        if self._own_log:
            self.log_file.unlink(missing_ok=True)
        log.info("tritonserver pid %d stopped (%s)", proc.pid, sig.name)

    def _log_hint(self) -> str:
        """The server's error lines (glog 'E' lines, failures) and its last lines, for the exception text."""
        if not self.log_file.is_file():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()
        errors = [ln for ln in lines if ln.startswith("E") or "fail" in ln.lower() or "error" in ln.lower()]
        return "; log tail:\n" + "\n".join(dict.fromkeys(errors[-10:] + lines[-3:]))

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
