"""`finmon pretrain`: continued masked-language-model training of the encoder on unlabelled financial text.

The encoder is the one ``finmon train`` fine-tunes (all-MiniLM-L6-v2 with the casing channel: token types widened
to ``len(CASES)`` rows and fed the case ids), wrapped in ``BertForMaskedLM``. MiniLM ships no MLM head, so the
head's transform starts random (its decoder is tied to the word-piece embeddings); the first steps train mostly
the head, hence a warm-up. Masking is transformers' ``DataCollatorForLanguageModeling`` (15 %: 80 % [MASK], 10 %
random, 10 % kept). The result, ``<out>/encoder`` (a BertModel in transformers' format + tokenizer.json), is what
``finmon train --encoder`` starts from.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

from inference.tokenize import CASES, TOKENIZER_FILE, TextTokenizer, base_model_path
from inference.training.model import widen_token_types
from inference.training.recipe import PretrainConfig
from inference.training.train import adamw_schedule, start_run

log = logging.getLogger(__name__)
ENCODER_DIR = "encoder"


def masked_lm(tiny: bool = False) -> BertForMaskedLM:
    if tiny:
        config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, type_vocab_size=len(CASES))
        return BertForMaskedLM(config)
    model = BertForMaskedLM.from_pretrained(str(base_model_path()))
    widen_token_types(model.bert)
    return model


def mlm_loss(model: BertForMaskedLM, collator: DataCollatorForLanguageModeling, tokenizer: TextTokenizer,
             texts: Sequence[str]) -> torch.Tensor:
    batch = tokenizer.encode_texts(texts)
    ids = torch.from_numpy(batch.input_ids)
    special = torch.from_numpy((batch.attention_mask == 0) | np.isin(batch.input_ids, collator.tokenizer.all_special_ids))
    inputs, labels = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=special)
    return model(input_ids=inputs, attention_mask=torch.from_numpy(batch.attention_mask),
                 token_type_ids=torch.from_numpy(batch.case_ids), labels=labels).loss


def pretrain(texts: Sequence[str], cfg: PretrainConfig, corpus: dict | None = None) -> dict:
    """Train on ``texts``; write ``<out>/encoder`` and ``<out>/summary.json`` (returned)."""
    if not texts:
        from inference.errors import ConfigError

        raise ConfigError("no text to pre-train on")
    out, tok_dir, tokenizer = start_run(cfg.seed, cfg.threads, Path(cfg.out_dir), cfg.max_length)
    collator = DataCollatorForLanguageModeling(AutoTokenizer.from_pretrained(str(tok_dir)),
                                               mlm_probability=cfg.mlm_probability, seed=cfg.seed)
    model = masked_lm(cfg.tiny).train()
    steps_per_epoch = (len(texts) + cfg.batch_size - 1) // cfg.batch_size
    total = min(cfg.max_steps or steps_per_epoch * cfg.epochs, steps_per_epoch * cfg.epochs)
    opt, sched = adamw_schedule(model, cfg.lr, cfg.weight_decay, cfg.warmup, total)
    rng, step, losses, started = random.Random(cfg.seed), 0, [], time.time()
    log.info("pre-training on %d texts, %d steps", len(texts), total)
    while step < total:
        order = list(range(len(texts)))
        rng.shuffle(order)
        for b in range(0, len(order), cfg.batch_size):
            if step >= total:
                break
            loss = mlm_loss(model, collator, tokenizer, [texts[i] for i in order[b : b + cfg.batch_size]])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            if step % 200 == 0:
                log.info("step %d/%d mlm loss %.3f", step, total, float(np.mean(losses[-200:])))
    encoder_dir = out / ENCODER_DIR
    model.bert.save_pretrained(str(encoder_dir))
    shutil.copy(tok_dir / TOKENIZER_FILE, encoder_dir / TOKENIZER_FILE)
    w = max(1, min(50, len(losses) // 3))  # mean loss of the first and of the last steps
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
               "corpus": corpus or {"texts": len(texts)}, "steps": step,
               "loss_start": float(np.mean(losses[:w])), "loss_end": float(np.mean(losses[-w:])),
               "train_seconds": round(time.time() - started)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
