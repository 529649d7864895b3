"""Settings of the Triton client (env prefix ``FINMON_TRITON_``, TOML table ``[triton]``). docs/triton.md lists them.

An empty ``url`` means "no Triton": ``load_predictor`` then runs the model in-process.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from inference.settings import StageSettings
from inference.tensors import MODEL_NAME


class TritonSettings(StageSettings):
    section: ClassVar[str] = "triton"
    model_config = SettingsConfigDict(env_prefix="FINMON_TRITON_", extra="ignore")

    url: str = ""  # host:port of Triton's gRPC (default 8001) or HTTP (default 8000) endpoint
    protocol: Literal["grpc", "http"] = "grpc"
    model_name: str = MODEL_NAME
    model_version: str = ""  # Triton version number to call; empty: whatever the server's version policy serves
    expected_model_version: str = ""  # finmon model_version the server must serve; empty: the local tokenizer's

    # time limits
    request_timeout_s: float = Field(10.0, gt=0)  # one inference request (and each readiness call)
    ready_timeout_s: float = Field(30.0, ge=0)  # how long start() waits for the server and model to be ready

    # retries (ModelUnavailable only) and the circuit breaker
    retries: int = Field(3, ge=0)
    backoff_base_s: float = Field(0.1, gt=0)
    backoff_max_s: float = Field(2.0, gt=0)
    breaker_failures: int = Field(5, ge=1)  # consecutive failed calls that open the breaker
    breaker_reset_s: float = Field(5.0, gt=0)  # open -> half-open (one probe call) after this long

    # client-side batching across concurrent callers
    max_batch: int = Field(32, ge=1)  # texts per request (keep <= the config's max_batch_size)
    max_delay_ms: float = Field(5.0, ge=0)  # a partial batch is sent this long after its first text arrived
    max_in_flight: int = Field(4, ge=1)  # concurrent requests to the server
    pad_multiple: int = Field(16, ge=1)  # pad sequence lengths to a multiple: equal shapes batch server-side


def triton_settings(**overrides: Any) -> TritonSettings:
    return TritonSettings(**overrides)
