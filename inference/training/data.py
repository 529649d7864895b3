"""Readers that turn every training source in the shared data folder into examples in the ONE label scheme.

Label names come from :mod:`inference.labels`: topic ids index ``TOPICS``, sentiment ids index ``SENTIMENTS``
(negative/neutral/positive), token tags index ``NER_TAGS`` (O, B-/I- PER/ORG/LOC, strict IOB2).
Every source-specific mapping is a module-level table below, so the choices are visible and testable.

Each reader takes one file in exactly the format shipped in ``/work/shared/data`` (see each folder's
``SOURCE.md``) and raises :class:`DataError` naming the file and line when the file does not match it.
No reader combines sources, de-duplicates or splits: call :func:`dedup` and :func:`split_dev` explicitly.
"""

from __future__ import annotations

import csv
import html
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from inference.errors import FinmonError
from inference.labels import NER_TAG_INDEX, SENTIMENT_INDEX, TOPICS

__all__ = [
    "DataError",
    "TextExample",
    "TokenExample",
    "read_topic_csv",
    "read_sentiment_csv",
    "read_phrasebank",
    "read_fiqa",
    "read_finer_csv",
    "read_conll",
    "read_sec",
    "read_btc",
    "recased",
    "common_words",
    "capitalised_negatives",
    "UNLABELLED",
    "read_wnut",
    "near_duplicate_key",
    "dedup",
    "split_dev",
    "default_data_dir",
]


class DataError(FinmonError):
    """A training-data file is missing, unreadable or not in the format its reader expects."""


@dataclass(frozen=True, slots=True)
class TextExample:
    text: str
    label: int  # index into TOPICS (source "twitter_topic") or SENTIMENTS (every other text source)
    source: str  # "twitter_topic", "twitter_sentiment", "phrasebank", "fiqa", "pseudo", "teacher"
    soft: tuple[float, ...] | None = None  # a teacher's target distribution (recipe.add_soft_labels); None: the label


@dataclass(frozen=True, slots=True)
class TokenExample:
    tokens: list[str]  # words as in the file (BTC/WNUT: surrounding whitespace stripped, empty words dropped)
    tags: list[int]  # indices into NER_TAGS, strict IOB2; UNLABELLED (partial labels) is ignored by the loss
    source: str  # "finer", "conll", "sec", "btc", "wnut"


T = TypeVar("T")

# short function words a headline leaves in lower case (not first): "Reports Record Second Quarter of 2022 Results"
_HEADLINE_LOWER = frozenset("a an and as at but by for from in of on or per the to vs via with".split())


UNLABELLED = -1  # a word whose tag is not known: no loss (inference.training.batches.token_labels)
_CORE = re.compile(r"^\W+|\W+$")


def common_words(examples: Sequence[TokenExample], min_count: int = 20, min_o_share: float = 0.98) -> frozenset[str]:
    """Words (lower case) that the annotated NER data tags O at least ``min_o_share`` of the ``min_count`` or more
    times it has them: "earnings", "results", "president", "funds", not "apple" or "general" (General Motors)."""
    seen: dict[str, list[int]] = {}
    for ex in examples:
        for word, tag in zip(ex.tokens, ex.tags, strict=True):
            counts = seen.setdefault(word.lower(), [0, 0])
            counts[0] += 1
            counts[1] += tag == 0
    return frozenset(w for w, (n, o) in seen.items() if n >= min_count and o >= min_o_share * n and w.isalpha())


def capitalised_negatives(texts: Sequence[str], common: frozenset[str]) -> list[TokenExample]:
    """Partial labels for the token head from unlabelled posts: a capitalised word that annotated data almost
    never tags as a name ("Hedge Funds Are Warming Up To ...", "President") is O there; every other word is
    UNLABELLED. Only posts with such a word are kept. Headline casing is where the head mistakes words for names."""
    out = []
    for text in texts:
        words = text.split()
        tags = [0 if w[:1].isupper() and _CORE.sub("", w).lower() in common else UNLABELLED for w in words]
        if 0 in tags:
            out.append(TokenExample(words, tags, "negatives"))
    return out


