"""Model outputs -> ``Prediction`` objects. Shared by every predictor (onnxruntime in-process, Triton client)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from collections.abc import Sequence

import numpy as np
from tokenizers import Encoding

from inference.errors import InferenceError, ModelUnavailable
from inference.linking.graph import Node
from inference.linking.linker import default_linker, linked
from inference.labels import NER_TAGS, SENTIMENTS, TOPICS
from inference.decoding.prediction import EntitySpan, Prediction
from inference.decoding.tickers import find_tickers, merge
from inference.settings import ENTITY_MIN_SCORE, LINKED_ENTITY_MIN_SCORE
from inference.tokenize import Batch


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_TRIM = set(" \t\n,;:&-–—'\"‘’“”()[]{}!?/|*#@")
# a legal form alone ("Inc", "Corp.") is the tail of a name the head split, never a name itself
_LEGAL_FORMS = frozenset({"inc", "corp", "corporation", "co", "company", "ltd", "llc", "plc", "lp", "ag", "nv"})
# (type, B index, I index): PER, ORG, LOC
_TYPES = tuple((t, NER_TAGS.index(f"B-{t}"), NER_TAGS.index(f"I-{t}")) for t in dict.fromkeys(
    tag[2:] for tag in NER_TAGS if tag != "O"))
_INSIDE = [k for k, tag in enumerate(NER_TAGS) if tag.startswith("I-")]
MAX_SPAN_CHARS = 256  # longer "entities" are artefacts (an [UNK] piece standing for a whole blob of characters)


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def entity_spans(text: str, encoding: Encoding, tag_probs: np.ndarray) -> list[EntitySpan]:
    """Contiguous B-X/I-Y word pieces -> character spans of ``text``, widened to whole words.

    A span is a B (or a stray I) followed by any I pieces: an I continues the span whatever its type, so "Wall"
    B-ORG + "Street" I-LOC is one name, not two. Its type is the one with the most B/I probability over its pieces.
    """
    tags = tag_probs.argmax(-1)
    spans: list[EntitySpan] = []
    words, offsets = encoding.word_ids, encoding.offsets
    n = len(encoding.ids)
    i = 0
    while i < n:
        tag = NER_TAGS[int(tags[i])]
        if words[i] is None or tag == "O":
            i += 1
            continue
        j = i
        while j + 1 < n and words[j + 1] is not None and (
            NER_TAGS[int(tags[j + 1])].startswith("I-") or words[j + 1] == words[j]
        ):
            j += 1
        while i > 0 and words[i - 1] is not None and words[i - 1] == words[i]:
            i -= 1
        start, end = offsets[i][0], offsets[j][1]
        mass = tag_probs[i : j + 1].sum(0)
        kind = max(_TYPES, key=lambda t: mass[t[1]] + mass[t[2]])[0]
        score = float(tag_probs[i : j + 1].max(-1).mean())
        if j + 1 < n and words[j + 1] is not None:  # and how sure the head is that the name ends here
            score *= 1.0 - float(tag_probs[j + 1, _INSIDE].sum())
        if 0 < end - start <= MAX_SPAN_CHARS:
            spans.append(EntitySpan(start, end, kind, text[start:end], round(score, 6)))
        i = j + 1
    return spans


def _edge(c: str) -> bool:
    """Punctuation, a symbol (emoji, ⚡) or a space at a span's edge is never part of the name."""
    return c in _TRIM or unicodedata.category(c)[0] in "SZC"


def plausible(text: str, spans: list[EntitySpan]) -> list[EntitySpan]:
    """Learned spans that can be names: outside URLs, with a capital letter (in tweets the token head also fires
    on lower-case words; a name written all lower-case is missed, a wrong company is worse), trimmed of the
    punctuation or symbols a span can swallow at its ends ("Exxon &", "⚡ Xi"), and not a bare legal form ("Inc")."""
    urls = [m.span() for m in _URL.finditer(text)]
    out = []
    for s in spans:
        start, end = s.start, s.end
        while start < end and (_edge(text[start]) or text[start] == "."):  # "Mr. Trump" -> never ". Trump"
            start += 1
        while end > start and _edge(text[end - 1]):
            end -= 1
        piece = text[start:end]
        if piece.rstrip(".").lower() in _LEGAL_FORMS:
            continue
        if any(c.isupper() for c in piece) and not any(a < end and start < b for a, b in urls):
            out.append(replace(s, start=start, end=end, text=piece))
    return out


