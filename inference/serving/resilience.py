"""Retries with exponential backoff and jitter, and a circuit breaker, for calls to a model server.

Only ``ModelUnavailable`` (server unreachable, not ready, timed out, overloaded) is retried and counts against
the breaker: a request the server rejected as invalid would fail the same way again, and proves it is alive.
When the breaker is open, calls fail at once with ``ModelUnavailable`` (the ingest worker then pauses
consumption) until ``reset_timeout_s`` has passed; then ONE probe call goes through (half-open): its success
closes the breaker, its failure opens it again for another period.

Both objects are used from one event loop and are not thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from inference.errors import InferenceError, ModelUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, name: str = "model server") -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.name = name
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Raise ``ModelUnavailable`` unless a call may go through now."""
        state = self.state
        if state is BreakerState.OPEN:
            wait = self.reset_timeout_s - (self._clock() - (self._opened_at or 0.0))
            raise ModelUnavailable(f"circuit breaker open for {self.name}: retry in {wait:.1f}s", code="BREAKER_OPEN")
        if state is BreakerState.HALF_OPEN:
            if self._probing:
                raise ModelUnavailable(f"circuit breaker half-open for {self.name}: a probe is in flight",
                                       code="BREAKER_OPEN")
            self._probing = True

    def record_success(self) -> None:
        if self._opened_at is not None:
            log.info("circuit breaker for %s closed", self.name)
        self._failures, self._opened_at, self._probing = 0, None, False

    def release_probe(self) -> None:
        """A call ended without telling whether the server works: let another probe through."""
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        was_probe, self._probing = self._probing, False
        if was_probe or (self._opened_at is None and self._failures >= self.failure_threshold):
            self._opened_at = self._clock()
            log.warning("circuit breaker for %s open after %d failures (probe: %s)", self.name, self._failures,
                        was_probe)


@dataclass
class RetryPolicy:
    """``retries`` extra attempts; the n-th wait is uniform in [cap/2, cap], cap = min(max, base * 2**n)."""

    retries: int = 3
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        cap = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return self.rng.uniform(cap / 2, cap)


async def call_with_retries(operation: Callable[[], Awaitable[T]], policy: RetryPolicy, breaker: CircuitBreaker,
                            sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> T:
    """Run ``operation`` through ``breaker``, retrying ``ModelUnavailable`` per ``policy``."""
    attempt = 0
    while True:
        breaker.before_call()  # an open breaker ends the retries at once: the caller backs off for longer
        try:
            result = await operation()
        except ModelUnavailable as exc:
            breaker.record_failure()
            if attempt >= policy.retries:
                raise
            wait = policy.delay(attempt)
            log.info("model server call failed (%s); retry %d/%d in %.2fs", exc, attempt + 1, policy.retries, wait)
            attempt += 1
            await sleep(wait)
        except InferenceError:
            breaker.record_success()  # the server answered (e.g. rejected the input): it is up
            raise
        except BaseException:
            breaker.release_probe()  # cancelled or a bug here: says nothing about the server
            raise
        else:
            breaker.record_success()
            return result
