"""Entity spans are character offsets into the ORIGINAL text; tickers come from the rule; casing ids."""

from __future__ import annotations

import numpy as np
import pytest

from inference.decoding.decode import entity_spans
from inference.labels import NER_TAGS
from inference.decoding.tickers import find_tickers, merge
from inference.tokenize import TextTokenizer, base_model_path, case_id

TRICKY = [
    "😱😱 Apple Inc. slumps in New York https://t.co/Xy &amp; more",
    "特斯拉 Tesla 在 上海 扩产",
    "  leading   spaces and\ttabs:  Goldman Sachs  ",
    "Café Zürich owner Nestlé S.A. — “quoted” text",
    "<p>JPMorgan Chase</p> said&nbsp;Jamie Dimon will stay",
]


@pytest.fixture(scope="module")
def tokenizer() -> TextTokenizer:
    return TextTokenizer.from_dir(base_model_path())


def _probs_for_words(enc, tags_by_word: dict[int, str]) -> np.ndarray:
    probs = np.zeros((len(enc.ids), len(NER_TAGS)))
    previous = None
    for j, w in enumerate(enc.word_ids):
        tag = tags_by_word.get(w, "O") if w is not None else "O"
        if w is not None and w == previous and tag != "O":
            tag = "I-" + tag[2:]
        probs[j, NER_TAGS.index(tag)] = 1.0
        previous = w
    return probs


@pytest.mark.parametrize("text", TRICKY)
def test_spans_point_into_the_original_text(tokenizer, text):
    batch = tokenizer.encode_texts([text])
    enc = batch.encodings[0]
    words = sorted({w for w in enc.word_ids if w is not None})
    # tag every second word as a one-word ORG, and the last two words as one PER
    tags = {w: "B-ORG" for w in words[::2]}
    tags.update({words[-2]: "B-PER", words[-1]: "I-PER"})
    spans = entity_spans(text, enc, _probs_for_words(enc, tags))
    assert spans
    for s in spans:
        assert text[s.start : s.end] == s.text and s.text.strip() == s.text and s.text
    assert spans[-1].label == "PER"


def test_multi_piece_word_is_one_span(tokenizer):
    text = "Shares of Skyworks rose"
    enc = tokenizer.encode_texts([text]).encodings[0]
    word = enc.word_ids[[i for i, (a, b) in enumerate(enc.offsets) if text[a:b].lower().startswith("sky")][0]]
    spans = entity_spans(text, enc, _probs_for_words(enc, {word: "B-ORG"}))
    assert [(s.text, s.label) for s in spans] == [("Skyworks", "ORG")]


def test_tickers():
    text = "$TSLA up, $brk.b flat, <JNJ.N> down (NASDAQ:AAPL); paid $100 and $1.5bn; a$B no"
    found = [(t.text, t.company_id) for t in find_tickers(text)]
    assert found == [("$TSLA", "TSLA"), ("$brk.b", "BRK.B"), ("<JNJ.N>", "JNJ.N"), ("NASDAQ:AAPL", "AAPL")]
    for t in find_tickers(text):
        assert text[t.start : t.end] == t.text and t.label == "TICKER"


def test_ticker_spans_win_over_overlapping_learned_spans():
    from inference.decoding.prediction import EntitySpan

    text = "Buy $AAPL says Apple"
    learned = [EntitySpan(4, 9, "ORG", "$AAPL"), EntitySpan(15, 20, "ORG", "Apple")]
    merged = merge(learned, find_tickers(text))
    assert [(s.label, s.text) for s in merged] == [("TICKER", "$AAPL"), ("ORG", "Apple")]


def test_case_ids():
    assert [case_id(x) for x in ("apple", "Apple", "IBM", "A", "123", "特斯拉", "")] == [1, 2, 3, 2, 0, 0, 0]


def test_casing_reaches_the_model_inputs(tokenizer):
    batch = tokenizer.encode_texts(["APPLE Apple apple"])
    cases = batch.case_ids[0][batch.attention_mask[0] == 1].tolist()
    assert cases == [0, 3, 2, 1, 0]  # [CLS] APPLE Apple apple [SEP]
    words = tokenizer.encode_words([["APPLE", "Apple", "apple"]])
    assert words.case_ids[0].tolist() == cases


