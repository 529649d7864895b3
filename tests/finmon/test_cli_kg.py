"""`finmon kg build / load / eval / show` as a user runs them (in-process ``main``, embedded ClickHouse)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finmon.cli import main
from inference.linking.installed import companies_dir
from ingest.store import Store

needs_tables = pytest.mark.skipif(not (companies_dir() / "sp500_constituents.csv").is_file(),
                                  reason="the reference tables of ../shared/data/companies are not on this machine")


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kg") / "graph.json.gz"
    assert main(["kg", "build", "--out", str(path)]) == 0
    return path


@needs_tables
def test_eval_writes_precision_recall_and_mentions(graph_file: Path, tmp_path: Path, monkeypatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FINMON_KG", str(graph_file))
    out = tmp_path / "m" / "eval.json"
    assert main(["kg", "eval", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["mentions"] >= 300 and metrics["precision"] >= 0.95 and metrics["recall"] >= 0.80
    assert set(metrics["splits"]) == {"dev", "test"}
    assert f"precision {metrics['precision']:.3f}" in capsys.readouterr().out
    assert main(["kg", "show", "$BRK-B", "Federal Reserve"]) == 0
    shown = capsys.readouterr().out
    assert "BRK.B" in shown and "sector=Financials" in shown and "org:FED" in shown


@needs_tables
def test_load_writes_the_graph_into_the_store(graph_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dsn = f"chdb://{tmp_path / 'db'}"
    assert main(["kg", "load", "--dsn", dsn, "--graph", str(graph_file)]) == 2  # not migrated: one clear error
    assert main(["migrate", "--dsn", dsn]) == 0
    assert main(["kg", "load", "--dsn", dsn, "--graph", str(graph_file)]) == 0
    assert "loaded" in capsys.readouterr().out
    with Store.open(dsn) as store:
        row = store.query("SELECT name, sector, tickers FROM kg_entities FINAL WHERE id = 'JPM'")[0]
    assert row["sector"] == "Financials" and "JPM" in row["tickers"]


def test_eval_of_a_malformed_file_is_one_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"  # "Apple" is not text[0:4]
    bad.write_text(json.dumps({"doc": "x", "text": "Apple rose", "start": 0, "end": 4, "label": "ORG",
                               "mention": "Apple", "gold": "AAPL"}) + "\n")
    assert main(["kg", "eval", "--file", str(bad)]) == 2
    assert any("bad.jsonl:1" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
