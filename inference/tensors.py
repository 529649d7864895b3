"""The model's tensor contract: names, dtypes and shapes shared by the ONNX export, the in-process predictor,
the Triton model repositories (GPU onnxruntime and CPU Python backend) and the Triton client."""

from __future__ import annotations

from dataclasses import dataclass

from inference.labels import NER_TAGS, SENTIMENTS, TOPICS

MODEL_NAME = "finmon_mtl"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # Triton dtype name (TYPE_ prefix dropped), e.g. INT64, FP32
    dims: tuple[int, ...]  # without the batch dimension; -1 is variable


INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("input_ids", "INT64", (-1,)),
    TensorSpec("attention_mask", "INT64", (-1,)),
    # Casing of each word piece's original characters (the encoder is uncased): see inference.tokenize.
    TensorSpec("case_ids", "INT64", (-1,)),
)
OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("topic_logits", "FP32", (len(TOPICS),)),
    TensorSpec("sentiment_logits", "FP32", (len(SENTIMENTS),)),
    TensorSpec("token_logits", "FP32", (-1, len(NER_TAGS))),
)
NUMPY_DTYPES = {"INT64": "int64", "FP32": "float32"}
