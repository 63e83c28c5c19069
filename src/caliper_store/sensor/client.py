"""The Caliper sensor for threaded code: ``send`` queues, sender threads batch and deliver.

``send`` returns once the events are queued (on disk, committed, when the queue is a file);
``flush`` returns once every queued event is delivered, or raises DeliveryFailed and leaves the
rest queued for the next try. Any number of threads may call ``send`` at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from caliper_store.sensor.batches import (
    Batch,
    SensorCore,
    SensorOptions,
)
from caliper_store.sensor.envelope import event_bytes
from caliper_store.sensor.queue import EventQueue
from caliper_store.sensor.retry import Attempts, Decision, Wait


class Sensor(SensorCore):
    """Sends Caliper events to one endpoint, batched, retried, from a bounded queue.

    Args:
        url: the store's endpoint (``https://store.example.edu/caliper``).
        key: the API key the store issued to this sender.
        options: batching, retry and envelope settings.
        queue: where undelivered events wait: a path for a disk queue that survives a crash,
            or None for memory.
    """

    def __init__(
        self,
        url: str,
        key: str,
        options: SensorOptions,
        *,
        queue: EventQueue | Path | None = None,
    ) -> None:
        super().__init__(url, key, options, queue)
        self._http = httpx.Client(
            timeout=options.timeout_s, headers=self._headers, limits=self._limits
        )
        self._wake = threading.Condition()
        self._threads = [
            threading.Thread(target=self._run, name=f"caliper-sensor-{n}", daemon=True)
            for n in range(options.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def send(self, *events: Mapping[str, Any] | bytes) -> None:
        """Queue events (mappings get an id if they have none; bytes go as they are).

        Raises:
            QueueFull: the queue holds ``max_queued_events``; none of these were queued.
        """
        bodies = [event_bytes(event) for event in events]
        self._batches.queue.put(bodies)
        with self._wake:
            self._wake.notify_all()

    def flush(self) -> None:
        """Deliver everything queued now; returns when the queue is empty.

        Raises:
            DeliveryFailed: a batch used up its tries; what is left stays queued.
        """
        with self._wake:
            self._flushes += 1
            gave_up = self.stats.gave_up
            self._wake.notify_all()
            try:
                while not self._batches.idle:
                    if self.stats.gave_up != gave_up:
                        raise self._undelivered()
                    self._wake.wait()
            finally:
                self._flushes -= 1

    def post_envelope(self, body: bytes, event_count: int) -> Decision:
        """Send one ready envelope of ``event_count`` events now, with retries, unqueued.

        For envelopes that must go as they are (a captured file); counted in ``stats``.
        """
        decision, attempts = self._post(body)
        self._batches.settle(Batch([], body), decision, attempts, event_count)
        return decision

    def close(self) -> None:
        """Flush, stop the sender threads, close the connections and the queue.

        Raises:
            DeliveryFailed: some events could not be delivered; a disk queue keeps them.
        """
        try:
            self.flush()
        finally:
            with self._wake:
                self._is_closing = True
                self._wake.notify_all()
            for thread in self._threads:
                thread.join()
            self._http.close()
            self._batches.queue.close()

    def __enter__(self) -> Sensor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._is_closing:
                        return
                    due = self._batches.seconds_until_due(is_flushing=self._flushes > 0)
                    if due == 0:
                        break
                    self._wake.wait(due)
            batch = self._batches.take()
            if batch is None:
                continue
            decision, attempts = self._post(batch.body)
            with self._wake:
                self._batches.settle(batch, decision, attempts)
                self._wake.notify_all()

    def _post(self, body: bytes) -> tuple[Decision, int]:
        attempts = Attempts(self.options.retry, self._rng)
        while True:
            try:
                response = self._http.post(self._url, content=body, params=self._params)
            except httpx.TransportError as error:
                decision = attempts.after_error(error)
            else:
                decision = self._answer(attempts, response)
            if not isinstance(decision, Wait):
                return decision, attempts.count
            with self._wake:
                if self._wake.wait_for(lambda: self._is_closing, decision.seconds):
                    return decision, attempts.count
