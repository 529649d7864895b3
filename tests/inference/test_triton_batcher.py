"""MicroBatcher: texts of concurrent callers share requests; flush on size or time; bounded in flight."""

from __future__ import annotations

import asyncio

import pytest

from inference.errors import ModelUnavailable
from inference.serving.micro_batcher import MicroBatcher


class Model:
    """Records each request; answers ``text.upper()``; fails requests containing 'boom'."""

    def __init__(self, latency: float = 0.0) -> None:
        self.requests: list[list[str]] = []
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, texts: list[str]) -> list[str]:
        self.requests.append(list(texts))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            if any("boom" in t for t in texts):
                raise ModelUnavailable("boom")
            return [t.upper() for t in texts]
        finally:
            self.in_flight -= 1


async def test_concurrent_callers_share_requests_and_get_their_own_results_in_order() -> None:
    model = Model()
    batcher = MicroBatcher(model, max_batch=8, max_delay_s=0.05)
    inputs = [[f"c{c}-t{i}" for i in range(c % 3 + 1)] for c in range(12)]
    results = await asyncio.gather(*(batcher.submit(texts) for texts in inputs))
    assert results == [[t.upper() for t in texts] for texts in inputs]
    sent = sum(len(r) for r in model.requests)
    assert sent == sum(len(t) for t in inputs)
    assert len(model.requests) < len(inputs)
    assert all(len(r) <= 8 for r in model.requests)


async def test_flush_on_size_does_not_wait_for_the_delay() -> None:
    model = Model()
    batcher = MicroBatcher(model, max_batch=4, max_delay_s=30.0)
    result = await asyncio.wait_for(batcher.submit(["a", "b", "c", "d", "e", "f", "g", "h"]), timeout=5)
    assert result == list("ABCDEFGH")
    assert [len(r) for r in model.requests] == [4, 4]


async def test_flush_on_time_sends_a_partial_batch() -> None:
    model = Model()
    batcher = MicroBatcher(model, max_batch=64, max_delay_s=0.02)
    assert await asyncio.wait_for(batcher.submit(["only"]), timeout=5) == ["ONLY"]
    assert model.requests == [["only"]]


async def test_in_flight_requests_are_bounded_and_texts_queue_meanwhile() -> None:
    model = Model(latency=0.05)
    batcher = MicroBatcher(model, max_batch=2, max_delay_s=0.001, max_in_flight=2)
    results = await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(20)))
    assert [r[0] for r in results] == [f"T{i}" for i in range(20)]
    assert model.max_in_flight == 2
    assert batcher.requests_sent == len(model.requests) == 10


async def test_a_failed_request_fails_only_its_own_callers() -> None:
    model = Model()
    batcher = MicroBatcher(model, max_batch=1, max_delay_s=0.001)
    good, bad = await asyncio.gather(batcher.submit(["fine"]), batcher.submit(["boom"]), return_exceptions=True)
    assert good == ["FINE"]
    assert isinstance(bad, ModelUnavailable)


async def test_empty_and_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Model(), max_batch=0)
    batcher = MicroBatcher(Model(), max_batch=2)
    assert await batcher.submit([]) == []


async def test_texts_queued_behind_a_busy_server_leave_as_one_batch() -> None:
    model = Model(latency=0.1)
    batcher = MicroBatcher(model, max_batch=64, max_delay_s=0.001, max_in_flight=1)
    first = asyncio.ensure_future(batcher.submit(["first"]))
    await asyncio.sleep(0.02)  # the first request is now in flight
    rest = await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(30)))
    assert await first == ["FIRST"] and [r[0] for r in rest] == [f"T{i}" for i in range(30)]
    assert [len(r) for r in model.requests] == [1, 30]


async def test_a_caller_that_gives_up_does_not_block_the_others() -> None:
    model = Model(latency=0.05)
    batcher = MicroBatcher(model, max_batch=4, max_delay_s=0.001, max_in_flight=1)
    busy = asyncio.ensure_future(batcher.submit(["busy"]))
    await asyncio.sleep(0.01)
    quitter = asyncio.ensure_future(batcher.submit(["quitter"]))
    stayer = asyncio.ensure_future(batcher.submit(["stayer"]))
    await asyncio.sleep(0.01)
    quitter.cancel()
    assert await stayer == ["STAYER"] and await busy == ["BUSY"]
    assert ["quitter"] not in model.requests and all("quitter" not in r for r in model.requests)
