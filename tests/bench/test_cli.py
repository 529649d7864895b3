"""`finmon bench`: one command, a table on stdout, ``--json`` with the figures, the machine, date and revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import cpu_seconds, render_table
from finmon.cli import main


def test_alerts_bench_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "alerts.json"
    assert main(["bench", "alerts", "--subjects", "20", "--days", "15", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "finmon bench alerts" in printed and "subjects/s" in printed
    data = json.loads(out.read_text())
    assert data["benchmark"] == "alerts" and data["figures"]["subjects"] == 20
    assert data["figures"]["pass_seconds"] > 0 and data["rows"][0][0] == 20
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["git_revision"] and data["date"][:2] == "20"


def test_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "nonsense"])
    assert exc.value.code == 2


def test_cpu_seconds_counts_work_not_waiting() -> None:
    import time

    before = cpu_seconds()
    time.sleep(0.2)
    slept = cpu_seconds() - before
    start = cpu_seconds()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert cpu_seconds() - start >= 0.25 > slept


def test_table_aligns_columns() -> None:
    text = render_table(["mode", "docs/s"], [("a", 1.5), ("longer name", 1234.5)])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[2].endswith("1.500") and "1,234.5" in lines[3]
