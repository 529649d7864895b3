"""Triton Python-backend model ``finmon_mtl``: runs the exported ``model.onnx`` through onnxruntime on CPU.

The tritonserver bundled in nvidia-pytriton ships only the Python backend, so this file stands in for the
onnxruntime backend of production (same model name, tensors and dtypes; see inference/serving/triton_config.py).
``finmon triton repo`` places it next to ``model.onnx`` in each version folder. It depends only on numpy,
onnxruntime and Triton's ``triton_python_backend_utils``; it must not import finmon.

The dynamic batcher hands ``execute`` several requests at once: they are run as ONE onnxruntime call (padded to
the longest sequence, attention mask 0 on the padding) so that the server really batches.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

INPUT_NAMES = ("input_ids", "attention_mask", "case_ids")
OUTPUT_NAMES = ("topic_logits", "sentiment_logits", "token_logits")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        threads = int(params.get("intra_op_threads", "0") or 0)
        if threads > 0:  # 0: onnxruntime's default, one thread per core (a single thread left half of 2 cores idle)
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(os.path.join(version_dir, "model.onnx"), options,
                                             providers=["CPUExecutionProvider"])
        onnx_inputs = {i.name for i in self._session.get_inputs()}
        missing = set(INPUT_NAMES) - onnx_inputs
        if missing:
            raise pb_utils.TritonModelException(f"model.onnx lacks inputs {sorted(missing)}")
        self._dtypes = {n: pb_utils.triton_string_to_numpy(pb_utils.get_output_config_by_name(config, n)["data_type"])
                        for n in OUTPUT_NAMES}
        logging.getLogger(__name__).info("finmon_mtl version %s loaded from %s", args["model_version"], version_dir)

    def execute(self, requests: list) -> list:
        arrays = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in INPUT_NAMES} for r in requests]
        sizes = [a["input_ids"].shape[0] for a in arrays]
        lengths = [a["input_ids"].shape[1] for a in arrays]
        width = max(lengths)
        feeds = {n: np.concatenate([_pad(a[n], width) for a in arrays]).astype(np.int64, copy=False)
                 for n in INPUT_NAMES}
        try:
            topic, sentiment, tokens = self._session.run(list(OUTPUT_NAMES), feeds)
        except Exception as exc:  # onnxruntime raises its own types; report them per request
            error = pb_utils.TritonError(f"onnxruntime failed: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses, start = [], 0
        for size, length in zip(sizes, lengths):
            stop = start + size
            outputs = {"topic_logits": topic[start:stop], "sentiment_logits": sentiment[start:stop],
                       "token_logits": tokens[start:stop, :length]}
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(n, np.ascontiguousarray(outputs[n], dtype=self._dtypes[n])) for n in OUTPUT_NAMES]))
            start = stop
        return responses

    def finalize(self) -> None:
        self._session = None


def _pad(array: np.ndarray, width: int) -> np.ndarray:
    """Right-pad the sequence axis with zeros (pad id 0, attention 0, case 0)."""
    missing = width - array.shape[1]
    return array if missing == 0 else np.pad(array, ((0, 0), (0, missing)))
