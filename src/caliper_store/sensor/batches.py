"""What the sync and async sensors share: options, counters, and which events go out next.

Both senders run the same loop (wait until a batch is due, take it, post it with retries,
settle it); only how they wait and post differs, so everything else lives here once.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from caliper_store.errors import DeliveryFailed
from caliper_store.sensor.envelope import DataVersion, envelope_body
from caliper_store.sensor.queue import EventQueue, Queued, open_queue
from caliper_store.sensor.retry import (
    Accepted,
    Attempts,
    Decision,
    GaveUp,
    Rejected,
    RetryPolicy,
)


@dataclass(frozen=True, slots=True)
class SensorOptions:
    """How a sensor sends.

    Attributes:
        sensor_id: the envelope's ``sensor`` (an IRI naming this sender).
        data_version: the envelope's ``dataVersion``; None leaves it out (Caliper 1.0).
        batch_events: most events in one envelope, and how many queued events send one at once.
        batch_interval_s: longest an event waits for its batch to fill; 0 sends at once, None
            waits for ``batch_events`` (or a flush).
        max_envelope_bytes: an envelope grows no larger than this (one event may exceed it
            alone); keep it under the store's ``max_body_bytes``.
        concurrency: envelopes in flight at once (one keep-alive connection each).
        timeout_s: connect and read timeout of one request.
        is_bare_key: send ``Authorization: <key>`` without ``Bearer``, as Moodle does.
        want_receipts: ask for per-event receipts (``?receipt=1``) and count their verdicts.
        retry: when to send again.
    """

    sensor_id: str
    data_version: DataVersion | None = "1.2"
    batch_events: int = 100
    batch_interval_s: float | None = 1.0
    max_envelope_bytes: int = 4 * 1024 * 1024
    concurrency: int = 1
    timeout_s: float = 30.0
    is_bare_key: bool = False
    want_receipts: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.batch_events < 1 or self.concurrency < 1 or self.max_envelope_bytes < 1:
            raise ValueError("batch_events, concurrency and max_envelope_bytes must be positive")
        if self.batch_interval_s is not None and self.batch_interval_s < 0:
            raise ValueError("batch_interval_s must be 0 or more (or None)")


@dataclass(slots=True)
class SensorStats:
    """What a sensor has done since it started; verdicts only when it asks for receipts."""

    envelopes: int = 0
    delivered: int = 0
    retries: int = 0
    rejected: int = 0
    gave_up: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    dropped: int = 0
    last_error: str | None = None

    def count_receipt(self, body: bytes) -> None:
        """Add the verdict counts of one receipt."""
        receipt = orjson.loads(body)
        self.stored += receipt["stored"]
        self.duplicates += receipt["duplicates"]
        self.quarantined += receipt["quarantined"]
        self.dropped += receipt["dropped"]


@dataclass(frozen=True, slots=True)
class Batch:
    """Events taken for one envelope, and the envelope's bytes."""

    events: list[Queued]
    body: bytes


def request_headers(key: str, options: SensorOptions) -> dict[str, str]:
    """The headers of every post: the key as ``Bearer <key>``, or bare as Moodle sends it."""
    return {
        "Authorization": key if options.is_bare_key else f"Bearer {key}",
        "Content-Type": "application/json",
        "User-Agent": "caliper-store-sensor",
    }


class Batches:
    """The queue seen by senders: what is due, what is in flight, what was settled."""

    def __init__(self, queue: EventQueue, options: SensorOptions) -> None:
        self.queue = queue
        self.options = options
        self.stats = SensorStats()
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._last_taken_s = time.monotonic()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return len(self.queue) == 0 and not self._in_flight

    def waiting(self) -> int:
        """Queued events no sender is sending."""
        return len(self.queue) - len(self._in_flight)

    def seconds_until_due(self, *, is_flushing: bool) -> float | None:
        """0 when a batch should go now; else how long until one may (None: until woken)."""
        waiting = self.waiting()
        if waiting <= 0:
            return None
        interval = self.options.batch_interval_s
        if is_flushing or waiting >= self.options.batch_events or interval == 0:
            return 0.0
        if interval is None:
            return None
        return max(0.0, self._last_taken_s + interval - time.monotonic())

    def take(self) -> Batch | None:
        """The next envelope's events, marked in flight; None when none wait."""
        with self._lock:
            events = self.queue.take(
                self.options.batch_events, self.options.max_envelope_bytes, self._in_flight
            )
            if not events:
                return None
            self._in_flight.update(queued.seq for queued in events)
            self._last_taken_s = time.monotonic()
        body = envelope_body(
            [queued.body for queued in events],
            sensor_id=self.options.sensor_id,
            data_version=self.options.data_version,
            send_time=datetime.now(UTC),
        )
        return Batch(events, body)

    def settle(
        self, batch: Batch, decision: Decision, attempts: int, event_count: int | None = None
    ) -> None:
        """Record how a batch ended: delivered, refused for good, or given up (still queued).

        ``event_count`` counts an envelope sent outside the queue (its events are not queued).
        """
        seqs = [queued.seq for queued in batch.events]
        count = len(seqs) if event_count is None else event_count
        stats = self.stats
        with self._lock:
            stats.retries += max(0, attempts - 1)
            if isinstance(decision, Accepted):
                self.queue.remove(seqs)
                stats.envelopes += 1
                stats.delivered += count
                if self.options.want_receipts and decision.body:
                    stats.count_receipt(decision.body)
            elif isinstance(decision, Rejected):
                self.queue.reject(batch.events, decision.status, decision.detail)
                stats.rejected += count
                stats.last_error = f"HTTP {decision.status}: {decision.detail}"
            elif isinstance(decision, GaveUp):
                stats.gave_up += 1
                stats.last_error = f"gave up after {decision.attempts} tries: {decision.cause}"
            self._in_flight.difference_update(seqs)


class SensorCore:
    """What ``Sensor`` and ``AsyncSensor`` hold alike; only waiting and posting differ.

    The options, the batches, the request's fixed parts, and the reading of an answer.
    """

    def __init__(
        self, url: str, key: str, options: SensorOptions, queue: EventQueue | Path | None
    ) -> None:
        self.options = options
        self._batches = Batches(open_queue(queue), options)
        self._url = url
        self._headers = request_headers(key, options)
        self._limits = httpx.Limits(max_connections=options.concurrency + 1)
        self._params = {"receipt": "1"} if options.want_receipts else {}
        self._rng = random.Random()  # noqa: S311  # backoff jitter, not a secret
        self._flushes = 0
        self._is_closing = False

    @property
    def stats(self) -> SensorStats:
        """Counters since this sensor started."""
        return self._batches.stats

    @property
    def queue(self) -> EventQueue:
        """The events waiting, and (``rejected``) those the store refused."""
        return self._batches.queue

    def _undelivered(self) -> DeliveryFailed:
        return DeliveryFailed(
            f"events left undelivered: {self.stats.last_error}",
            undelivered=len(self._batches.queue),
        )

    @staticmethod
    def _answer(attempts: Attempts, response: httpx.Response) -> Decision:
        """The decision after the store's answer."""
        return attempts.after_response(
            response.status_code, response.headers.get("retry-after"), response.content
        )
