"""`finmon pretrain`: the corpus never holds a dev or evaluation text; a tiny masked-LM run writes an encoder that
`finmon train --encoder` starts from. Needs the train extra (torch)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from finmon.cli import main  # noqa: E402
from inference.training import data as D  # noqa: E402
from inference.training.corpus import EVAL_SPANS, corpus_splits, file_texts, held_out_keys, shared_texts  # noqa: E402
from inference.training.model import MultiTaskModel  # noqa: E402
from inference.training.recipe import TrainConfig  # noqa: E402

DATA = D.default_data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "conll2003_en").is_dir(), reason="shared training data not found")


def test_the_shared_corpus_is_train_text_only():
    splits = corpus_splits(TrainConfig())
    texts = shared_texts(splits, held_out_keys(splits))
    keys = {D.near_duplicate_key(t) for t in texts}
    dev = {D.near_duplicate_key(t) for t in
           [e.text for t in ("topic", "sentiment") for e in splits[t][1]] + [" ".join(e.tokens) for e in splits["ner"][1]]}
    spans = {D.near_duplicate_key(t) for t in file_texts(EVAL_SPANS)}
    assert not keys & dev and not keys & spans  # no dev text, no hand-checked tweet (rows of topic_train.csv)
    assert len(keys) == len(texts) > 30_000  # de-duplicated, and most of the train text is there
    train_topic = {D.near_duplicate_key(e.text) for e in splits["topic"][0]}
    assert spans <= train_topic | dev and train_topic - keys <= spans | dev  # nothing else was dropped


def test_tiny_pretrain_writes_an_encoder_train_starts_from(tmp_path, capsys):
    out = tmp_path / "pre"
    assert main(["pretrain", "--tiny", "--out", str(out), "--max-steps", "30", "--batch-size", "8",
                 "--lr", "1e-3", "--warmup", "0", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["corpus"]["shared"] > 30_000
    assert summary["loss_end"] < summary["loss_start"]  # the masked-LM objective is really optimised
    model = MultiTaskModel.from_pretrained(out / "encoder")
    from transformers import BertModel

    encoder = BertModel.from_pretrained(str(out / "encoder"), add_pooling_layer=False)
    for name, p in encoder.state_dict().items():  # every weight, the learnt case rows included, carried over
        assert torch.equal(p, model.encoder.state_dict()[name]), name
    case_rows = model.encoder.embeddings.token_type_embeddings.weight
    assert case_rows.shape[0] == 4 and not torch.equal(case_rows[0], case_rows[3])
    cfg = TrainConfig(out_dir=tmp_path / "ft", encoder=out / "encoder", limit=32, epochs=1, batch_size=16, threads=1)
    from inference.training.train import train

    assert train(cfg)["history"][0]["metrics"]["topic"]["n"] > 0
