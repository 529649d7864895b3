"""Training smoke test, export round trip (ONNX == torch), predictor edge cases. Needs the train extra (torch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import onnx

torch = pytest.importorskip("torch")

from inference.training.export import export, round_weights  # noqa: E402
from inference.labels import NER_TAGS, SENTIMENTS, TOPICS  # noqa: E402
from inference.training.model import MultiTaskModel  # noqa: E402
from inference.serving.predictor import OnnxPredictor  # noqa: E402
from inference.training.recipe import TrainConfig, load_splits  # noqa: E402
from inference.training.model import torch_runner  # noqa: E402
from inference.training.train import train  # noqa: E402
from inference.training.data import default_data_dir  # noqa: E402

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "conll2003_en").is_dir(), reason="shared training data not found")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(out_dir=out, tiny=True, limit=96, epochs=2, batch_size=16, lr=1e-3, threads=1)
    summary = train(cfg)
    assert len(summary["history"]) == 2
    return out


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    return export(tiny_run / "best", repo=tmp_path_factory.mktemp("repo"))


def test_training_writes_checkpoints_and_dev_metrics(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert (tiny_run / "epoch-1" / "model.pt").is_file() and (tiny_run / "best" / "model.pt").is_file()
    metrics = summary["history"][-1]["metrics"]
    assert {"topic", "sentiment", "ner"} <= metrics.keys()
    assert 0.0 <= metrics["topic"]["accuracy"] <= 1.0 and metrics["topic"]["n"] > 0


def test_training_reduces_the_weighted_loss(tmp_path):
    """A few steps on a fixed batch must lower each task's loss (the objective is really optimised)."""
    from inference.training.batches import TaskData
    from inference.training.data import read_conll, read_topic_csv
    from inference.tokenize import TextTokenizer, base_model_path
    from inference.training.train import loss_of

    torch.manual_seed(0)
    model = MultiTaskModel.tiny()
    tok = TextTokenizer.from_dir(base_model_path())
    topic = TaskData("topic", read_topic_csv(DATA / "twitter_financial_news_topic/topic_train.csv")[:16])
    ner = TaskData("ner", read_conll(DATA / "conll2003_en/train.txt")[:16])
    batches = [topic.make(tok, topic.examples), ner.make(tok, ner.examples)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    before = [float(loss_of(model, b)) for b in batches]
    for _ in range(15):
        for b in batches:
            opt.zero_grad()
            loss_of(model, b).backward()
            opt.step()
    after = [float(loss_of(model, b)) for b in batches]
    assert all(a < b for a, b in zip(after, before)), (before, after)


def test_export_layout_and_size(exported):
    meta = json.loads((exported / "finmon.json").read_text())
    assert meta["topics"] == list(TOPICS) and meta["sentiments"] == list(SENTIMENTS)
    assert meta["ner_tags"] == list(NER_TAGS) and meta["model_version"].startswith("finmon_mtl-1-")
    assert (exported / "tokenizer.json").is_file()
    assert (exported.parent / "config.pbtxt").is_file()


def test_onnx_matches_torch(tiny_run, exported):
    """Same labels and probabilities within 1e-3 as the torch model with the same (int8-stored) weights."""
    from inference.decoding.decode import softmax
    from inference.training.data import read_sentiment_csv

    predictor = OnnxPredictor(exported)
    model = round_weights(MultiTaskModel.load(tiny_run / "best"))
    texts = [e.text for e in read_sentiment_csv(DATA / "twitter_financial_news_sentiment/sent_train.csv")[:300]]
    run_torch = torch_runner(model)
    for start in range(0, len(texts), 50):
        batch = predictor.tokenizer.encode_texts(texts[start : start + 50])
        for onnx_out, torch_out in zip(predictor.run(batch), run_torch(batch)):
            p_onnx, p_torch = softmax(onnx_out.astype(np.float64)), softmax(torch_out.astype(np.float64))
            assert np.abs(p_onnx - p_torch).max() < 1e-3
            assert (p_onnx.argmax(-1) == p_torch.argmax(-1)).mean() > 0.99  # ties within 1e-3 may flip


def test_int8_weight_storage_is_exact_for_rounded_weights(tiny_run, exported):
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(exported / "model.onnx")).graph
    int8 = [i for i in graph.initializer if numpy_helper.to_array(i).dtype == np.int8]
    assert int8, "big weights should be stored as int8"
    assert sum(n.op_type == "DequantizeLinear" for n in graph.node) == len(int8)


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "x" * 100_000, "Tesla 股价 下跌 😱 " * 3000, "Ölpreis fällt: Börse in Frankfurt schwächer",
     "<b>Apple</b> &amp; Google https://t.co/abc 🚀🚀 $AAPL"],
)
def test_predictor_handles_awkward_input(exported, text):
    [p] = OnnxPredictor(exported).predict([text])
    assert p.topic in TOPICS and p.sentiment in SENTIMENTS
    assert abs(sum(p.topic_probs.values()) - 1) < 1e-6
    for e in p.entities:
        assert text[e.start : e.end] == e.text
    if len(text.split()) > 1000:  # far more word pieces than the window: the prediction says so
        assert p.truncated


