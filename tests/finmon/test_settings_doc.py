"""README.md lists every setting of every stage, as `finmon settings` prints them (no drift)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finmon.settings import BEGIN, END, markdown_table, settings_classes

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_block_is_current():
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert block == markdown_table(), "run: finmon settings --embed README.md"


@pytest.mark.parametrize("home", ["elsewhere", None], ids=["FINMON_HOME-set", "FINMON_HOME-unset"])
def test_the_table_does_not_depend_on_finmon_home(tmp_path: Path, home: str | None) -> None:
    """A newcomer with their own FINMON_HOME (or none) renders the README's block unchanged."""
    env = {k: v for k, v in os.environ.items() if k != "FINMON_HOME"}
    if home:
        env["FINMON_HOME"] = str(tmp_path / home)
    code = "from finmon.settings import markdown_table; print(markdown_table())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == markdown_table()
    assert "$FINMON_HOME/clickhouse" in done.stdout and str(tmp_path) not in done.stdout


def test_every_field_of_every_stage_is_listed_with_its_env_name():
    table = markdown_table()
    for cls in settings_classes():
        prefix = cls.model_config["env_prefix"]
        assert prefix.startswith("FINMON_")
        for name in cls.model_fields:
            assert f"`{prefix}{name.upper()}`" in table


def test_secrets_are_never_shown(monkeypatch):
    monkeypatch.setenv("FINMON_INGEST_SASL_PASSWORD", "hunter2-very-secret")
    assert "hunter2" not in markdown_table()