def check_outputs(n: int, width: int, topic_logits: np.ndarray, sentiment_logits: np.ndarray,
                  token_logits: np.ndarray) -> None:
    """Refuse malformed model outputs before decoding them (a wrong row would otherwise become a wrong label).

    Wrong shapes are the server's or the export's fault, whatever the input: ``ModelUnavailable`` (the ingest
    worker backs off and retries; nothing is dead-lettered). Non-finite values may come from one input:
    ``InferenceError`` (the pipeline then predicts one by one and dead-letters only the culprit).
    """
    expected = {"topic_logits": ((n, len(TOPICS)), topic_logits), "sentiment_logits": ((n, len(SENTIMENTS)),
                sentiment_logits), "token_logits": ((n, width, len(NER_TAGS)), token_logits)}
    for name, (shape, array) in expected.items():
        if tuple(np.shape(array)) != shape:
            raise ModelUnavailable(f"malformed model output: {name} has shape {tuple(np.shape(array))}, "
                                   f"expected {shape}", code="MALFORMED_OUTPUT")
    for name, (_, array) in expected.items():
        if not np.isfinite(array).all():
            raise InferenceError(f"malformed model output: non-finite values in {name}", code="NON_FINITE_OUTPUT")


_ABBREVIATION = re.compile(r"(?<![A-Za-z.])(?:[A-Za-z]\.)+[A-Za-z](?![A-Za-z])\.?")  # U.S. U.S U.K.


def join_abbreviations(text: str, spans: list[EntitySpan]) -> list[EntitySpan]:
    """"U.S." split by the token head into "U" and "S" (the dots tagged O), or cut to "U" of "U.K.", is one span
    again: learned spans of one label lying inside a dotted abbreviation of the text become that abbreviation."""
    out: list[EntitySpan] = []
    for m in _ABBREVIATION.finditer(text):
        inside = [s for s in spans if m.start() <= s.start and s.end <= m.end()]
        partial = len(inside) > 1 or (inside and inside[0].end - inside[0].start < m.end() - m.start())
        if partial and len({s.label for s in inside}) == 1:
            out.append(replace(inside[0], start=m.start(), end=m.end(), text=m.group(0),
                               score=min(s.score for s in inside)))
            spans = [s for s in spans if s not in inside]
    return sorted(spans + out, key=lambda s: (s.start, s.end))


def confident(span: EntitySpan, node: Node | None, min_score: float, linked_min_score: float) -> bool:
    """Keep a learned span only when the head is sure enough of it; a rule-made TICKER span is always kept.

    A span the knowledge graph knows (``node``) is evidence in itself that the words are a name, so it needs a
    lower score than one the graph does not know ("Hedge Funds", "Lessor"). The span score is the mean top tag
    probability of its pieces times the probability that the next piece does not continue it (entity_spans):
    on the hand-checked tweets it ranks right spans above wrong ones better than the mean alone (MODEL_CARD.md).
    """
    return span.label == "TICKER" or span.score >= (min_score if node is None else linked_min_score)


def decode(
    texts: Sequence[str],
    batch: Batch,
    topic_logits: np.ndarray,
    sentiment_logits: np.ndarray,
    token_logits: np.ndarray,
    model_version: str,
    min_score: float = ENTITY_MIN_SCORE,
    linked_min_score: float = LINKED_ENTITY_MIN_SCORE,
) -> list[Prediction]:
    check_outputs(len(texts), batch.input_ids.shape[1], topic_logits, sentiment_logits, token_logits)
    topic_p, sent_p = softmax(topic_logits.astype(np.float64)), softmax(sentiment_logits.astype(np.float64))
    tok_p = softmax(token_logits.astype(np.float64))
    out = []
    linker = default_linker()
    for k, text in enumerate(texts):
        t, s = int(topic_p[k].argmax()), int(sent_p[k].argmax())
        learned = join_abbreviations(text, entity_spans(text, batch.encodings[k], tok_p[k]))
        entities = merge(plausible(text, learned), find_tickers(text))
        nodes = linker.resolve(entities, TOPICS[t]) if linker else [None] * len(entities)
        entities = [linked(s, n) for s, n in zip(entities, nodes, strict=True)
                    if confident(s, n, min_score, linked_min_score)]
        out.append(
            Prediction(
                topic=TOPICS[t],
                topic_probs={name: float(p) for name, p in zip(TOPICS, topic_p[k])},
                sentiment=SENTIMENTS[s],
                sentiment_score=float(sent_p[k, s]),
                sentiment_probs={name: float(p) for name, p in zip(SENTIMENTS, sent_p[k])},
                entities=entities,
                model_version=model_version,
                truncated=batch.truncated[k],
            )
        )
    return out
