"""One asyncio connection to Triton over gRPC (preferred) or HTTP, with every failure mapped onto finmon's errors.

``InferenceServerException`` keeps its status as the ``code`` of the ``InferenceError`` raised in its place.
Failures that another try may cure (server unreachable, restarting, overloaded, timed out, model not loaded)
become ``ModelUnavailable``, which the retry policy retries and the ingest worker answers with backpressure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

import numpy as np
from tritonclient.utils import InferenceServerException

from inference.errors import InferenceError, ModelUnavailable
from inference.tensors import INPUTS, NUMPY_DTYPES, OUTPUTS

log = logging.getLogger(__name__)
T = TypeVar("T")
Protocol = Literal["grpc", "http"]

_RETRYABLE_STATUS = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "502", "503", "504", "429"}
_RETRYABLE_TEXT = ("not ready", "unknown model", "is not found", "unavailable", "connection", "socket closed")


def wrap_error(exc: BaseException, what: str) -> InferenceError:
    """The finmon error for a failure of ``what`` (an RPC name), keeping the server's status code."""
    if isinstance(exc, InferenceError):
        return exc
    if isinstance(exc, InferenceServerException):
        code = str(exc.status() or "").removeprefix("StatusCode.")
        message = f"Triton {what} failed: {exc.message()}"
        text = str(exc.message() or "").lower()
        if code in _RETRYABLE_STATUS or any(t in text for t in _RETRYABLE_TEXT):
            return ModelUnavailable(message, code=code or "UNAVAILABLE")
        return InferenceError(message, code=code or None)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ModelUnavailable(f"Triton {what} timed out", code="TIMEOUT")
    if isinstance(exc, OSError) or type(exc).__module__.startswith(("aiohttp", "grpc")):
        return ModelUnavailable(f"Triton {what}: {type(exc).__name__}: {exc}", code="UNREACHABLE")
    return InferenceError(f"Triton {what}: {type(exc).__name__}: {exc}", code="CLIENT")


def _grpc_channel_args(reconnect_max_s: float) -> list[tuple[str, int]]:
    """tritonclient's defaults (message size, keepalive) plus a short reconnect backoff: gRPC's own grows to
    2 minutes during an outage, which would keep the client away from a restarted server that long."""
    from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, KeepAliveOptions

    keepalive = KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", max(100, int(reconnect_max_s * 1000))),
    ]


class TritonTransport:
    """Created inside the event loop that uses it (gRPC and aiohttp channels are bound to one loop)."""

    def __init__(self, url: str, protocol: Protocol, model_name: str, *, model_version: str = "",
                 timeout_s: float = 10.0, reconnect_max_s: float = 2.0) -> None:
        self.url, self.protocol, self.model_name = url, protocol, model_name
        self.model_version = model_version
        self.timeout_s = timeout_s
        if protocol == "grpc":
            import tritonclient.grpc as api
            import tritonclient.grpc.aio as aio
        elif protocol == "http":
            import tritonclient.http as api  # type: ignore[no-redef]
            import tritonclient.http.aio as aio  # type: ignore[no-redef]
        else:
            raise ValueError(f"protocol must be grpc or http, not {protocol!r}")
        self._api = api
        if protocol == "grpc":
            self._client: Any = aio.InferenceServerClient(url, channel_args=_grpc_channel_args(reconnect_max_s))
        else:
            self._client = aio.InferenceServerClient(url, conn_timeout=timeout_s)

    async def _call(self, what: str, coro: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            raise wrap_error(exc, what) from exc

    async def server_ready(self) -> bool:
        return bool(await self._call("server_ready", self._client.is_server_ready()))

    async def model_ready(self) -> bool:
        return bool(await self._call("model_ready", self._client.is_model_ready(self.model_name, self.model_version)))

    async def model_config(self) -> dict[str, Any]:
        """The served model's configuration, as JSON (same shape for both protocols)."""
        if self.protocol == "grpc":
            reply = await self._call("model_config", self._client.get_model_config(
                self.model_name, self.model_version, as_json=True))
            return dict(reply["config"])
        return dict(await self._call("model_config", self._client.get_model_config(
            self.model_name, self.model_version)))

    async def statistics(self) -> dict[str, Any]:
        if self.protocol == "grpc":
            return dict(await self._call("statistics", self._client.get_inference_statistics(
                self.model_name, self.model_version, as_json=True)))
        return dict(await self._call("statistics", self._client.get_inference_statistics(
            self.model_name, self.model_version)))

    async def infer(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = []
        for spec in INPUTS:
            array = np.ascontiguousarray(arrays[spec.name], dtype=NUMPY_DTYPES[spec.dtype])
            tensor = self._api.InferInput(spec.name, list(array.shape), spec.dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._api.InferRequestedOutput(spec.name) for spec in OUTPUTS]
        result = await self._call("infer", self._client.infer(self.model_name, inputs, self.model_version,
                                                              outputs=outputs))
        return {spec.name: result.as_numpy(spec.name) for spec in OUTPUTS}

    async def close(self) -> None:
        try:
            await self._client.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken channel must not mask the real error
            log.debug("closing Triton client: %s", exc)
