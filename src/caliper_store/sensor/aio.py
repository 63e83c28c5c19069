"""The Caliper sensor for asyncio code: the same batches and retries as ``Sensor``, awaited.

Sender tasks start on the first ``send`` (they need a running loop). A disk queue's commits
run in a worker thread, so the loop never waits for an fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from caliper_store.sensor.batches import (
    Batch,
    SensorCore,
    SensorOptions,
)
from caliper_store.sensor.envelope import event_bytes
from caliper_store.sensor.queue import DiskQueue, EventQueue
from caliper_store.sensor.retry import Attempts, Decision, Wait

T = TypeVar("T")


class AsyncSensor(SensorCore):
    """Sends Caliper events to one endpoint from asyncio code; see ``Sensor`` for the args."""

    def __init__(
        self,
        url: str,
        key: str,
        options: SensorOptions,
        *,
        queue: EventQueue | Path | None = None,
    ) -> None:
        super().__init__(url, key, options, queue)
        self._http = httpx.AsyncClient(
            timeout=options.timeout_s, headers=self._headers, limits=self._limits
        )
        self._wake = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._is_on_disk = isinstance(self._batches.queue, DiskQueue)

    async def send(self, *events: Mapping[str, Any] | bytes) -> None:
        """Queue events; see ``Sensor.send``."""
        bodies = [event_bytes(event) for event in events]
        await self._queue_call(self._batches.queue.put, bodies)
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run()) for _ in range(self.options.concurrency)
            ]
        async with self._wake:
            self._wake.notify_all()

    async def flush(self) -> None:
        """Deliver everything queued now; see ``Sensor.flush``."""
        if not self._tasks:
            return
        async with self._wake:
            self._flushes += 1
            gave_up = self.stats.gave_up
            self._wake.notify_all()
            try:
                while not self._batches.idle:
                    if self.stats.gave_up != gave_up:
                        raise self._undelivered()
                    await self._wake.wait()
            finally:
                self._flushes -= 1

    async def post_envelope(self, body: bytes, event_count: int) -> Decision:
        """Send one ready envelope now, unqueued; see ``Sensor.post_envelope``."""
        decision, attempts = await self._post(body)
        self._batches.settle(Batch([], body), decision, attempts, event_count)
        return decision

    async def aclose(self) -> None:
        """Flush, stop the sender tasks, close the connections and the queue."""
        try:
            await self.flush()
        finally:
            async with self._wake:
                self._is_closing = True
                self._wake.notify_all()
            await asyncio.gather(*self._tasks)
            await self._http.aclose()
            self._batches.queue.close()

    async def __aenter__(self) -> AsyncSensor:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while True:
            async with self._wake:
                while True:
                    if self._is_closing:
                        return
                    due = self._batches.seconds_until_due(is_flushing=self._flushes > 0)
                    if due == 0:
                        break
                    with contextlib.suppress(TimeoutError):  # the interval is up: look again
                        await asyncio.wait_for(self._wake.wait(), due)
            batch = await self._queue_call(self._batches.take)
            if batch is None:
                continue
            decision, attempts = await self._post(batch.body)
            await self._queue_call(self._batches.settle, batch, decision, attempts)
            async with self._wake:
                self._wake.notify_all()

    async def _post(self, body: bytes) -> tuple[Decision, int]:
        attempts = Attempts(self.options.retry, self._rng)
        while True:
            try:
                response = await self._http.post(self._url, content=body, params=self._params)
            except httpx.TransportError as error:
                decision = attempts.after_error(error)
            else:
                decision = self._answer(attempts, response)
            if not isinstance(decision, Wait):
                return decision, attempts.count
            async with self._wake:
                try:
                    await asyncio.wait_for(
                        self._wake.wait_for(lambda: self._is_closing), decision.seconds
                    )
                    return decision, attempts.count
                except TimeoutError:
                    pass  # waited out the backoff: try again

    async def _queue_call(self, call: Callable[..., T], *args: Any) -> T:
        if self._is_on_disk:
            return await asyncio.to_thread(call, *args)
        return call(*args)