def test_learned_spans_inside_urls_lower_case_or_without_letters_are_dropped():
    from inference.decoding.decode import plausible
    from inference.decoding.prediction import EntitySpan

    text = "Apple & Co: see https://t.co/AbC123 or www.example.com/Apple , ok"  # noqa: ISC
    spans = [EntitySpan(0, 5, "ORG", "Apple"), EntitySpan(6, 7, "ORG", "&"), EntitySpan(16, 21, "ORG", "https"),
             EntitySpan(24, 28, "ORG", "t.co"), EntitySpan(55, 60, "ORG", "Apple"), EntitySpan(61, 62, "ORG", ",")]
    for s in spans:
        assert text[s.start : s.end] == s.text
    assert [(s.start, s.text) for s in plausible(text, spans)] == [(0, "Apple")]
    text = "Exxon & more said react (Tesla)"
    spans = [EntitySpan(0, 7, "ORG", "Exxon &"), EntitySpan(18, 23, "PER", "react"), EntitySpan(24, 31, "ORG", "(Tesla)")]
    assert [(s.start, s.end, s.text) for s in plausible(text, spans)] == [(0, 5, "Exxon"), (25, 30, "Tesla")]
    text = "Apple Inc. beats; Inc. and Corp rise at Acme Co"
    spans = [EntitySpan(0, 10, "ORG", "Apple Inc."), EntitySpan(18, 22, "LOC", "Inc."), EntitySpan(27, 31, "ORG", "Corp"),
             EntitySpan(40, 47, "ORG", "Acme Co")]
    assert [s.text for s in plausible(text, spans)] == ["Apple Inc.", "Acme Co"]


def test_an_abbreviation_split_by_the_token_head_is_one_span_again():
    from inference.decoding.decode import join_abbreviations
    from inference.decoding.prediction import EntitySpan

    text = "support the U.S. economy and the U.K. too, S.A. fine, US too"
    us, uk, sa, plain = text.index("U.S."), text.index("U.K."), text.index("S.A."), text.index("US ")
    spans = [EntitySpan(us, us + 1, "LOC", "U"), EntitySpan(us + 2, us + 3, "LOC", "S"),
             EntitySpan(uk, uk + 1, "LOC", "U"), EntitySpan(sa, sa + 1, "PER", "S"),
             EntitySpan(plain, plain + 2, "LOC", "US")]
    got = [(s.start, s.end, s.label, s.text) for s in join_abbreviations(text, spans)]
    assert got == [(us, us + 4, "LOC", "U.S."), (uk, uk + 4, "LOC", "U.K."), (sa, sa + 4, "PER", "S.A."),
                   (plain, plain + 2, "LOC", "US")]
    mixed = [EntitySpan(us, us + 1, "LOC", "U"), EntitySpan(us + 2, us + 3, "ORG", "S")]  # two labels: as they are
    assert join_abbreviations(text, mixed) == mixed


def test_an_inside_tag_of_another_type_continues_the_span_and_the_mass_decides_the_type(tokenizer):
    text = "Stocks slide as Wall Street waits and Joe Biden Jr speaks"
    enc = tokenizer.encode_texts([text]).encodings[0]
    starts = {a: w for (a, _), w in zip(enc.offsets, enc.word_ids, strict=True) if w is not None}
    probs = np.zeros((len(enc.ids), len(NER_TAGS)))
    probs[:, NER_TAGS.index("O")] = 1.0

    def tag(word: str, dist: dict[str, float]) -> None:
        for j, w in enumerate(enc.word_ids):  # every piece of the word
            if w == starts[text.index(word)]:
                probs[j] = 0.0
                for t, p in dist.items():
                    probs[j, NER_TAGS.index(t)] = p

    tag("Wall", {"B-ORG": 0.5, "B-LOC": 0.4, "O": 0.1})        # argmax ORG ...
    tag("Street", {"I-LOC": 0.9, "I-ORG": 0.05, "O": 0.05})     # ... but the name as a whole is a place
    tag("Joe", {"B-PER": 0.9, "O": 0.1})
    tag("Biden", {"B-PER": 0.6, "I-PER": 0.3, "O": 0.1})        # a B starts a new name
    tag("Jr", {"I-PER": 0.8, "O": 0.2})
    got = [(s.text, s.label) for s in entity_spans(text, enc, probs)]
    assert got == [("Wall Street", "LOC"), ("Joe", "PER"), ("Biden Jr", "PER")]


def test_an_abbreviation_without_its_last_dot_is_joined_too():
    from inference.decoding.decode import join_abbreviations
    from inference.decoding.prediction import EntitySpan

    text = "U.S INITIAL JOBLESS CLAIMS; e.g. U.S.A. data"
    usa = text.index("U.S.A.")
    spans = [EntitySpan(0, 1, "LOC", "U"), EntitySpan(2, 3, "LOC", "S"), EntitySpan(usa, usa + 1, "LOC", "U")]
    got = [(s.text, s.label) for s in join_abbreviations(text, spans)]
    assert got == [("U.S", "LOC"), ("U.S.A.", "LOC")]


def test_symbols_at_a_spans_edge_are_trimmed():
    from inference.decoding.decode import plausible
    from inference.decoding.prediction import EntitySpan

    text = "⚡ Xi faces a dilemma; AT&T 📉 and Moody's. Mr. Trump"
    spans = [EntitySpan(0, 4, "PER", "⚡ Xi"), EntitySpan(text.index("AT&T"), text.index("📉") + 1, "ORG", "AT&T 📉"),
             EntitySpan(text.index("Moody"), text.index("Mr"), "ORG", "Moody's. "),
             EntitySpan(text.index(". Trump"), len(text), "PER", ". Trump")]
    assert [s.text for s in plausible(text, spans)] == ["Xi", "AT&T", "Moody's.", "Trump"]