def test_predictor_rejects_non_text(exported):
    from inference.errors import InputError

    with pytest.raises(InputError):
        OnnxPredictor(exported).predict(["ok", None])  # type: ignore[list-item]


def test_predictor_keeps_input_order(exported):
    predictor = OnnxPredictor(exported, batch_size=2)
    texts = ["short", "a much longer text about the Federal Reserve raising rates again", "mid length text", ""]
    one_by_one = [predictor.predict([t])[0] for t in texts]
    together = predictor.predict(texts)
    for a, b in zip(one_by_one, together):
        assert a.topic == b.topic
        assert max(abs(a.topic_probs[k] - b.topic_probs[k]) for k in TOPICS) < 1e-4


def test_head_refit_changes_only_the_token_head(tiny_run, tmp_path):
    """Stage 2 of the recipe (--init --freeze-encoder --tasks ner): topic and sentiment outputs stay exact."""
    cfg = TrainConfig(out_dir=tmp_path, tiny=True, init=tiny_run / "best", freeze_encoder=True, tasks=("ner",),
                      ner_sources=("conll", "btc"), limit=64, epochs=1, batch_size=16, lr=1e-2, threads=1)
    train(cfg)
    before, after = MultiTaskModel.load(tiny_run / "best"), MultiTaskModel.load(tmp_path / "best")
    for name, p in before.state_dict().items():
        changed = not torch.equal(p, after.state_dict()[name])
        assert changed == name.startswith("token_head"), name


def test_teacher_ensemble_averages_sentiment_probabilities(tiny_run):
    from inference.training.teacher import sentiment_probs

    texts = ["Shares of Acme plunge 20%", "", "Fed holds rates steady", "x " * 300]
    one = sentiment_probs([tiny_run / "best"], texts)
    two = sentiment_probs([tiny_run / "best", tiny_run / "epoch-1"], texts)
    assert one.shape == (4, len(SENTIMENTS)) and np.allclose(one.sum(1), 1.0)
    first = sentiment_probs([tiny_run / "epoch-1"], texts)
    assert np.allclose(two, (one + first) / 2, atol=1e-6)