def recased(example: TokenExample, style: str) -> TokenExample | None:
    """The sentence as a headline or a shouting post writes it, tags unchanged: ``title`` capitalises every word
    (short function words after the first stay lower), ``upper`` capitalises every letter. None when nothing
    changes. Case augmentation for the token head: capitals alone must not make a name."""
    if style == "upper":
        words = [w.upper() for w in example.tokens]
    elif style == "title":
        words = [w[:1].upper() + w[1:] if w[:1].islower() and (k == 0 or w.lower() not in _HEADLINE_LOWER) else w
                 for k, w in enumerate(example.tokens)]
    else:
        raise ValueError(f"unknown case style {style!r}")
    return None if words == example.tokens else TokenExample(words, example.tags, example.source)


# --------------------------------------------------------------------------------------------------------------
# Label tables (source label -> project label name). None means "no entity" (O).
# --------------------------------------------------------------------------------------------------------------

#: twitter_financial_news_sentiment: the file's ids are 0 Bearish, 1 Bullish, 2 Neutral (NOT neg/neu/pos order).
TWITTER_SENTIMENT_MAP: dict[int, str] = {0: "negative", 1: "positive", 2: "neutral"}

#: twitter_financial_news_topic: ids 0-19 are exactly the order of labels.TOPICS (identity mapping).
TOPIC_MAP: dict[int, str] = dict(enumerate(TOPICS))

#: Financial PhraseBank: the label after the last "@".
PHRASEBANK_MAP: dict[str, str] = {"negative": "negative", "neutral": "neutral", "positive": "positive"}

#: FiNER-ORD gold_label ids (the repo's int2str): IOB2 already.
FINER_ID_TO_TAG: dict[int, str] = {
    0: "O",
    1: "B-PER",
    2: "I-PER",
    3: "B-LOC",
    4: "I-LOC",
    5: "B-ORG",
    6: "I-ORG",
}

#: Entity-type maps per NER source; a type mapped to None becomes O. A type not in the table is a DataError.
CONLL_TYPE_MAP: dict[str, str | None] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "MISC": None}
SEC_TYPE_MAP: dict[str, str | None] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC", "MISC": None}
BTC_TYPE_MAP: dict[str, str | None] = {"PER": "PER", "ORG": "ORG", "LOC": "LOC"}
WNUT_TYPE_MAP: dict[str, str | None] = {
    "person": "PER",
    "location": "LOC",
    "corporation": "ORG",
    "group": None,  # bands, teams, parties... not companies; kept out of ORG on purpose
    "product": None,
    "creative-work": None,
}

#: FiQA: a sentence's label is the MEAN of its targets' scores (headlines can have several targets),
#: thresholded: mean < neg -> negative, mean > pos -> positive, else neutral (thresholds are inclusive to neutral).
FIQA_DEFAULT_NEG = -0.15
FIQA_DEFAULT_POS = 0.15

#: Which label space each text source's ``label`` indexes; dedup never merges examples of different spaces.
SOURCE_LABEL_SPACE: dict[str, str] = {
    "twitter_topic": "topic",
    "twitter_sentiment": "sentiment",
    "phrasebank": "sentiment",
    "fiqa": "sentiment",
    "pseudo": "sentiment",  # inference.training.teacher
}

_DOCSTART = "-DOCSTART-"


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _err(path: Path | str, line: int | None, message: str) -> DataError:
    where = f"{path}:{line}" if line is not None else f"{path}"
    return DataError(f"{where}: {message}")


def _open_text(path: Path | str, encoding: str = "utf-8", newline: str | None = None) -> Any:
    p = Path(path)
    try:
        return open(p, encoding=encoding, newline=newline)  # noqa: SIM115 - caller closes via `with`
    except OSError as exc:
        raise _err(p, None, f"cannot read file: {exc}") from exc


