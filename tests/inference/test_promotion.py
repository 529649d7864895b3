"""`finmon model promote`: the gate refuses a regression, accepts an improvement, records metrics next to each
version and compares with them once the old weights are gone. Versions: the shipped export (linked, not copied)
and a randomly initialised tiny export (needs torch), scored on 40 topic + 40 sentiment training tweets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finmon.cli import main
from inference.evaluation.promotion import METRICS_FILE, compare, next_version, promote, promotion_settings
from inference.serving.triton_repository import GPU_REPOSITORY, exported_versions
from inference.training.data import default_data_dir

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "twitter_financial_news_topic").is_dir(), reason="shared data not found")


def _head(src: Path, dst: Path, lines: int = 41) -> Path:
    with open(src, encoding="utf-8") as fh:
        dst.write_text("".join(fh.readline() for _ in range(lines)), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("evalfiles")
    return {"topic_csv": _head(DATA / "twitter_financial_news_topic/topic_train.csv", d / "topic.csv"),
            "sentiment_csv": _head(DATA / "twitter_financial_news_sentiment/sent_train.csv", d / "sent.csv")}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from inference.training.model import MultiTaskModel, base_model_path

    torch.manual_seed(0)
    return MultiTaskModel.tiny().save(tmp_path_factory.mktemp("tiny") / "checkpoint", base_model_path())


def _shipped(version_dir: Path) -> Path:
    versions = exported_versions(GPU_REPOSITORY)
    if not versions:
        pytest.skip("no shipped model")
    version_dir.mkdir(parents=True)
    for f in versions[-1].path.iterdir():
        if f.name != METRICS_FILE:  # the shipped version's record is not this copy's
            (version_dir / f.name).symlink_to(f.resolve())
    return version_dir


def _tiny(checkpoint: Path, repo: Path, version: int) -> Path:
    from inference.training.export import export

    return export(checkpoint, repo=repo, version=version, keep_others=True)


@pytest.fixture
def settings(files, monkeypatch):
    monkeypatch.setenv("FINMON_PROMOTE_DEV", "false")
    monkeypatch.setenv("FINMON_PROMOTE_SPANS", "")
    monkeypatch.setenv("FINMON_PROMOTE_TOPIC_CSV", str(files["topic_csv"]))
    monkeypatch.setenv("FINMON_PROMOTE_SENTIMENT_CSV", str(files["sentiment_csv"]))
    return promotion_settings()


def test_refuses_a_regression(tmp_path, tiny_checkpoint, settings, capsys):
    model_dir = tmp_path / "finmon_mtl"
    _shipped(model_dir / "1")
    candidate = _tiny(tiny_checkpoint, tmp_path, 2)
    assert main(["model", "promote", str(candidate), "--prune"]) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "topic.accuracy" in out and "REGRESSION" in out
    assert not (candidate / METRICS_FILE).exists()  # nothing recorded, nothing pruned
    assert (model_dir / "1" / "model.onnx").exists()


def test_accepts_an_improvement_records_metrics_and_prunes(tmp_path, tiny_checkpoint, settings, capsys):
    model_dir = tmp_path / "finmon_mtl"
    old = _tiny(tiny_checkpoint, tmp_path, 1)
    candidate = _shipped(model_dir / str(next_version(model_dir)))
    assert candidate.name == "2"
    assert main(["model", "promote", str(candidate), "--prune"]) == 0
    assert "accepted" in capsys.readouterr().out
    recorded = json.loads((candidate / METRICS_FILE).read_text())
    assert recorded["metrics"]["topic.accuracy"] > 0.5
    assert recorded["model_version"] == exported_versions(GPU_REPOSITORY)[-1].model_version
    assert not (candidate / METRICS_FILE).is_symlink()
    assert not (old / "model.onnx").exists() and (old / METRICS_FILE).is_file()  # weights gone, metrics kept
    assert json.loads((old / METRICS_FILE).read_text())["metrics"]["topic.accuracy"] < recorded["metrics"]["topic.accuracy"]


def test_compares_with_recorded_metrics_when_the_weights_are_gone(tmp_path, tiny_checkpoint, settings, files):
    model_dir = tmp_path / "finmon_mtl"
    first = _shipped(model_dir / "1")
    assert promote(first, settings).accepted  # nothing to compare with: accepted and recorded
    (first / "model.onnx").unlink()
    candidate = _tiny(tiny_checkpoint, tmp_path, 2)
    result = promote(candidate, settings)
    assert not result.accepted and "topic.accuracy" in result.regressions
    # recorded on other files: the gate cannot compare and says so (exit 2, one line)
    other = promotion_settings(topic_csv=_head(files["topic_csv"], tmp_path / "t.csv", 21))
    with pytest.raises(Exception, match="different evaluation"):
        promote(candidate, other)


def test_tolerance_applies_to_every_metric():
    cur = {"topic.accuracy": 0.90, "sentiment.macro_f1": 0.80}
    assert compare(cur, {"topic.accuracy": 0.896, "sentiment.macro_f1": 0.85}, 0.005, ("a", "b")).accepted
    refused = compare(cur, {"topic.accuracy": 0.95, "sentiment.macro_f1": 0.79}, 0.005, ("a", "b"))
    assert refused.regressions == ["sentiment.macro_f1"]
    assert compare(cur, {"topic.accuracy": 0.95}, 0.005, ("a", "b")).regressions == ["sentiment.macro_f1"]  # missing
