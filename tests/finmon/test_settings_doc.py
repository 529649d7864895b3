"""README.md lists every setting of every stage, as `finmon settings` prints them (no drift)."""

from pathlib import Path

from finmon.settings import BEGIN, END, markdown_table, settings_classes

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_block_is_current():
    text = README.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert block == markdown_table(), "run: finmon settings --embed README.md"


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
