"""Model soup: the uniform average of the weights of several fine-tuned checkpoints of the same architecture.

Two multi-task runs that start from the same pretrained encoder (here: one without and one with the pseudo-labelled
sentiment tweets) end in the same basin; their average is one model of the same size and speed that scores
better on the dev splits than either (Wortsman et al., 2022, "Model soups"). Needs torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from inference.training.model import MultiTaskModel


def average_checkpoints(checkpoints: Sequence[Path], out: Path) -> Path:
    """Writes the weight average of ``checkpoints`` (training folders) as a training folder at ``out``."""
    if len(checkpoints) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    models = [MultiTaskModel.load(c) for c in checkpoints]
    states = [m.state_dict() for m in models]
    if any(s.keys() != states[0].keys() or any(s[k].shape != states[0][k].shape for k in s) for s in states):
        raise ValueError("checkpoints differ in architecture; only checkpoints of one model can be averaged")
    mean = {k: torch.stack([s[k] for s in states]).mean(0) if states[0][k].is_floating_point() else states[0][k]
            for k in states[0]}
    models[0].load_state_dict(mean)
    return models[0].save(out, checkpoints[0])