def _csv_rows(path: Path | str, header: Sequence[str]) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, row) of a UTF-8 CSV whose header must be ``header``."""
    with _open_text(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            first = next(reader, None)
            if first is None:
                raise _err(path, 1, f"empty file, expected header {','.join(header)!r}")
            if [c.strip() for c in first] != list(header):
                raise _err(path, 1, f"expected header {','.join(header)!r}, got {','.join(first)!r}")
            for row in reader:
                if not row:  # a blank line
                    continue
                if len(row) != len(header):
                    raise _err(path, reader.line_num, f"expected {len(header)} fields, got {len(row)}: {row!r}")
                yield reader.line_num, row
        except csv.Error as exc:
            raise _err(path, reader.line_num, f"malformed CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise _err(path, None, f"not UTF-8: {exc}") from exc


def _int_field(value: str, path: Path | str, line: int, name: str, allowed: Iterable[int]) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise _err(path, line, f"{name} must be an integer, got {value!r}") from None
    if n not in allowed:
        raise _err(path, line, f"{name} {n} out of range")
    return n


def _to_iob2(chunks: list[tuple[str, str | None]]) -> list[int]:
    """(prefix, project type or None) per token -> NER_TAGS ids in strict IOB2.

    Works for IOB1 and (possibly broken) IOB2 input alike: an I- that does not continue an entity of the same type
    (after O, after another type, at sentence start) becomes B-. A type mapped to None becomes O.
    """
    out: list[int] = []
    prev: str | None = None
    for prefix, etype in chunks:
        if etype is None or prefix == "O":
            out.append(NER_TAG_INDEX["O"])
            prev = None
            continue
        if prefix == "I" and prev == etype:
            out.append(NER_TAG_INDEX[f"I-{etype}"])
        else:
            out.append(NER_TAG_INDEX[f"B-{etype}"])
        prev = etype
    return out


def _parse_tag(tag: str, type_map: dict[str, str | None], path: Path | str, line: int) -> tuple[str, str | None]:
    if tag == "O":
        return "O", None
    prefix, sep, etype = tag.partition("-")
    if not sep or prefix not in ("B", "I"):
        raise _err(path, line, f"bad tag {tag!r} (expected O, B-TYPE or I-TYPE)")
    if etype not in type_map:
        raise _err(path, line, f"unknown entity type {etype!r} in tag {tag!r} (known: {sorted(type_map)})")
    return prefix, type_map[etype]


def _read_columns(
    path: Path | str,
    *,
    source: str,
    type_map: dict[str, str | None],
    tab_separated: bool,
    n_fields: tuple[int, ...],
) -> list[TokenExample]:
    """CoNLL-style reader: one token per line (token first, tag last), blank line between sentences,
    ``-DOCSTART-`` lines are separators. Whitespace-separated files split on any whitespace; tab-separated
    files split on tabs only (their tokens may contain spaces) and get tokens stripped; empty tokens are dropped,
    and so are sentences left empty."""
    examples: list[TokenExample] = []
    tokens: list[str] = []
    chunks: list[tuple[str, str | None]] = []

    def flush() -> None:
        if tokens:
            examples.append(TokenExample(tokens=list(tokens), tags=_to_iob2(chunks), source=source))
        tokens.clear()
        chunks.clear()

    with _open_text(path, encoding="utf-8", newline="") as fh:
        try:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    flush()
                    continue
                fields = line.split("\t") if tab_separated else line.split()
                if fields[0].strip() == _DOCSTART:
                    flush()
                    continue
                if len(fields) not in n_fields:
                    want = " or ".join(map(str, n_fields))
                    raise _err(path, lineno, f"expected {want} fields, got {len(fields)}: {line!r}")
                token = fields[0].strip() if tab_separated else fields[0]
                chunk = _parse_tag(fields[-1].strip(), type_map, path, lineno)
                if not token:
                    continue
                tokens.append(token)
                chunks.append(chunk)
        except UnicodeDecodeError as exc:
            raise _err(path, None, f"not UTF-8: {exc}") from exc
    flush()
    return examples


# --------------------------------------------------------------------------------------------------------------
# Text sources
# --------------------------------------------------------------------------------------------------------------


def read_topic_csv(path: Path | str) -> list[TextExample]:
    """twitter_financial_news_topic ``topic_train.csv``: header ``text,label``, label 0-19 = TOPICS index."""
    out = []
    for line, (text, label) in _csv_rows(path, ("text", "label")):
        n = _int_field(label, path, line, "label", TOPIC_MAP)
        if not text.strip():
            raise _err(path, line, "empty text")
        out.append(TextExample(text=text, label=TOPICS.index(TOPIC_MAP[n]), source="twitter_topic"))
    return out


def read_sentiment_csv(path: Path | str) -> list[TextExample]:
    """twitter_financial_news_sentiment ``sent_train.csv``: 0 bearish -> negative, 1 bullish -> positive,
    2 neutral -> neutral (see TWITTER_SENTIMENT_MAP)."""
    out = []
    for line, (text, label) in _csv_rows(path, ("text", "label")):
        n = _int_field(label, path, line, "label", TWITTER_SENTIMENT_MAP)
        if not text.strip():
            raise _err(path, line, "empty text")
        out.append(
            TextExample(text=text, label=SENTIMENT_INDEX[TWITTER_SENTIMENT_MAP[n]], source="twitter_sentiment")
        )
    return out


def read_phrasebank(path: Path | str) -> list[TextExample]:
    """Financial PhraseBank ``Sentences_XXAgree.txt``: ISO-8859-1, ``sentence@label`` (split on the LAST ``@``).
    Blank lines are skipped; duplicates are kept (use :func:`dedup`)."""
    out = []
    with _open_text(path, encoding="iso-8859-1", newline="") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            sentence, sep, label = line.rpartition("@")
            label = label.strip()
            if not sep:
                raise _err(path, lineno, f"no '@label' in line {line[:80]!r}")
            if label not in PHRASEBANK_MAP:
                raise _err(path, lineno, f"unknown label {label!r} (expected {sorted(PHRASEBANK_MAP)})")
            sentence = sentence.strip()
            if not sentence:
                raise _err(path, lineno, "empty sentence")
            out.append(TextExample(text=sentence, label=SENTIMENT_INDEX[PHRASEBANK_MAP[label]], source="phrasebank"))
    return out


def _fiqa_label(score: float, neg: float, pos: float) -> int:
    if score < neg:
        return SENTIMENT_INDEX["negative"]
    if score > pos:
        return SENTIMENT_INDEX["positive"]
    return SENTIMENT_INDEX["neutral"]


def _json_line_of(text: str, key: str) -> int | None:
    idx = text.find(json.dumps(key))
    return text.count("\n", 0, idx) + 1 if idx >= 0 else None


def read_fiqa(
    dir_or_file: Path | str, *, neg: float = FIQA_DEFAULT_NEG, pos: float = FIQA_DEFAULT_POS
) -> list[TextExample]:
    """FiQA-2018 task 1 JSON (headline and/or post file). A directory reads every ``*.json`` in it, sorted by name.

    One example per sentence; its label is the mean of its targets' ``sentiment_score`` thresholded by
    ``neg``/``pos`` (mean < neg negative, mean > pos positive, else neutral).
    """
    if not neg <= pos:
        raise ValueError(f"need neg <= pos, got neg={neg}, pos={pos}")
    p = Path(dir_or_file)
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    if not files:
        raise _err(p, None, "no *.json files in directory")
    out = []
    for f in files:
        with _open_text(f, encoding="utf-8") as fh:
            try:
                text = fh.read()
            except UnicodeDecodeError as exc:
                raise _err(f, None, f"not UTF-8: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _err(f, exc.lineno, f"invalid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise _err(f, 1, "expected a JSON object keyed by id")
        for key, value in data.items():
            try:
                sentence = value["sentence"]
                infos = value["info"]
                if not isinstance(sentence, str) or not sentence.strip():
                    raise ValueError("empty or non-string 'sentence'")
                if not isinstance(infos, list) or not infos:
                    raise ValueError("'info' must be a non-empty list")
                scores = [float(i["sentiment_score"]) for i in infos]
            except (KeyError, TypeError, ValueError) as exc:
                raise _err(f, _json_line_of(text, key), f"bad record {key!r}: {exc!r}") from None
            mean = sum(scores) / len(scores)
            out.append(TextExample(text=sentence.strip(), label=_fiqa_label(mean, neg, pos), source="fiqa"))
    return out


# --------------------------------------------------------------------------------------------------------------
# Token sources
# --------------------------------------------------------------------------------------------------------------


def read_finer_csv(path: Path | str) -> list[TokenExample]:
    """FiNER-ORD ``train.csv``/``val.csv``: header ``gold_label,gold_token,doc_idx,sent_idx``, one token per row,
    grouped by (doc_idx, sent_idx) in order of first appearance. Every token is kept verbatim (the word ``None``
    is a word, not a missing value)."""
    groups: dict[tuple[str, str], tuple[list[str], list[tuple[str, str | None]]]] = {}
    for line, (label, token, doc, sent) in _csv_rows(path, ("gold_label", "gold_token", "doc_idx", "sent_idx")):
        n = _int_field(label, path, line, "gold_label", FINER_ID_TO_TAG)
        tag = FINER_ID_TO_TAG[n]
        key = (doc.strip(), sent.strip())
        if not key[0] or not key[1]:
            raise _err(path, line, "empty doc_idx or sent_idx")
        if token == "":
            raise _err(path, line, "empty gold_token")
        tokens, chunks = groups.setdefault(key, ([], []))
        tokens.append(token)
        chunks.append(("O", None) if tag == "O" else (tag[0], tag[2:]))
    return [TokenExample(tokens=t, tags=_to_iob2(c), source="finer") for t, c in groups.values()]


def read_conll(path: Path | str) -> list[TokenExample]:
    """CoNLL-2003 English (``token TAG`` per line, IOB2, ``-DOCSTART-`` skipped); MISC -> O."""
    return _read_columns(path, source="conll", type_map=CONLL_TYPE_MAP, tab_separated=False, n_fields=(2, 4))


def read_sec(path: Path | str) -> list[TokenExample]:
    """SEC filings (Alvarado 2015) ``FIN5_train.txt``/``FIN3_test.txt``: ``token POS - NER``, IOB1 -> IOB2;
    MISC -> O."""
    return _read_columns(path, source="sec", type_map=SEC_TYPE_MAP, tab_separated=False, n_fields=(4,))


def read_btc(path: Path | str) -> list[TokenExample]:
    """Broad Twitter Corpus ``*.conll``: ``token<TAB>TAG``, IOB2 PER/ORG/LOC. Tokens are whitespace-stripped and
    empty tokens dropped (4 lines in f/h; one tweet of h.conll is a single empty token and so disappears)."""
    return _read_columns(path, source="btc", type_map=BTC_TYPE_MAP, tab_separated=True, n_fields=(2,))


def read_wnut(path: Path | str) -> list[TokenExample]:
    """WNUT-17 ``*.conll``/``emerging.test.annotated``: ``token<TAB>TAG``; person -> PER, location -> LOC,
    corporation -> ORG, group/product/creative-work -> O (see WNUT_TYPE_MAP)."""
    return _read_columns(path, source="wnut", type_map=WNUT_TYPE_MAP, tab_separated=True, n_fields=(2,))


# --------------------------------------------------------------------------------------------------------------
# De-duplication and splitting
# --------------------------------------------------------------------------------------------------------------

_URL_RE = re.compile(r"(?:https?://|www\.)\S*", re.IGNORECASE)
_WS_RE = re.compile(r"\s+")


def near_duplicate_key(text: str) -> str:
    """Key under which two texts count as near-duplicates: HTML entities unescaped, URLs removed, lower-cased,
    whitespace collapsed and stripped. (``&amp;`` == ``&``; the same headline with a different t.co link collides.)"""
    t = html.unescape(text)
    t = _URL_RE.sub(" ", t)
    t = t.lower()
    return _WS_RE.sub(" ", t).strip()


def _group_key(e: TextExample) -> tuple[str, str]:
    return SOURCE_LABEL_SPACE.get(e.source, e.source), near_duplicate_key(e.text)


def _groups(examples: Sequence[TextExample]) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(_group_key(e), []).append(i)
    return groups


def dedup(examples: list[TextExample]) -> list[TextExample]:
    """Drops near-duplicates (same :func:`near_duplicate_key` within one label space, see SOURCE_LABEL_SPACE).

    Per group, keeps the first example carrying the group's majority label (ties: the label seen first).
    Output keeps input order (of the kept examples).
    """
    keep: list[int] = []
    for idxs in _groups(examples).values():
        if len(idxs) == 1:
            keep.append(idxs[0])
            continue
        counts = Counter(examples[i].label for i in idxs)
        best = max(counts.values())
        winner = next(examples[i].label for i in idxs if counts[examples[i].label] == best)
        keep.append(next(i for i in idxs if examples[i].label == winner))
    return [examples[i] for i in sorted(keep)]


def _label_or_none(e: Any) -> Hashable:
    return getattr(e, "label", None)


def split_dev(
    examples: list[T],
    *,
    fraction: float = 0.1,
    seed: int = 13,
    key: Callable[[T], Hashable] | None = _label_or_none,
) -> tuple[list[T], list[T]]:
    """Deterministic stratified (train, dev) split; both lists keep input order.

    Stratified by ``key`` (default: ``e.label``; for TokenExample, which has no label, the default is one stratum;
    ``key=None`` disables stratification). Each stratum contributes ≈ round(fraction × size) examples to dev.
    For TextExample, near-duplicate groups (see :func:`dedup`) are kept whole on one side; a group's stratum is
    the key of its first member. Same input and seed -> same split.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    # Units that must stay together.
    if examples and all(isinstance(e, TextExample) for e in examples):
        units = list(_groups(examples).values())  # type: ignore[arg-type]
    else:
        units = [[i] for i in range(len(examples))]
    strata: dict[Hashable, list[list[int]]] = {}
    for unit in units:
        s = key(examples[unit[0]]) if key is not None else None
        strata.setdefault(s, []).append(unit)

    dev_idx: set[int] = set()
    for s, s_units in strata.items():
        size = sum(len(u) for u in s_units)
        target = round(fraction * size)
        if target == 0:
            continue
        order = list(s_units)
        random.Random(f"{seed}|{s!r}").shuffle(order)
        taken = 0
        for unit in order:
            if taken >= target:
                break
            # Take the unit if that brings the count at least as close to the target as not taking it.
            if taken + len(unit) - target <= target - taken:
                dev_idx.update(unit)
                taken += len(unit)
    train = [e for i, e in enumerate(examples) if i not in dev_idx]
    dev = [e for i, e in enumerate(examples) if i in dev_idx]
    return train, dev


def default_data_dir() -> Path:
    """``$FINMON_DATA_DIR``, else ``../shared/data`` next to the repo root if it exists, else /work/shared/data."""
    env = os.environ.get("FINMON_DATA_DIR")
    if env:
        return Path(env)
    from inference.settings import REPO_ROOT

    candidate = REPO_ROOT.parent / "shared" / "data"
    if candidate.is_dir():
        return candidate
    return Path("/work/shared/data")
