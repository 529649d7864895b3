"""Readers of inference.training.data: label mapping per source on tiny files in each shared format, the real shared files'
counts (skipped when /work/shared/data is absent), de-duplication and the dev split."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from inference.training import data as D
from inference.training.data import DataError, TextExample, TokenExample
from inference.errors import FinmonError
from inference.labels import NER_TAGS, SENTIMENTS, TOPICS

NEG, NEU, POS = (SENTIMENTS.index(s) for s in ("negative", "neutral", "positive"))


def tags(*names: str) -> list[int]:
    return [NER_TAGS.index(n) for n in names]


def names(ex: TokenExample) -> list[str]:
    return [NER_TAGS[t] for t in ex.tags]


def assert_iob2(ex: TokenExample) -> None:
    prev = "O"
    for tag in names(ex):
        if tag.startswith("I-"):
            assert prev != "O" and prev[2:] == tag[2:], (ex.source, ex.tokens, names(ex))
        prev = tag


# ---------------------------------------------------------------------------------------------- text sources


def test_topic_csv(tmp_path: Path) -> None:
    p = tmp_path / "topic_train.csv"
    p.write_text(
        'text,label\n"Here are Thursday\'s biggest analyst calls: Apple, Exxon &amp; more  https://t.co/x",0\n'
        '"IPO, with ""quotes""\nand a newline",11\nStock up,19\n',
        encoding="utf-8",
    )
    ex = D.read_topic_csv(p)
    assert [e.label for e in ex] == [0, TOPICS.index("IPO"), TOPICS.index("Stock Movement")]
    assert ex[1].text == 'IPO, with "quotes"\nand a newline'
    assert {e.source for e in ex} == {"twitter_topic"}


@pytest.mark.parametrize(
    "body, line",
    [("text,label\nok,0\nbad,20\n", 3), ("text,label\nok,0\nbad,x\n", 3), ("text,label\nok,0,1\n", 2),
     ("txt,lbl\nok,0\n", 1), ("", 1)],
)
def test_topic_csv_malformed_names_file_and_line(tmp_path: Path, body: str, line: int) -> None:
    p = tmp_path / "t.csv"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=rf"t\.csv:{line}\b") as info:
        D.read_topic_csv(p)
    assert isinstance(info.value, FinmonError)


def test_missing_file_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv"):
        D.read_sentiment_csv(tmp_path / "nope.csv")


def test_sentiment_csv_mapping(tmp_path: Path) -> None:
    p = tmp_path / "sent_train.csv"
    p.write_text("text,label\n$BYND - JPMorgan reels in expectations,0\n$X rallies,1\nMarkets flat,2\n", "utf-8")
    ex = D.read_sentiment_csv(p)
    assert [e.label for e in ex] == [NEG, POS, NEU]
    assert ex[0].text == "$BYND - JPMorgan reels in expectations"
    assert {e.source for e in ex} == {"twitter_sentiment"}
    p.write_text("text,label\nx,3\n", "utf-8")
    with pytest.raises(DataError, match=r":2\b"):
        D.read_sentiment_csv(p)


def test_phrasebank_latin1_last_at(tmp_path: Path) -> None:
    p = tmp_path / "Sentences_AllAgree.txt"
    lines = [
        "According to Gran , the company has no plans .@neutral",
        "Mail me @ news@example.com , profit rose .@positive",
        "Operating loss in Sweden and Pohjola  Ã¤ increased .@negative",  # as-is (already mojibake in the release)
        "Hinta nousi 5 \u20ac ja M\u00e4kel\u00e4 iloitsi .@positive".replace("\u20ac", "EUR"),
        "",
    ]
    p.write_bytes("\n".join(lines).encode("iso-8859-1"))
    ex = D.read_phrasebank(p)
    assert [e.label for e in ex] == [NEU, POS, NEG, POS]
    assert ex[1].text == "Mail me @ news@example.com , profit rose ."
    assert "M\u00e4kel\u00e4" in ex[3].text  # byte 0xE4 decoded as latin-1
    assert {e.source for e in ex} == {"phrasebank"}
    p.write_bytes(b"ok .@neutral\nno label here\n")
    with pytest.raises(DataError, match=r":2\b"):
        D.read_phrasebank(p)
    p.write_bytes(b"ok .@neutral\nok .@bullish\n")
    with pytest.raises(DataError, match=r":2\b"):
        D.read_phrasebank(p)


def _fiqa_record(sentence: str, *scores: float) -> dict:
    return {
        "sentence": sentence,
        "info": [
            {"snippets": "['x']", "target": f"T{i}", "sentiment_score": str(s), "aspects": "['Stock/Price Action']"}
            for i, s in enumerate(scores)
        ],
    }


def test_fiqa_thresholds_and_directory(tmp_path: Path) -> None:
    head = {
        "1": _fiqa_record("Royal Mail chairman Donald Brydon set to step down", -0.374),
        "2": _fiqa_record("Buffett's Berkshire builds Deere stake, dumps Exxon", 0.316, -0.548),  # mean -0.116
        "3": _fiqa_record("Exactly on the threshold", 0.15),
    }
    post = {"14860": _fiqa_record("Slowly adding some $FIO here", 0.459)}
    (tmp_path / "task1_headline_ABSA_train.json").write_text(json.dumps(head, indent=1), "utf-8")
    (tmp_path / "task1_post_ABSA_train.json").write_text(json.dumps(post), "utf-8")
    ex = D.read_fiqa(tmp_path)
    assert [e.label for e in ex] == [NEG, NEU, NEU, POS]
    assert {e.source for e in ex} == {"fiqa"}
    one = D.read_fiqa(tmp_path / "task1_headline_ABSA_train.json", neg=-0.1, pos=0.1)
    assert [e.label for e in one] == [NEG, NEG, POS]


def test_fiqa_malformed(tmp_path: Path) -> None:
    p = tmp_path / "f.json"
    p.write_text('{\n "1": {"sentence": "a", "info": []},\n "2": {"sentence": "b"}\n}', "utf-8")
    with pytest.raises(DataError, match=r"f\.json:2\b"):
        D.read_fiqa(p)
    p.write_text("{\n oops", "utf-8")
    with pytest.raises(DataError, match=r"f\.json:2\b"):
        D.read_fiqa(p)


# ---------------------------------------------------------------------------------------------- token sources


def test_finer_csv(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_text(
        "gold_label,gold_token,doc_idx,sent_idx\n"
        "0,\"\"\"\",0,0\n0,None,0,0\n0,of,0,0\n5,Wells,0,0\n6,Fargo,0,0\n0,said,0,0\n"
        "3,New,0,1\n4,York,0,1\n0,and,0,1\n2,Yellen,0,1\n"  # I-PER after O -> B-PER
        "1,Jerome,1,0\n2,Powell,1,0\n",
        encoding="utf-8",
    )
    ex = D.read_finer_csv(p)
    assert [e.tokens for e in ex] == [
        ['"', "None", "of", "Wells", "Fargo", "said"],
        ["New", "York", "and", "Yellen"],
        ["Jerome", "Powell"],
    ]
    assert ex[0].tokens[1] == "None"  # the literal word, not a missing value
    assert names(ex[0]) == ["O", "O", "O", "B-ORG", "I-ORG", "O"]
    assert names(ex[1]) == ["B-LOC", "I-LOC", "O", "B-PER"]
    assert names(ex[2]) == ["B-PER", "I-PER"]
    assert {e.source for e in ex} == {"finer"}
    p.write_text("gold_label,gold_token,doc_idx,sent_idx\n0,a,0,0\n7,b,0,0\n", "utf-8")
    with pytest.raises(DataError, match=r"train\.csv:3\b"):
        D.read_finer_csv(p)


def test_conll(tmp_path: Path) -> None:
    p = tmp_path / "train.txt"
    p.write_text(
        "-DOCSTART- O \n\nEU B-ORG \nrejects O \nGerman B-MISC \ncall O \nto O \nboycott O \nBritish B-MISC \n"
        "lamb O \n. O \n\nPeter B-PER \nBlackburn I-PER \n\n-DOCSTART- O \n\nNew I-LOC \nYork I-LOC \n",
        encoding="utf-8",
    )
    ex = D.read_conll(p)
    assert len(ex) == 3
    assert ex[0].tokens[:3] == ["EU", "rejects", "German"]
    assert names(ex[0])[:3] == ["B-ORG", "O", "O"]  # MISC -> O
    assert "B-MISC" not in NER_TAGS
    assert ex[1].tags == tags("B-PER", "I-PER")
    assert names(ex[2]) == ["B-LOC", "I-LOC"]  # stray I- at sentence start repaired
    assert {e.source for e in ex} == {"conll"}
    p.write_text("EU B-ORG \nrejects B-FOO \n", "utf-8")
    with pytest.raises(DataError, match=r"train\.txt:2\b"):
        D.read_conll(p)
    p.write_text("EU B-ORG \nrejects\n", "utf-8")
    with pytest.raises(DataError, match=r"train\.txt:2\b"):
        D.read_conll(p)


def test_sec_iob1_to_iob2(tmp_path: Path) -> None:
    p = tmp_path / "FIN5_train.txt"
    p.write_text(
        "-DOCSTART- -X- O O\n\n"
        "Wells NNP - I-ORG\nFargo NNP - I-ORG\nand CC - O\nBank NNP - I-ORG\nB NNP - B-ORG\nJohn NNP - I-PER\n"
        "Texas NNP - I-LOC\nThing NNP - I-MISC\nmore NNP - I-MISC\n\n"
        "Bing VBG - I-PER\nYu NNP - I-PER\n",
        encoding="utf-8",
    )
    ex = D.read_sec(p)
    assert names(ex[0]) == ["B-ORG", "I-ORG", "O", "B-ORG", "B-ORG", "B-PER", "B-LOC", "O", "O"]
    assert names(ex[1]) == ["B-PER", "I-PER"]
    assert {e.source for e in ex} == {"sec"}
    p.write_text("Wells NNP I-ORG\n", "utf-8")
    with pytest.raises(DataError, match=r"FIN5_train\.txt:1\b"):
        D.read_sec(p)


def test_btc(tmp_path: Path) -> None:
    p = tmp_path / "a.conll"
    p.write_text(
        "I\tO\nhate\tO\n@paulwalk\tB-PER\nMH17 \tO\nBBC\tB-ORG\nNews\tI-ORG\n\tO\n \tO\nke s\tO\n\n"
        "\tO\n\n"  # a tweet made of one empty token: dropped
        "London\tB-LOC\n",
        encoding="utf-8",
    )
    ex = D.read_btc(p)
    assert len(ex) == 2
    assert ex[0].tokens == ["I", "hate", "@paulwalk", "MH17", "BBC", "News", "ke s"]
    assert names(ex[0]) == ["O", "O", "B-PER", "O", "B-ORG", "I-ORG", "O"]
    assert names(ex[1]) == ["B-LOC"]
    assert {e.source for e in ex} == {"btc"}
    p.write_text("I\tO\nx\tB-person\n", "utf-8")
    with pytest.raises(DataError, match=r"a\.conll:2\b"):
        D.read_btc(p)


def test_wnut(tmp_path: Path) -> None:
    p = tmp_path / "wnut17train.conll"
    p.write_text(
        "Tesla\tB-corporation\nMotors\tI-corporation\nin\tO\nNew\tB-location\nYork\tI-location\n"
        "Elon\tB-person\nMusk\tI-person\niPhone\tB-product\nStar\tB-creative-work\nWars\tI-creative-work\n"
        "Lakers\tB-group\nplayer\tO\n\nx\tI-person\n",
        encoding="utf-8",
    )
    ex = D.read_wnut(p)
    assert names(ex[0]) == ["B-ORG", "I-ORG", "O", "B-LOC", "I-LOC", "B-PER", "I-PER", "O", "O", "O", "O", "O"]
    assert names(ex[1]) == ["B-PER"]
    assert {e.source for e in ex} == {"wnut"}
    p.write_text("x\tB-PER\n", "utf-8")
    with pytest.raises(DataError, match=r":1\b"):
        D.read_wnut(p)


def test_every_mapping_table_targets_project_labels() -> None:
    assert set(D.TWITTER_SENTIMENT_MAP.values()) == set(SENTIMENTS)
    assert set(D.PHRASEBANK_MAP.values()) == set(SENTIMENTS)
    assert tuple(D.TOPIC_MAP[i] for i in range(20)) == TOPICS
    assert set(D.FINER_ID_TO_TAG.values()) == set(NER_TAGS)
    for table in (D.CONLL_TYPE_MAP, D.SEC_TYPE_MAP, D.BTC_TYPE_MAP, D.WNUT_TYPE_MAP):
        for v in table.values():
            assert v is None or f"B-{v}" in NER_TAGS


# ---------------------------------------------------------------------------------------------- dedup, split


def test_near_duplicate_key() -> None:
    a = "Apple &amp; Exxon  beat   estimates https://t.co/AAA"
    b = "apple & exxon beat estimates http://t.co/BBB "
    assert D.near_duplicate_key(a) == D.near_duplicate_key(b) == "apple & exxon beat estimates"
    assert D.near_duplicate_key("see www.example.com/x now") == "see now"
    assert D.near_duplicate_key("Apple up") != D.near_duplicate_key("Apple down")


def test_dedup_majority_label_first() -> None:
    ex = [
        TextExample("Headline A https://t.co/1", 1, "twitter_topic"),
        TextExample("Other", 2, "twitter_topic"),
        TextExample("headline a https://t.co/2", 5, "twitter_topic"),
        TextExample("Headline  A https://t.co/3", 5, "twitter_topic"),
        TextExample("Other https://t.co/9", 2, "twitter_topic"),
        TextExample("Headline A", 0, "twitter_sentiment"),  # other label space: not a duplicate
        TextExample("headline a", 2, "phrasebank"),  # same space as twitter_sentiment: duplicate
    ]
    assert D.dedup(ex) == [ex[1], ex[2], ex[5]]
    tie = [TextExample("x", 1, "fiqa"), TextExample("X", 0, "fiqa")]
    assert D.dedup(tie) == [tie[0]]


def _synthetic(n: int = 600) -> list[TextExample]:
    out = []
    for i in range(n):
        label = 0 if i % 10 < 6 else (1 if i % 10 < 9 else 2)  # 60/30/10
        text = f"headline {i // 3} https://t.co/{i}" if i % 7 == 0 else f"unique {i}"
        out.append(TextExample(text, label, "twitter_topic"))
    return out


def test_split_deterministic_stratified_and_groups_whole() -> None:
    ex = _synthetic()
    tr, dv = D.split_dev(ex, fraction=0.2, seed=13)
    assert (tr, dv) == D.split_dev(list(ex), fraction=0.2, seed=13)
    assert D.split_dev(ex, fraction=0.2, seed=14) != (tr, dv)
    assert sorted(map(id, tr + dv)) == sorted(map(id, ex))
    assert tr == [e for e in ex if e in set(tr)] and dv == [e for e in ex if e in set(dv)]  # input order kept
    total, dev = Counter(e.label for e in ex), Counter(e.label for e in dv)
    for label, n in total.items():
        assert abs(dev[label] - 0.2 * n) <= 2, (label, dev[label], n)
    keys_tr = {D.near_duplicate_key(e.text) for e in tr}
    keys_dv = {D.near_duplicate_key(e.text) for e in dv}
    assert not keys_tr & keys_dv


def test_split_tokens_no_key_and_by_source() -> None:
    toks = [TokenExample([f"w{i}"], [0], "conll" if i % 4 else "btc") for i in range(200)]
    tr, dv = D.split_dev(toks)  # default key: TokenExample has no label -> one stratum
    assert len(dv) == 20 and len(tr) == 180
    tr2, dv2 = D.split_dev(toks, key=lambda e: e.source, fraction=0.2)
    c = Counter(e.source for e in dv2)
    assert c == {"conll": 30, "btc": 10}
    assert D.split_dev(toks, key=None) == D.split_dev(toks, key=None)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINMON_DATA_DIR", str(tmp_path))
    assert D.default_data_dir() == tmp_path
    monkeypatch.delenv("FINMON_DATA_DIR")
    assert D.default_data_dir().parts[-2:] == ("shared", "data")


# ---------------------------------------------------------------------------------------------- real shared files

REAL = Path("/work/shared/data")
real = pytest.mark.skipif(not REAL.is_dir(), reason="/work/shared/data not present")


@real
def test_real_text_sources_match_source_md() -> None:
    top = D.read_topic_csv(REAL / "twitter_financial_news_topic/topic_train.csv")
    assert len(top) == 16990
    assert Counter(e.label for e in top)[TOPICS.index("IPO")] == 44
    assert len(top) - len(D.dedup(top)) == 1639  # SOURCE.md: 1,639 near-duplicate train rows

    sen = D.read_sentiment_csv(REAL / "twitter_financial_news_sentiment/sent_train.csv")
    assert Counter(e.label for e in sen) == {NEG: 1442, POS: 1923, NEU: 6178}
    assert len(sen) - len(D.dedup(sen)) == 109

    pb = REAL / "financial_phrasebank"
    assert Counter(e.label for e in D.read_phrasebank(pb / "Sentences_50Agree.txt")) == {NEU: 2879, POS: 1363, NEG: 604}
    assert len(D.read_phrasebank(pb / "Sentences_66Agree.txt")) == 4217
    assert len(D.read_phrasebank(pb / "Sentences_75Agree.txt")) == 3453
    assert Counter(e.label for e in D.read_phrasebank(pb / "Sentences_AllAgree.txt")) == {NEU: 1391, POS: 570, NEG: 303}

    assert len(D.read_fiqa(REAL / "fiqa_2018_task1_sentiment")) == 1111
    assert len(D.read_fiqa(REAL / "fiqa_2018_task1_sentiment/task1_headline_ABSA_train.json")) == 436


def _b_counts(examples: list[TokenExample]) -> Counter:
    return Counter(NER_TAGS[t][2:] for e in examples for t in e.tags if NER_TAGS[t].startswith("B-"))


@real
def test_real_token_sources_match_source_md() -> None:
    def check(ex: list[TokenExample], sentences: int, tokens: int | None = None) -> None:
        assert len(ex) == sentences
        if tokens is not None:
            assert sum(len(e.tokens) for e in ex) == tokens
        for e in ex:
            assert e.tokens and len(e.tokens) == len(e.tags) and all(e.tokens)
            assert_iob2(e)

    finer = D.read_finer_csv(REAL / "finer_ord/train.csv")
    check(finer, 3262, 80531)
    check(D.read_finer_csv(REAL / "finer_ord/val.csv"), 402, 10233)
    assert any("None" in e.tokens for e in finer)
    b = _b_counts(finer)  # SOURCE.md counts raw B- ids; repair of stray I- only adds a few B-
    assert 821 <= b["PER"] <= 840 and b["LOC"] >= 966 and 2026 <= b["ORG"] <= 2060

    conll = D.read_conll(REAL / "conll2003_en/train.txt")
    check(conll, 14041, 203621)
    assert _b_counts(conll) == {"PER": 6600, "LOC": 7140, "ORG": 6321}  # MISC 3,438 -> O
    check(D.read_conll(REAL / "conll2003_en/valid.txt"), 3250, 51362)

    sec5 = D.read_sec(REAL / "sec_filings_ner_alvarado2015/FIN5_train.txt")
    check(sec5, 1164, 41010)
    assert _b_counts(sec5) == {"PER": 747, "ORG": 243, "LOC": 171}
    sec3 = D.read_sec(REAL / "sec_filings_ner_alvarado2015/FIN3_test.txt")
    check(sec3, 303, 13246)
    assert _b_counts(sec3) == {"PER": 216, "ORG": 56, "LOC": 39}

    btc = REAL / "broad_twitter_corpus_ner"
    # h.conll has 2,001 tweets, one of which is a single empty token and is dropped (empty words are dropped).
    expected = {"a": (1000, 16612), "b": (2000, 30825), "e": (200, 3981), "f": (2000, None), "g": (2138, 34062),
                "h": (2000, None)}
    total = 0
    for name, (n, t) in expected.items():
        ex = D.read_btc(btc / f"{name}.conll")
        check(ex, n, t)
        total += len(ex)
    assert total == 9339 - 1
    assert _b_counts(D.read_btc(btc / "a.conll")) == {"PER": 229, "ORG": 173, "LOC": 119}

    w = REAL / "wnut17_emerging_entities"
    wtrain = D.read_wnut(w / "wnut17train.conll")
    check(wtrain, 3394, 62730)
    assert _b_counts(wtrain) == {"PER": 660, "LOC": 548, "ORG": 221}
    check(D.read_wnut(w / "emerging.dev.conll"), 1009, 15733)
    check(D.read_wnut(w / "emerging.test.annotated"), 1287, 23394)


@real
def test_real_topic_split_keeps_near_duplicates_together() -> None:
    top = D.read_topic_csv(REAL / "twitter_financial_news_topic/topic_train.csv")
    tr, dv = D.split_dev(top)
    assert (tr, dv) == D.split_dev(top)
    assert len(tr) + len(dv) == len(top)
    assert not {D.near_duplicate_key(e.text) for e in tr} & {D.near_duplicate_key(e.text) for e in dv}
    total, dev = Counter(e.label for e in top), Counter(e.label for e in dv)
    for label, n in total.items():
        assert dev[label] >= 1 and abs(dev[label] - 0.1 * n) <= max(3, 0.03 * n), (label, dev[label], n)


@real
def test_extra_sentiment_sources_join_train_only() -> None:
    from inference.training.recipe import TrainConfig, load_splits

    plain = load_splits(TrainConfig(data_dir=REAL, tasks=("sentiment",)))["sentiment"]
    train, dev = load_splits(TrainConfig(data_dir=REAL, tasks=("sentiment",),
                                         sentiment_sources=("twitter", "phrasebank", "fiqa")))["sentiment"]
    assert dev == plain[1] and {e.source for e in dev} == {"twitter_sentiment"}
    assert {e.source for e in train} == {"twitter_sentiment", "phrasebank", "fiqa"}
    assert train[: len(plain[0])] == plain[0]
    assert not {D.near_duplicate_key(e.text) for e in train} & {D.near_duplicate_key(e.text) for e in dev}
    assert {e.label for e in train if e.source == "phrasebank"} == {NEG, NEU, POS}


def test_pseudo_labels_are_written_in_the_sentiment_format(tmp_path: Path) -> None:
    from inference.training.teacher import write_pseudo_labels

    probs = [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1], [0.4, 0.35, 0.25]]
    order = [SENTIMENTS.index(s) for s in ("negative", "neutral", "positive")]
    p = np.zeros((4, 3))
    p[:, order] = probs  # columns in SENTIMENTS order
    out = tmp_path / "pseudo.csv"
    assert write_pseudo_labels(["down", "up", "flat", "unsure, with a comma"], p, out, min_confidence=0.5) == 3
    back = D.read_sentiment_csv(out)
    assert [(e.text, e.label) for e in back] == [("down", NEG), ("up", POS), ("flat", NEU)]
    assert write_pseudo_labels(["unsure, with a comma"], p[3:], out) == 1
    assert D.read_sentiment_csv(out)[0].text == "unsure, with a comma"


@real
def test_pseudo_labels_join_sentiment_train_without_dev_texts(tmp_path: Path) -> None:
    from inference.training.recipe import TrainConfig, load_splits

    cfg = TrainConfig(data_dir=REAL, tasks=("topic", "sentiment"))
    splits = load_splits(cfg)
    topic_dev, sent_dev = splits["topic"][1][0].text, splits["sentiment"][1][0].text
    fresh = ["Acme Corp shares plunge after guidance cut", "Widget maker lifts dividend by 10%"]
    out = tmp_path / "pseudo.csv"
    rows = [(topic_dev, 0), (sent_dev + " https://t.co/abc", 1), (fresh[0], 0), (fresh[1], 1)]
    with out.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    cfg.pseudo_labels = out
    train, dev = load_splits(cfg)["sentiment"]
    pseudo = [e for e in train if e.source == "pseudo"]
    assert [(e.text, e.label) for e in pseudo] == [(fresh[0], NEG), (fresh[1], POS)]
    assert dev == splits["sentiment"][1] and len(train) == len(splits["sentiment"][0]) + 2


def test_recased_copies_keep_the_tags():
    from inference.training.data import TokenExample, recased

    ex = TokenExample(["shares", "of", "Apple", "rose", "in", "the", "U.S.", "after", "results"], [0, 0, 3, 0, 0, 0, 5, 0, 0], "conll")
    title = recased(ex, "title")
    assert title.tokens == ["Shares", "of", "Apple", "Rose", "in", "the", "U.S.", "After", "Results"]
    assert title.tags == ex.tags and title.source == "conll"
    assert recased(ex, "upper").tokens[2] == "APPLE"
    assert recased(TokenExample(["SOCCER", "-", "JAPAN"], [0, 0, 5], "conll"), "upper") is None
    with pytest.raises(ValueError):
        recased(ex, "lower")


def test_case_augmentation_adds_to_train_only(tmp_path):
    from inference.training.recipe import TrainConfig, load_splits

    plain = load_splits(TrainConfig(tasks=("ner",), ner_sources=("conll",)))["ner"]
    augmented = load_splits(TrainConfig(tasks=("ner",), ner_sources=("conll",), ner_case_augment=0.3))["ner"]
    assert augmented[1] == plain[1]
    extra = augmented[0][len(plain[0]):]
    assert augmented[0][: len(plain[0])] == plain[0]
    assert 0.15 * len(plain[0]) < len(extra) < 0.3 * len(plain[0])  # some sentences have no lower-case word
    originals: dict[tuple[str, ...], set[tuple[int, ...]]] = {}
    for e in plain[0]:
        originals.setdefault(tuple(t.lower() for t in e.tokens), set()).add(tuple(e.tags))
    assert all(tuple(e.tags) in originals[tuple(t.lower() for t in e.tokens)] for e in extra)
    assert sum(any(t.isupper() and len(t) > 1 for t in e.tokens) for e in extra) > 0.1 * len(extra)


def test_capitalised_common_words_become_partial_negatives():
    from inference.training.data import UNLABELLED, capitalised_negatives, common_words

    news = [TokenExample(["Quarterly", "results", "of", "Apple", "beat"], [0, 0, 0, 3, 0], "conll")] * 25 + [
        TokenExample(["apple", "results", "pie"], [0, 0, 0], "conll")] * 5
    common = common_words(news)
    assert "results" in common and "beat" in common
    assert "apple" not in common  # a name 25 times in 30
    [neg] = capitalised_negatives(["Apple Reports Results, beat https://t.co/x", "nothing here"], common)
    assert neg.tokens == ["Apple", "Reports", "Results,", "beat", "https://t.co/x"]
    # "Results," is O (punctuation is not the word); "beat" is lower case: not a capitalised negative
    assert neg.tags == [UNLABELLED, UNLABELLED, 0, UNLABELLED, UNLABELLED] and neg.source == "negatives"


def test_unlabelled_words_add_no_loss():
    from inference.labels import IGNORE_INDEX
    from inference.tokenize import TextTokenizer, base_model_path
    from inference.training.batches import token_labels
    from inference.training.data import UNLABELLED

    tok = TextTokenizer.from_dir(base_model_path())
    ex = TokenExample(["Goldman", "Reports", "Earnings"], [UNLABELLED, 0, 0], "negatives")
    batch = tok.encode_words([ex.tokens])
    labels = token_labels(batch, [ex])[0]
    words = batch.encodings[0].word_ids
    assert all(labels[j] == IGNORE_INDEX for j, w in enumerate(words) if w in (None, 0))
    assert all(labels[j] == NER_TAGS.index("O") for j, w in enumerate(words) if w in (1, 2))