def test_pseudo_label_command_labels_the_topic_train_split(tiny_run, tmp_path):
    from finmon.cli import main
    from inference.training.data import read_sentiment_csv

    data = tmp_path / "data"
    (data / "twitter_financial_news_topic").mkdir(parents=True)
    rows = [f'"Company {i} reports quarter number {i}",{i % 20}' for i in range(60)]
    (data / "twitter_financial_news_topic" / "topic_train.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "pseudo.csv"
    assert main(["pseudo-label", str(tiny_run / "best"), "--data-dir", str(data), "--out", str(out)]) == 0
    labelled = read_sentiment_csv(out)
    topic_train, topic_dev = load_splits(TrainConfig(data_dir=data, tasks=("topic",)))["topic"]
    assert sorted(e.text for e in labelled) == sorted(e.text for e in topic_train)
    assert not {e.text for e in labelled} & {e.text for e in topic_dev}


def test_soup_is_the_weight_average_and_loads_as_a_checkpoint(tiny_run, tmp_path):
    from finmon.cli import main

    out = tmp_path / "soup"
    assert main(["soup", str(tiny_run / "epoch-1"), str(tiny_run / "epoch-2"), "--out", str(out)]) == 0
    one, two = (MultiTaskModel.load(tiny_run / e).state_dict() for e in ("epoch-1", "epoch-2"))
    soup = MultiTaskModel.load(out)
    for name, p in soup.state_dict().items():
        assert torch.allclose(p, (one[name] + two[name]) / 2) if p.is_floating_point() else torch.equal(p, one[name])
    from inference.tokenize import TextTokenizer

    outputs = torch_runner(soup)(TextTokenizer.from_dir(out).encode_texts(["Fed holds rates"]))
    assert [o.shape[-1] for o in outputs] == [len(TOPICS), len(SENTIMENTS), len(NER_TAGS)]


def test_soup_refuses_different_architectures(tiny_run, tmp_path):
    from inference.training.soup import average_checkpoints

    other = MultiTaskModel.tiny(vocab_size=1000).save(tmp_path / "other", tiny_run / "best")
    with pytest.raises(ValueError, match="architecture"):
        average_checkpoints([tiny_run / "best", other], tmp_path / "soup")
    with pytest.raises(ValueError, match="two"):
        average_checkpoints([tiny_run / "best"], tmp_path / "soup")


def test_export_optimize_writes_the_int8_compute_graph(tiny_run, exported, tmp_path):
    out = export(tiny_run / "best", repo=tmp_path, quantize=True)
    ops = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert "MatMulIntegerToFloat" in ops and json.loads((out / "finmon.json").read_text())["dynamic_quantization"]
    texts = ["Apple shares fell after the Fed spoke", "Gold rallies"]
    fast, ref = OnnxPredictor(out).predict(texts), OnnxPredictor(exported).predict(texts)
    assert [p.model_version for p in fast] != [p.model_version for p in ref]
    for a, b in zip(fast, ref, strict=True):
        assert abs(a.topic_probs[a.topic] - b.topic_probs.get(a.topic, 0.0)) < 0.1  # same model, int8 activations


def _outputs(model: MultiTaskModel, texts: list[str]) -> list[np.ndarray]:
    from inference.tokenize import TextTokenizer, base_model_path

    return list(torch_runner(model.eval())(TextTokenizer.from_dir(base_model_path()).encode_texts(texts)))


TEXTS = ["Tractor Supply Company Reports Record Second Quarter Results", "Fed's Powell sees rates higher for longer",
         "$TSLA down 4% premarket after recall"]


@pytest.mark.parametrize("head, moves", [("token", 2), ("sentiment", 1)])
def test_a_branch_starts_as_the_shared_top_and_leaves_the_other_heads_alone(head, moves):
    """A fresh branch computes what the shared top did; trained apart, it moves only its own head's logits."""
    torch.manual_seed(1)
    model = MultiTaskModel.tiny()
    before = _outputs(model, TEXTS)
    model.add_branch(head, 1)
    start = _outputs(model, TEXTS)
    for a, b in zip(before, start, strict=True):
        assert np.abs(a - b).max() < 1e-5
    with torch.no_grad():
        for p in getattr(model, f"{head}_layers").parameters():
            p.add_(0.05 * torch.randn_like(p))
    moved = _outputs(model, TEXTS)
    for i in range(3):
        assert np.array_equal(moved[i], before[i]) != (i == moves), i
    assert np.abs(moved[moves] - before[moves]).max() > 1e-3
    with pytest.raises(ValueError):
        model.add_branch(head, 2)


@pytest.mark.parametrize("head, options", [("token", {"tasks": ("ner",), "ner_case_augment": 0.5}),
                                           ("sentiment", {"tasks": ("sentiment",)})])
def test_refit_with_a_branch_trains_the_branch_not_the_encoder(tiny_run, tmp_path, head, options):
    cfg = TrainConfig(out_dir=tmp_path, tiny=True, init=tiny_run / "best", freeze_encoder=True, limit=64, epochs=1,
                      batch_size=16, lr=1e-2, threads=1, **{f"{head}_layers": 1}, **options)
    train(cfg)
    before, after = MultiTaskModel.load(tiny_run / "best"), MultiTaskModel.load(tmp_path / "best")
    assert len(getattr(after, f"{head}_layers")) == 1
    for name, p in after.state_dict().items():
        if name in before.state_dict():
            assert torch.equal(p, before.state_dict()[name]) != name.startswith(f"{head}_head"), name
    top = dict(before.encoder.encoder.layer[-1].named_parameters())
    trained = [n for n, p in getattr(after, f"{head}_layers")[0].named_parameters() if not torch.equal(p, top[n])]
    assert trained, f"the {head} branch was not trained"


def test_training_the_top_layers_leaves_a_token_branch_below_them_exact(tiny_run, tmp_path):
    """--train-layers 1 on a model whose token branch forks below the top layer: the shared top and the text
    heads learn, the embeddings, the lower layer, the branch and so every token logit stay exactly as they were."""
    start = MultiTaskModel.load(tiny_run / "best")
    start.add_branch("token", 1)
    start.save(tmp_path / "start", tiny_run / "best")
    cfg = TrainConfig(out_dir=tmp_path / "run", tiny=True, init=tmp_path / "start", train_layers=1,
                      tasks=("topic", "sentiment"), limit=64, epochs=1, batch_size=16, lr=1e-2, threads=1)
    train(cfg)
    before, after = MultiTaskModel.load(tmp_path / "start"), MultiTaskModel.load(tmp_path / "run" / "best")
    learnt = ("encoder.encoder.layer.1.", "topic_head", "sentiment_head")
    for name, p in after.state_dict().items():
        assert torch.equal(p, before.state_dict()[name]) != name.startswith(learnt), name
    old, new = _outputs(before, TEXTS), _outputs(after, TEXTS)
    assert np.array_equal(old[2], new[2])
    assert not np.array_equal(old[1], new[1])


def test_an_export_imports_back_as_the_same_model(tiny_run, tmp_path):
    """finmon train --init VERSION_FOLDER: the torch model rebuilt from model.onnx computes what ONNX serves."""
    from inference.training.export import import_export, load_model

    model = MultiTaskModel.load(tiny_run / "best")
    model.add_branch("token", 1)
    model.add_branch("sentiment", 2)
    with torch.no_grad():
        for p in [*model.token_layers.parameters(), *model.sentiment_layers.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    model.save(tmp_path / "ckpt", tiny_run / "best")
    assert len(MultiTaskModel.load(tmp_path / "ckpt").sentiment_layers) == 2
    version = export(tmp_path / "ckpt", repo=tmp_path / "repo")
    rebuilt = load_model(version)
    assert (len(rebuilt.token_layers), len(rebuilt.sentiment_layers)) == (1, 2)
    predictor = OnnxPredictor(version)
    batch = predictor.tokenizer.encode_texts(TEXTS)
    for served, torch_out in zip(predictor.run(batch), torch_runner(rebuilt)(batch), strict=True):
        assert np.abs(served - torch_out).max() < 1e-4
    with pytest.raises(ValueError, match="architecture"):  # a graph without the branch is not this model
        meta = json.loads((version / "finmon.json").read_text())
        (version / "finmon.json").write_text(json.dumps({**meta, "token_layers": 0}))
        import_export(version)


def test_an_int8_compute_version_names_the_version_to_start_from(tiny_run, tmp_path):
    from inference.errors import ConfigError
    from inference.serving.optimize import optimize_version
    from inference.training.export import import_export

    version = export(tiny_run / "best", repo=tmp_path / "repo")
    fast = optimize_version(version, tmp_path / "repo" / "finmon_mtl" / "2")
    origin = json.loads((version / "finmon.json").read_text())["model_version"]
    with pytest.raises(ConfigError, match=f"int8-compute.*{origin}"):
        import_export(fast)
