"""Training: data loading, the torch multi-task network, the training loop, checkpoint soups, the teacher, ONNX export. Needs the ``train`` extra (torch)."""
