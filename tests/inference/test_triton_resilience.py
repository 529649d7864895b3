"""Circuit breaker and retry policy of the Triton client (no server: a fake clock and a scripted operation)."""

from __future__ import annotations

import random

import pytest

from inference.errors import InferenceError, ModelUnavailable
from inference.serving.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_retries


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Script:
    """An async operation that fails with the queued exceptions, then returns 'ok'."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_breaker_opens_after_threshold_then_half_open_probe_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=5.0, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ModelUnavailable, match="open") as info:
        breaker.before_call()
    assert info.value.code == "BREAKER_OPEN"

    clock.now += 5.0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()  # the one probe
    with pytest.raises(ModelUnavailable, match="probe"):
        breaker.before_call()  # a second caller while the probe is in flight
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_failed_probe_reopens_for_a_full_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=2.0, clock=clock)
    breaker.record_failure()
    clock.now += 2.0
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 1.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(retries=6, base_delay_s=0.1, max_delay_s=1.0, rng=random.Random(7))
    for attempt in range(6):
        cap = min(1.0, 0.1 * 2**attempt)
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(cap / 2 <= s <= cap for s in samples)
        assert len({round(s, 9) for s in samples}) > 100  # jittered, not a constant


async def test_unavailable_is_retried_until_success() -> None:
    op, sleeps = Script(ModelUnavailable("down"), ModelUnavailable("down")), Sleeps()
    breaker = CircuitBreaker(failure_threshold=10, clock=Clock())
    policy = RetryPolicy(retries=3, base_delay_s=0.1, max_delay_s=1.0, rng=random.Random(1))
    assert await call_with_retries(op, policy, breaker, sleep=sleeps) == "ok"
    assert op.calls == 3
    assert len(sleeps.waits) == 2 and 0.05 <= sleeps.waits[0] <= 0.1 and 0.1 <= sleeps.waits[1] <= 0.2
    assert breaker.state is BreakerState.CLOSED


async def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    op = Script(*(ModelUnavailable(f"down {i}") for i in range(10)))
    breaker = CircuitBreaker(failure_threshold=100, clock=Clock())
    with pytest.raises(ModelUnavailable, match="down 2"):
        await call_with_retries(op, RetryPolicy(retries=2), breaker, sleep=Sleeps())
    assert op.calls == 3


async def test_rejected_input_is_not_retried_and_does_not_trip_the_breaker() -> None:
    op = Script(InferenceError("bad shape", code="INVALID_ARGUMENT"))
    breaker = CircuitBreaker(failure_threshold=1, clock=Clock())
    with pytest.raises(InferenceError, match="bad shape"):
        await call_with_retries(op, RetryPolicy(retries=5), breaker, sleep=Sleeps())
    assert op.calls == 1
    assert breaker.state is BreakerState.CLOSED


async def test_open_breaker_stops_retrying_at_once() -> None:
    clock = Clock()
    op = Script(*(ModelUnavailable("down") for _ in range(10)))
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30.0, clock=clock)
    with pytest.raises(ModelUnavailable) as info:
        await call_with_retries(op, RetryPolicy(retries=8), breaker, sleep=Sleeps())
    assert op.calls == 2 and info.value.code == "BREAKER_OPEN"
    with pytest.raises(ModelUnavailable, match="open"):
        await call_with_retries(op, RetryPolicy(retries=8), breaker, sleep=Sleeps())
    assert op.calls == 2  # no call reached the server while open

    clock.now += 30.0  # half-open: the probe succeeds and closes the breaker
    op.failures.clear()
    assert await call_with_retries(op, RetryPolicy(retries=8), breaker, sleep=Sleeps()) == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_cancelled_probe_lets_the_next_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1.0, clock=clock)
    breaker.record_failure()
    clock.now += 1.0
    import asyncio

    with pytest.raises(asyncio.CancelledError):
        await call_with_retries(Script(asyncio.CancelledError()), RetryPolicy(), breaker, sleep=Sleeps())
    assert await call_with_retries(Script(), RetryPolicy(), breaker, sleep=Sleeps()) == "ok"
