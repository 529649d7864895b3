"""What every benchmark writes: a table for people, and ``--json`` figures with the machine, date and revision.

Absolute speed on a shared machine is noisy, so each report also records the load average seen before and
after, and the benchmarks measure the CPU seconds they used (``cpu_seconds``): docs per CPU-second moves far
less than docs per wall second when other processes compete for the cores.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "fma")


def machine() -> dict[str, Any]:
    """CPU model, the SIMD flags that decide which kernels onnxruntime uses, cores, load average."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "flags": [f for f in FLAGS_OF_INTEREST if f in flags], "cores": os.cpu_count(),
            "load_average": list(os.getloadavg()), "python": platform.python_version()}


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds used so far by ``pid`` (default: this process) and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid or os.getpid()):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Report:
    """One benchmark's result: rows for the table, named figures (ratios...) for JSON and the summary lines."""

    name: str
    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    load_before: list[float] = field(default_factory=lambda: list(os.getloadavg()))

    def add(self, *cells: Any) -> None:
        self.rows.append(cells)

    def table(self) -> str:
        return render_table(self.columns, self.rows)

    def text(self) -> str:
        load = ", ".join(f"{x:.1f}" for x in self.load_before)
        head = f"finmon bench {self.name} - {time.strftime('%Y-%m-%d %H:%M', time.localtime(self.started))}, " \
               f"rev {git_revision()}, load average before {load}"
        figs = [f"{k} = {_cell(v)}" for k, v in self.figures.items()]
        return "\n".join([head, "", self.table(), "", *figs, *self.notes])

    def as_json(self) -> dict[str, Any]:
        return {"benchmark": self.name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "git_revision": git_revision(), "machine": machine(), "load_average_before": self.load_before,
                "seconds": round(time.time() - self.started, 1), "figures": self.figures,
                "columns": list(self.columns), "rows": [list(r) for r in self.rows], "notes": self.notes}

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.as_json(), indent=1, default=str))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def render_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    body = [[_cell(c) for c in r] for r in rows]
    head = list(columns)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