def _word_probs(text: str, enc, dists: dict[str, dict[str, float]]) -> np.ndarray:
    """Tag probabilities per piece: every piece of the word starting ``text.index(word)`` gets ``dists[word]``."""
    starts = {a: w for (a, _), w in zip(enc.offsets, enc.word_ids, strict=True) if w is not None}
    probs = np.zeros((len(enc.ids), len(NER_TAGS)))
    probs[:, NER_TAGS.index("O")] = 1.0
    for word, dist in dists.items():
        for j, w in enumerate(enc.word_ids):
            if w == starts[text.index(word)]:
                probs[j] = [dist.get(t, 0.0) for t in NER_TAGS]
    return probs


def test_a_spans_score_falls_when_the_next_piece_may_continue_the_name(tokenizer):
    text = "Morgan Stanley cuts jobs"
    enc = tokenizer.encode_texts([text]).encodings[0]
    sure = _word_probs(text, enc, {"Morgan": {"B-ORG": 0.9, "O": 0.1}})
    unsure = _word_probs(text, enc, {"Morgan": {"B-ORG": 0.9, "O": 0.1}, "Stanley": {"O": 0.6, "I-ORG": 0.4}})
    [a], [b] = entity_spans(text, enc, sure), entity_spans(text, enc, unsure)
    assert (a.text, b.text) == ("Morgan", "Morgan")
    assert a.score == pytest.approx(0.9) and b.score == pytest.approx(0.9 * 0.6)


def test_unsure_spans_are_dropped_unless_the_graph_knows_the_name_and_tickers_always_stay(tokenizer):
    from inference.decoding.decode import decode
    from inference.labels import SENTIMENTS, TOPICS

    text = "Hedge Funds Are Warming Up To Apple and $TSLA"
    batch = tokenizer.encode_texts([text])
    probs = _word_probs(text, batch.encodings[0], {"Hedge": {"B-ORG": 0.7, "O": 0.3}, "Funds": {"I-ORG": 0.7, "O": 0.3},
                                                  "Apple": {"B-ORG": 0.7, "O": 0.3}})
    logits = (np.zeros((1, len(TOPICS))), np.zeros((1, len(SENTIMENTS))), np.log(probs + 1e-12)[None])

    def found(*min_scores: float) -> list[tuple[str, str | None]]:
        [p] = decode([text], batch, *logits, "test", *min_scores)
        return [(e.text, e.entity_id) for e in p.entities]

    assert found() == [("Apple", "AAPL"), ("$TSLA", "TSLA")]  # defaults: unlinked needs 0.85, linked 0.5
    assert found(0.0, 0.0) == [("Hedge Funds", "hedge funds"), ("Apple", "AAPL"), ("$TSLA", "TSLA")]
    assert found(0.0, 0.8) == [("Hedge Funds", "hedge funds"), ("$TSLA", "TSLA")]  # the linked bar applies to Apple


def test_the_span_score_bars_come_from_the_model_settings(monkeypatch):
    from inference.errors import ConfigError
    from inference.serving.predictor import load_predictor

    monkeypatch.delenv("FINMON_TRITON_URL", raising=False)
    monkeypatch.setenv("FINMON_MODEL_ENTITY_MIN_SCORE", "0.3")
    monkeypatch.setenv("FINMON_MODEL_LINKED_ENTITY_MIN_SCORE", "0.2")
    assert load_predictor().min_scores == (0.3, 0.2)
    monkeypatch.setenv("FINMON_MODEL_ENTITY_MIN_SCORE", "1.5")
    with pytest.raises((ConfigError, ValueError)):
        load_predictor()


def test_the_shipped_model_keeps_its_calibrated_span_precision_on_the_hand_checked_tweets():
    """The bars were chosen on eval/tweet_spans.jsonl (MODEL_CARD.md): a decoder or bar change that lets wrong spans
    back in, or a model that needs new bars, fails here. Every span it predicts must be judged."""
    from pathlib import Path

    from inference.evaluation.spans import span_precision
    from inference.serving.predictor import OnnxPredictor
    from inference.serving.triton_repository import latest_version
    from inference.settings import model_settings

    settings = model_settings()
    shipped = OnnxPredictor(latest_version(settings.repository, settings.name).path)  # default bars
    spans = Path(__file__).resolve().parents[2] / "eval" / "tweet_spans.jsonl"
    calibrated = span_precision(shipped, spans)
    everything = span_precision(OnnxPredictor(shipped.version_dir, min_scores=(0.0, 0.0)), spans)
    assert calibrated["unjudged"] == 0 and everything["unjudged"] == 0
    assert calibrated["precision"] >= 0.90 > everything["precision"]
    assert calibrated["correct"] >= 0.7 * everything["correct"]  # most right names stay
