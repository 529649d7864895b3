"""Batches the texts of concurrent callers into one model request: flush on size or time, bounded in flight.

Each caller awaits its own texts' results, in order. A flush happens when ``max_batch`` texts are waiting, or
``max_delay_s`` after the first text of a batch arrived, whichever comes first. At most ``max_in_flight``
requests run at once; while they do, new texts keep queueing and leave together, in full batches, when a
request returns: a slow server gets bigger batches rather than more requests. A failed request fails exactly the callers it carried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
R = TypeVar("R")


class MicroBatcher(Generic[R]):
    """Must be created and used inside one running event loop."""

    def __init__(self, run_batch: Callable[[list[str]], Awaitable[list[R]]], *, max_batch: int = 32,
                 max_delay_s: float = 0.005, max_in_flight: int = 4) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be >= 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_in_flight = max_in_flight
        self._in_flight = 0
        self._pending: list[tuple[str, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests_sent = 0  # for tests and benchmarks: how many model requests were made

    async def submit(self, texts: Sequence[str]) -> list[R]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = []
        for text in texts:
            future: asyncio.Future[R] = loop.create_future()
            self._pending.append((text, future))
            futures.append(future)
            if len(self._pending) >= self.max_batch:
                self._flush()
        if self._pending and self._timer is None:
            self._timer = loop.call_later(self.max_delay_s, self._flush)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    def _flush(self) -> None:
        """Send what is waiting, in chunks of ``max_batch``, while request slots are free."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and self._in_flight < self.max_in_flight:
            chunk, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            live = [(t, f) for t, f in chunk if not f.done()]  # callers that gave up need no prediction
            if not live:
                continue
            self._in_flight += 1
            self.requests_sent += 1
            task = asyncio.get_running_loop().create_task(self._send(live))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, chunk: list[tuple[str, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run_batch([t for t, _ in chunk])
            if len(results) != len(chunk):
                raise RuntimeError(f"{len(results)} results for a batch of {len(chunk)}")
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
            for _, future in chunk:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        else:
            for (_, future), result in zip(chunk, results):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            if self._pending:  # texts that queued while every slot was busy: they have waited long enough
                self._flush()

    async def aclose(self) -> None:
        """Flush what is waiting and wait for every request in flight."""
        if self._pending:
            self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
