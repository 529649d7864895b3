"""Evaluation: task metrics for any runner (torch or onnxruntime), on the base install where possible."""
