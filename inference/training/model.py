"""The multi-task network: one shared encoder, three heads (topic, sentiment, BIO token tags). Needs torch.

Sequence heads read the mean-pooled encoder output (all-MiniLM-L6-v2 was trained with mean pooling); the token
head reads every position. The casing channel (inference.tokenize.CASES) enters through BERT's token-type
embedding, resized from 2 to 4 rows, each row initialised from the pretrained row 0.

Branches (``token_layers`` = k > 0, ``sentiment_layers`` = m > 0): the token head (the sentiment head) reads its
own copy of the encoder's top k (m) layers, applied to the output of layer L-k (L-m), while the other heads keep
reading the shared top. A refit of one task can then train real transformer layers (context, not just a linear
map of frozen features) and still leave the other tasks' outputs bit-identical. Made by ``add_branch``, a copy
starts from the shared layers, so the model's outputs are unchanged until it is trained. Cost at inference: k/L
(m/L) more encoder compute.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import torch
from torch import nn
from transformers import AutoModel, BertConfig, BertModel, MPNetConfig, MPNetModel

from inference.errors import ConfigError
from inference.labels import NER_TAGS, SENTIMENTS, TOPICS
from inference.training.distillation import TEACHER_MARK
from inference.tokenize import CASES, TOKENIZER_FILE, Batch, base_model_path

if TYPE_CHECKING:
    from inference.evaluation.evaluate import Runner

WEIGHTS_FILE = "model.pt"
TEACHER_HEADS_FILE = "heads.pt"
TEACHER_ENCODER_DIR = "encoder"
CONFIG_FILE = "encoder_config.json"
BRANCH_KEYS = {"token": "finmon_token_layers", "sentiment": "finmon_sentiment_layers"}  # in a checkpoint's encoder config


class TextHeads(nn.Module):
    """An encoder with the topic and sentiment heads on its mean-pooled output: what the multi-task model and the
    distillation teacher share."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, len(TOPICS))
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENTS))

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return self.dropout((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    def text_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor,
                    sentiment_hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(hidden, attention_mask)
        sentiment = pooled if sentiment_hidden is None else self.pool(sentiment_hidden, attention_mask)
        return self.topic_head(pooled), self.sentiment_head(sentiment)


class MultiTaskModel(TextHeads):
    def __init__(self, encoder: BertModel, dropout: float = 0.1, token_layers: int = 0,
                 sentiment_layers: int = 0) -> None:
        super().__init__(encoder, dropout)
        hidden = encoder.config.hidden_size
        self.token_head = nn.Linear(hidden, len(NER_TAGS))
        self.token_layers = nn.ModuleList()
        self.sentiment_layers = nn.ModuleList()
        self.add_branch("token", token_layers)
        self.add_branch("sentiment", sentiment_layers)

    def add_branch(self, head: str, k: int) -> None:
        """Give the ``head`` ("token" or "sentiment") its own copy of the top ``k`` encoder layers (a no-op when it
        has them already)."""
        top = top_layers(self, k, head)
        attr = f"{head}_layers"
        have = getattr(self, attr)
        if k and len(have) != k:
            if len(have):
                raise ValueError(f"the model already has {len(have)} {head} layers")
            setattr(self, attr, nn.ModuleList(copy.deepcopy(layer) for layer in top))
        self.encoder.config.update({BRANCH_KEYS[head]: len(getattr(self, attr))})

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, case_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.token_layers or self.sentiment_layers:
            hidden, tokens, sentiment = self._branched(input_ids, attention_mask, case_ids)
        else:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=case_ids
            ).last_hidden_state
            tokens, sentiment = hidden, None
        return *self.text_logits(hidden, attention_mask, sentiment), self.token_head(self.dropout(tokens))

    def _branched(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  case_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(shared top, token branch, sentiment branch or None) hidden states: the encoder's layers run one by one,
        a branch of k layers forks at layer L-k. The additive mask is built here (every attention implementation
        of BertLayer accepts it)."""
        x = self.encoder.embeddings(input_ids=input_ids, token_type_ids=case_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        states = [x]  # states[i]: the input of layer i; states[-1]: the shared top
        for layer in self.encoder.encoder.layer:
            states.append(_run_layer(layer, states[-1], additive))

        def branch(own: nn.ModuleList) -> torch.Tensor:
            h = states[len(states) - 1 - len(own)]
            for layer in own:
                h = _run_layer(layer, h, additive)
            return h

        return states[-1], branch(self.token_layers), (branch(self.sentiment_layers) if self.sentiment_layers else None)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, dropout: float = 0.1) -> "MultiTaskModel":
        encoder = BertModel.from_pretrained(str(path or base_model_path()), add_pooling_layer=False)
        widen_token_types(encoder)
        return cls(encoder, dropout)

    @classmethod
    def tiny(cls, vocab_size: int = 30522) -> "MultiTaskModel":
        """A randomly initialised 2-layer model for smoke tests."""
        config = BertConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, type_vocab_size=len(CASES),
        )
        return cls(BertModel(config, add_pooling_layer=False))

    def save(self, directory: str | Path, tokenizer_dir: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / WEIGHTS_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(self.encoder.config.to_dict(), indent=1))
        if Path(tokenizer_dir).resolve() != directory.resolve():
            shutil.copy(Path(tokenizer_dir) / TOKENIZER_FILE, directory / TOKENIZER_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "MultiTaskModel":
        directory = Path(directory)
        config = BertConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        model = cls(BertModel(config, add_pooling_layer=False), **branch_layers(config.to_dict()))
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu"))
        return model.eval()


class TextTeacher(TextHeads):
    """The distillation teacher (inference.training.distillation): a pre-trained encoder, mean pooling (how
    all-mpnet-base-v2 was trained), topic and sentiment heads. Its forward pass has the student's signature, so the
    training loop, the evaluation and the runners take either; it has no token head (its token output is zeros)
    and no casing channel (MPNet has no token types)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                case_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return *self.text_logits(hidden, attention_mask), hidden.new_zeros((*input_ids.shape, len(NER_TAGS)))

    @classmethod
    def from_pretrained(cls, path: str | Path, dropout: float = 0.1) -> "TextTeacher":
        return cls(AutoModel.from_pretrained(str(path), add_pooling_layer=False), dropout)

    @classmethod
    def tiny(cls, vocab_size: int = 30527) -> "TextTeacher":
        """A random 2-layer MPNet for smoke tests."""
        config = MPNetConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64)
        return cls(MPNetModel(config, add_pooling_layer=False))

    def save(self, directory: str | Path, tokenizer_dir: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(str(directory / TEACHER_ENCODER_DIR))
        heads = {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        torch.save(heads, directory / TEACHER_HEADS_FILE)
        if Path(tokenizer_dir).resolve() != directory.resolve():
            shutil.copy(Path(tokenizer_dir) / TOKENIZER_FILE, directory / TOKENIZER_FILE)
        (directory / TEACHER_MARK).write_text(json.dumps({"encoder": self.encoder.config.model_type}))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "TextTeacher":
        directory = Path(directory)
        model = cls(AutoModel.from_pretrained(str(directory / TEACHER_ENCODER_DIR), add_pooling_layer=False))
        missing = model.load_state_dict(torch.load(directory / TEACHER_HEADS_FILE, map_location="cpu"), strict=False)
        if any(not k.startswith("encoder.") for k in missing.missing_keys) or missing.unexpected_keys:
            raise ConfigError(f"{directory / TEACHER_HEADS_FILE}: not the heads of a teacher")
        return model.eval()


def top_layers(model: nn.Module, k: int, what: str) -> nn.ModuleList:
    """The encoder's top ``k`` layers (none for 0); ``what`` names the option in the error."""
    layers = model.encoder.encoder.layer
    if not 0 <= k <= len(layers):
        raise ConfigError(f"{what} layers must be between 0 and the encoder's {len(layers)} layers, got {k}")
    return nn.ModuleList(layers[len(layers) - k :] if k else [])


def branch_layers(record: dict) -> dict[str, int]:
    """``token_layers`` / ``sentiment_layers`` of a model, from its encoder config (or an export's finmon.json)."""
    return {f"{head}_layers": int(record.get(key, record.get(f"{head}_layers", 0))) for head, key in BRANCH_KEYS.items()}


def load_checkpoint(directory: str | Path) -> "MultiTaskModel | TextTeacher":
    """A training folder's model: the teacher when it is marked as one, else the multi-task model."""
    return TextTeacher.load(directory) if (Path(directory) / TEACHER_MARK).is_file() else MultiTaskModel.load(directory)


def _run_layer(layer: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = layer(x, attention_mask=mask)
    return out[0] if isinstance(out, tuple) else out  # transformers 4 returns a tuple, 5 the tensor


def widen_token_types(encoder: BertModel) -> None:
    """Token types -> ``len(CASES)`` rows, each a copy of pretrained row 0; an encoder already widened (one
    written by ``finmon pretrain``) keeps its learnt rows."""
    old = encoder.embeddings.token_type_embeddings
    if old.num_embeddings == len(CASES):
        return
    new = nn.Embedding(len(CASES), old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[0].expand(len(CASES), -1))
    encoder.embeddings.token_type_embeddings = new
    encoder.config.type_vocab_size = len(CASES)


def torch_runner(model: MultiTaskModel) -> "Runner":
    """A runner (see inference.evaluation.evaluate) over a torch model, no gradients."""

    def run(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            outs = model(*(torch.from_numpy(a) for a in batch.arrays().values()))
        return tuple(o.float().numpy() for o in outs)  # type: ignore[return-value]

    return run
