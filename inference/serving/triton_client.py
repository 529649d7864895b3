"""``TritonPredictor``: the ``Predictor`` that sends documents to a Triton server.

Texts are tokenised HERE (``inference.tokenize``, keeping character offsets) and turned into ``Prediction``
objects HERE (``inference.decoding.decode``), exactly as the in-process predictor does; Triton only runs the network.
Concurrent callers are batched (``MicroBatcher``); each request goes through retries with backoff and a circuit
breaker (``inference.serving.resilience``), so a dead server costs callers one fast ``ModelUnavailable``.

The asyncio machinery (gRPC channel, batcher) lives on a private event-loop thread: ``apredict`` works from any
event loop (faust's, a test's), ``predict`` from plain threads, and all callers share one batcher.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from inference.decoding.decode import decode
from inference.errors import ConfigError, InputError, ModelUnavailable
from inference.serving.micro_batcher import MicroBatcher
from inference.decoding.prediction import Prediction
from inference.serving.resilience import CircuitBreaker, RetryPolicy, call_with_retries
from inference.settings import MIN_SCORES, ModelSettings
from inference.tensors import INPUTS, OUTPUTS, TensorSpec
from inference.tokenize import TextTokenizer
from inference.serving.triton_config import VERSION_PARAMETER
from inference.serving.triton_repository import exported_versions
from inference.serving.triton_settings import TritonSettings
from inference.serving.triton_transport import TritonTransport

log = logging.getLogger(__name__)
T = TypeVar("T")


class TritonPredictor:
    def __init__(self, settings: TritonSettings, tokenizer: TextTokenizer, local_version: str = "",
                 min_scores: tuple[float, float] = MIN_SCORES) -> None:
        if not settings.url:
            raise ConfigError("FINMON_TRITON_URL is not set")
        self.settings = settings
        self.tokenizer = tokenizer
        self.min_scores = min_scores  # (unlinked, linked) entity span scores, see decode.confident
        self.local_version = settings.expected_model_version or local_version
        self.model_version = self.local_version
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s, name=f"Triton {settings.url}")
        self.retry = RetryPolicy(settings.retries, settings.backoff_base_s, settings.backoff_max_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="triton-client", daemon=True)
        self._transport: TritonTransport | None = None
        self._batcher: MicroBatcher[Prediction] | None = None

    @classmethod
    def from_settings(cls, settings: TritonSettings | None = None, model: ModelSettings | None = None,
                      start: bool = True) -> "TritonPredictor":
        """Tokenizer and expected version from the local export (``ModelSettings.repository``); then ``start``."""
        settings, model = settings or TritonSettings(), model or ModelSettings()
        versions = [v for v in exported_versions(model.repository, model.name)
                    if not model.version or str(v.number) == model.version]
        if not versions:
            raise ConfigError(f"no exported model (tokenizer) under {model.repository / model.name}")
        tokenizer = TextTokenizer.from_dir(versions[-1].path, model.max_length)  # as the in-process predictor
        predictor = cls(settings, tokenizer, versions[-1].model_version, model.min_scores)
        return predictor.start() if start else predictor

    # lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> "TritonPredictor":
        """Connect, wait up to ``ready_timeout_s`` for the model, and check what the server serves."""
        if not self._thread.is_alive():
            self._thread.start()
        try:
            self._run(self._start())
        except BaseException:
            self.close()
            raise
        return self

    async def _start(self) -> None:
        s = self.settings
        self._transport = TritonTransport(s.url, s.protocol, s.model_name, model_version=s.model_version,
                                          timeout_s=s.request_timeout_s, reconnect_max_s=s.backoff_max_s)
        self._batcher = MicroBatcher(self._predict_batch, max_batch=s.max_batch, max_delay_s=s.max_delay_ms / 1000,
                                     max_in_flight=s.max_in_flight)
        await self._wait_ready()
        served = await self._transport.model_config()
        check_served_config(served)
        server_version = served.get("parameters", {}).get(VERSION_PARAMETER, {}).get("string_value", "")
        if server_version and self.local_version and server_version != self.local_version:
            raise ConfigError(f"Triton at {s.url} serves {server_version} but the local tokenizer is from "
                              f"{self.local_version}: deploy the same export on both sides")
        if not server_version:
            log.warning("Triton config of %s carries no %s; assuming %s", s.model_name, VERSION_PARAMETER,
                        self.local_version or "an unknown version")
        self.model_version = server_version or self.local_version
        log.info("Triton client ready: %s %s, model %s (%s)", s.protocol, s.url, s.model_name, self.model_version)

    async def _wait_ready(self) -> None:
        assert self._transport is not None
        loop = self._loop
        deadline, attempt, last = loop.time() + self.settings.ready_timeout_s, 0, "not ready"
        while True:
            try:
                if await self._transport.server_ready() and await self._transport.model_ready():
                    return
            except ModelUnavailable as exc:
                last = str(exc)
            if loop.time() >= deadline:
                raise ModelUnavailable(f"Triton at {self.settings.url} ({self.settings.protocol}): model "
                                       f"{self.settings.model_name} not ready after "
                                       f"{self.settings.ready_timeout_s:.0f}s ({last})", code="NOT_READY")
            await asyncio.sleep(min(self.retry.delay(attempt), max(0.0, deadline - loop.time())))
            attempt += 1

    def close(self) -> None:
        if self._thread.is_alive():
            self._run(self._aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    async def _aclose(self) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._transport is not None:
            await self._transport.close()

    def __enter__(self) -> "TritonPredictor":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # Predictor -----------------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self._run(self._submit(texts))

    async def apredict(self, texts: Sequence[str]) -> list[Prediction]:
        return await asyncio.wrap_future(self._schedule(self._submit(texts)))

    async def statistics(self) -> dict[str, Any]:
        """Triton's statistics of the served model (execution and batch counts)."""
        if self._transport is None:
            raise ModelUnavailable("the Triton client is not started", code="NOT_STARTED")
        return await asyncio.wrap_future(self._schedule(self._transport.statistics()))

    @property
    def requests_sent(self) -> int:
        return self._batcher.requests_sent if self._batcher else 0

    async def _submit(self, texts: Sequence[str]) -> list[Prediction]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError("predict() takes a sequence of str")
        if self._batcher is None:
            raise ModelUnavailable("the Triton client is not started", code="NOT_STARTED")
        return await self._batcher.submit(texts) if texts else []

    async def _predict_batch(self, texts: list[str]) -> list[Prediction]:
        assert self._transport is not None
        batch = self.tokenizer.encode_texts(texts)
        width = batch.input_ids.shape[1]
        arrays = pad_to_multiple(batch.arrays(), self.settings.pad_multiple)
        transport = self._transport
        outputs = await call_with_retries(lambda: transport.infer(arrays), self.retry, self.breaker)
        return decode(texts, batch, outputs["topic_logits"], outputs["sentiment_logits"],
                      outputs["token_logits"][:, :width], self.model_version, *self.min_scores)

    def _schedule(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if not self._thread.is_alive() or self._loop.is_closed():
            coro.close()
            raise ModelUnavailable("the Triton client is not started or already closed", code="NOT_STARTED")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._schedule(coro).result()


def pad_to_multiple(arrays: dict[str, np.ndarray], multiple: int) -> dict[str, np.ndarray]:
    """Zero-pad the sequence axis (pad id, mask 0) so that requests of similar lengths have EQUAL shapes,
    which Triton's dynamic batcher needs to merge them."""
    width = next(iter(arrays.values())).shape[1]
    missing = -width % multiple
    return arrays if not missing else {k: np.pad(v, ((0, 0), (0, missing))) for k, v in arrays.items()}


def check_served_config(config: dict[str, Any]) -> None:
    """Raise ``ConfigError`` unless the served model's tensors are those of ``inference.tensors``."""
    def table(entries: list[dict[str, Any]]) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {e["name"]: (e.get("data_type", ""), tuple(int(d) for d in e.get("dims", []))) for e in entries}

    def expected(specs: Sequence[TensorSpec]) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {s.name: (f"TYPE_{s.dtype}", s.dims) for s in specs}

    for kind, specs in (("input", INPUTS), ("output", OUTPUTS)):
        served = table(config.get(kind, []))
        if served != expected(specs):
            raise ConfigError(f"the served model's {kind}s {served} differ from the tensor contract "
                              f"{expected(specs)} (inference/tensors.py)")
