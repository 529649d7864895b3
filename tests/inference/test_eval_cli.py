"""`finmon eval` on files in exactly the shared training formats: the table and the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finmon.cli import main
from inference.training.data import default_data_dir

DATA = default_data_dir()
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (DATA / "finer_ord").is_dir(), reason="shared training data not found")


def _head(src: Path, dst: Path, lines: int, encoding: str = "utf-8") -> Path:
    with open(src, encoding=encoding) as fh:
        dst.write_text("".join(fh.readline() for _ in range(lines)), encoding=encoding)
    return dst


def test_eval_writes_the_documented_json(tmp_path, capsys):
    topic = _head(DATA / "twitter_financial_news_topic/topic_train.csv", tmp_path / "topic.csv", 41)
    sent = _head(DATA / "twitter_financial_news_sentiment/sent_train.csv", tmp_path / "sent.csv", 41)
    finer = _head(DATA / "finer_ord/train.csv", tmp_path / "finer.csv", 400)
    conll = _head(DATA / "conll2003_en/train.txt", tmp_path / "conll.txt", 300)
    out = tmp_path / "metrics.json"
    assert main(["eval", "--topic-csv", str(topic), "--sentiment-csv", str(sent), "--finer-csv", str(finer),
                 "--conll", str(conll), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model_version"].startswith("finmon_mtl-")
    for task in ("topic", "sentiment"):
        assert set(result[task]) >= {"accuracy", "macro_f1"} and result[task]["n"] == 40
        assert 0.0 <= result[task]["macro_f1"] <= result[task]["accuracy"] + 1.0
    for task in ("ner_finer", "ner_conll"):
        assert set(result[task]) >= {"precision", "recall", "f1"}
    # the shipped model reads these training rows well: a broken label map or head order would not
    assert result["topic"]["accuracy"] > 0.5 and result["sentiment"]["accuracy"] > 0.5  # chance: 0.05, 0.33
    assert result["ner_conll"]["f1"] > 0.7
    table = capsys.readouterr().out
    assert "ner_conll" in table and "accuracy" in table


def test_eval_rejects_a_malformed_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,99\n")
    assert main(["eval", "--topic-csv", str(bad)]) == 2  # DataError: clear message, no traceback


def test_baseline_scores_sit_beside_the_model_in_the_json_and_the_table(tmp_path):
    from inference.evaluation.evaluate import evaluate_files, format_table
    from inference.training.recipe import TrainConfig

    topic = _head(DATA / "twitter_financial_news_topic/topic_train.csv", tmp_path / "topic.csv", 41)
    sent = _head(DATA / "twitter_financial_news_sentiment/sent_train.csv", tmp_path / "sent.csv", 41)
    # a small recipe keeps the fit short; the first rows of each file are among its training examples
    result = evaluate_files(topic_csv=topic, sentiment_csv=sent, baselines=True, per_class=True,
                            recipe=TrainConfig(limit=400))
    base = result["baseline"]
    assert base["name"] == "tfidf-logreg" and set(base) == {"name", "topic", "sentiment"}
    for task in ("topic", "sentiment"):
        assert set(base[task]) == set(result[task]) == {"accuracy", "macro_f1", "n", "per_class"}
        assert base[task]["n"] == result[task]["n"] == 40
    # fitted on these very rows: a label map or an example/label misalignment would not score this well
    assert base["topic"]["accuracy"] > 0.8 and base["sentiment"]["accuracy"] > 0.8
    assert sum(c["n"] for c in base["topic"]["per_class"].values()) == 40
    table = format_table(result)
    assert "topic [tfidf-logreg]" in table and "sentiment [tfidf-logreg]" in table and "Earnings" in table
def test_eval_runs_on_the_base_install(tmp_path):
    """No torch, no seqeval (the train extra): `finmon eval` of the shipped model still works, same numbers."""
    blocked = tmp_path / "blocked"
    for name in ("torch", "seqeval", "transformers"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ModuleNotFoundError('No module named {name!r}', "
                                                    f"name={name!r})\n")
    conll = _head(DATA / "conll2003_en/train.txt", tmp_path / "conll.txt", 300)
    topic = _head(DATA / "twitter_financial_news_topic/topic_train.csv", tmp_path / "topic.csv", 41)
    out = tmp_path / "base.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", "import sys; from finmon.cli import main; sys.exit(main())", "eval", "--conll", str(conll), "--topic-csv",
                           str(topic), "--json", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    base = json.loads(out.read_text())
    assert main(["eval", "--conll", str(conll), "--topic-csv", str(topic), "--json", str(tmp_path / "full.json")]) == 0
    assert base == json.loads((tmp_path / "full.json").read_text())
    assert base["ner_conll"]["f1"] > 0.7


def test_decoded_entity_metrics_score_the_stored_spans_against_gold_character_spans():
    from inference.decoding.prediction import EntitySpan, Prediction
    from inference.evaluation.evaluate import decoded_entity_metrics
    from inference.labels import NER_TAGS
    from inference.training.data import TokenExample

    words = ["Shares", "of", "Morgan", "Stanley", "fell", "in", "New", "York"]
    tags = [NER_TAGS.index(t) for t in ("O", "O", "B-ORG", "I-ORG", "O", "O", "B-LOC", "I-LOC")]
    text = " ".join(words)
    seen: list[str] = []

    class Stored:
        """What the decoder would store for the sentence: one right name, one cut name, one ticker."""

        def predict(self, texts):
            seen.extend(texts)
            ms, york = text.index("Morgan"), text.index("York")
            return [Prediction("Markets", {}, "negative", 1.0, {}, entities=[
                EntitySpan(ms, ms + len("Morgan Stanley"), "ORG", "Morgan Stanley"),
                EntitySpan(york, york + 4, "LOC", "York"), EntitySpan(0, 3, "TICKER", "$MS")])]

    m = decoded_entity_metrics(Stored(), [TokenExample(words, tags, "conll")])
    assert seen == [text]
    assert (m["precision"], m["recall"], m["n"]) == (0.5, 0.5, 1)  # the ticker is not a learned span


def test_the_span_curve_shows_what_each_bar_trades(tmp_path, capsys):
    conll = _head(DATA / "conll2003_en/train.txt", tmp_path / "conll.txt", 300)
    spans, out = ROOT / "eval" / "tweet_spans.jsonl", tmp_path / "curve.json"
    assert main(["eval", "--spans", str(spans), "--span-curve", "--conll", str(conll), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    curve = result["span_curve"]
    served = [r for r in curve if r["served"]]
    assert len(served) == 1 and served[0]["tweet_spans"] == result["tweet_spans"]
    assert result["decoded_ner_conll"] == served[0]["ner_conll"]
    everything = next(r for r in curve if (r["min_score"], r["linked_min_score"]) == (0.0, 0.0))
    # a higher bar keeps a subset of the spans: fewer, never more, and every one of them judged
    assert everything["tweet_spans"]["n"] > served[0]["tweet_spans"]["n"] and everything["tweet_spans"]["unjudged"] == 0
    assert everything["ner_conll"]["recall"] >= served[0]["ner_conll"]["recall"]
    table = capsys.readouterr().out
    bars = f"{served[0]['min_score']:.2f} / {served[0]['linked_min_score']:.2f} *"
    assert "span-score bars" in table and bars in table
    assert main(["eval", "--span-curve"]) == 2  # the curve needs the hand-checked spans: one clear line


def test_bars_off_the_grid_still_get_their_row(monkeypatch):
    from inference.evaluation.evaluate import evaluate_files

    monkeypatch.delenv("FINMON_TRITON_URL", raising=False)
    monkeypatch.setenv("FINMON_MODEL_ENTITY_MIN_SCORE", "0.77")
    result = evaluate_files(spans=ROOT / "eval" / "tweet_spans.jsonl", curve=True)
    [served] = [r for r in result["span_curve"] if r["served"]]
    assert (served["min_score"], served["linked_min_score"]) == (0.77, 0.5)
    assert served["tweet_spans"] == result["tweet_spans"]
