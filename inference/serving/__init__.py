"""Serving: the in-process onnxruntime predictor, the Triton model repository, server launcher and resilient client."""
