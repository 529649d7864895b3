"""Floor 1: the multi-task model (labels, tokenisation, training, export, prediction, Triton)."""
