"""The relay: one thread per destination, each moving its cursor as the destination confirms.

Only the process that holds the lease in the database forwards (``forward_leases``), so several
server workers or hosts over one database forward each event once; if that process dies, the
lease runs out after ``forward_lease_s`` and another takes over where the cursors are. A cursor
moves only after the destination answered 2xx for everything before it: a crash at any moment
re-sends at most one batch, which the destination stores once, by id.

Each destination is its own thread with its own connection, so a dead one waits (backing off,
``Retry-After`` honoured, for ever: nothing is dropped) without slowing ingest, which writes
nothing for forwarding, or the other destinations. A batch the destination refuses for good
(a 4xx) is split in halves until the event it refuses is alone; that one goes to the
destination's dead letters with the answer, and the rest flows on in order.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from caliper_store.config import redact_url
from caliper_store.errors import DestinationUnavailable, NotFound
from caliper_store.forward.clickhouse import ClickHouseSink
from caliper_store.forward.sinks import HttpSink, Sink, check_url
from caliper_store.observability import FORWARDED_EVENTS
from caliper_store.sensor import Accepted, Decision, Rejected, RetryPolicy
from caliper_store.sensor.retry import Attempts, Wait
from caliper_store.storage import Cursor, Destination, EventRecord, ForwardBook, utc_text

logger = logging.getLogger(__name__)
SinkFactory = Callable[[Destination], Sink]
# Refusals that are about the destination, not the events: a wrong key, URL or method. Every
# event would be refused alike, so they are waited out (and shown as the last error) until
# someone fixes the destination, never parked in dead letters.
DESTINATION_REFUSALS = frozenset({401, 403, 404, 405, 407})
# Longest a destination just added waits for its first delivery (the relay looks this often).
NEW_DESTINATION_S = 2.0


@dataclass(frozen=True, slots=True)
class RelayOptions:
    """How the relay polls, holds its lease and retries."""

    poll_interval_s: float = 0.5
    lease_s: float = 30.0
    timeout_s: float = 30.0
    # Batches (envelopes) in flight at once to one destination; above 1, they may arrive out
    # of order (each event still once; the cursor moves past a batch only when it is in).
    concurrency: int = 1
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=0, base_delay_s=0.5, max_delay_s=60.0)
    )


def now_text() -> str:
    """Now, in the store's UTC text form."""
    return utc_text(datetime.now(UTC))


def open_sink(destination: Destination, *, timeout_s: float) -> Sink:
    """The sink for a destination's URL."""
    scheme = check_url(destination.url)
    if scheme in ("http", "https"):
        return HttpSink(destination.url, destination.api_key, timeout_s=timeout_s)
    return ClickHouseSink.connect(destination.url)


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch on its way: whether it arrived, and where the cursor may go once it did."""

    parked: Future[int | None]
    cursor: Cursor
    received_at: str
    wanted: int
    read: int

    def parked_if_arrived(self) -> int | None:
        """Dead letters of the batch, once the destination has taken all of it; else None.

        None while the batch is on its way, or if it failed or was told to stop.
        """
        future = self.parked
        if not future.done() or future.exception() is not None:
            return None
        return future.result()


class Delivery:
    """Delivers batches to one destination: retries, splits, dead letters, cursor moves."""

    def __init__(
        self,
        book: ForwardBook,
        destination: Destination,
        sink: Sink,
        options: RelayOptions,
        stop: threading.Event,
    ) -> None:
        self._book = book
        self._destination = destination
        self._sink = sink
        self._options = options
        self._stop = stop
        self._rng = random.Random()  # noqa: S311  # backoff jitter, not a secret
        self._pool = ThreadPoolExecutor(options.concurrency, f"forward-{destination.id}")
        self._in_flight: deque[_InFlight] = deque()
        self._read_cursor = destination.cursor

    def step(self, destination: Destination | None = None) -> int | None:
        """Deliver the oldest batch in flight, after filling the window; events it moved past.

        Up to ``concurrency`` batches (one envelope each) are in flight at once; the cursor
        moves only past the oldest, once the destination took it, so it never passes a batch
        still on its way. The batches behind it that have already arrived go with it, in one
        write of the cursor. 0: nothing new to deliver; None: told to stop. ``destination``
        is the row just read, if the caller has it.
        """
        destination = self._destination = destination or self._book.get(self._destination.name)
        if not self._in_flight:
            self._read_cursor = destination.cursor
        while len(self._in_flight) < self._options.concurrency:
            found = self._book.events_after(self._read_cursor, destination.batch_events)
            if not found:
                break
            wanted = [event.record for event in found if destination.wants(event.record)]
            last = found[-1]
            self._in_flight.append(
                _InFlight(
                    self._pool.submit(self._deliver, wanted),
                    last.cursor,
                    last.record.received_at,
                    len(wanted),
                    len(found),
                )
            )
            self._read_cursor = last.cursor
        if not self._in_flight:
            return 0
        oldest = self._in_flight.popleft()
        try:
            parked = oldest.parked.result()
        except BaseException:
            self._abandon()  # the cursor stays; what was in flight is sent again later
            raise
        if parked is None:
            self._abandon()
            return None
        arrived = [(oldest, parked)]
        while self._in_flight and (behind := self._in_flight[0].parked_if_arrived()) is not None:
            arrived.append((self._in_flight.popleft(), behind))
        newest = arrived[-1][0]
        delivered = sum(batch.wanted - batch_parked for batch, batch_parked in arrived)
        dead = sum(batch_parked for _, batch_parked in arrived)
        self._book.advance(
            destination.id,
            newest.cursor,
            received_at=newest.received_at,
            delivered=delivered,
            now=now_text(),
        )
        FORWARDED_EVENTS.labels(destination.name, "delivered").inc(delivered)
        if dead:
            FORWARDED_EVENTS.labels(destination.name, "dead_letter").inc(dead)
        return sum(batch.read for batch, _ in arrived)

    def close(self) -> None:
        """Wait for what is in flight (it stops at its next wait); the sink stays open."""
        self._abandon()
        self._pool.shutdown(wait=True)

    def _abandon(self) -> None:
        for batch in self._in_flight:
            with contextlib.suppress(Exception):  # its error was recorded where it happened
                batch.parked.result()
        self._in_flight.clear()

    def _deliver(self, records: Sequence[EventRecord]) -> int | None:
        """Deliver or park every event; how many were parked (None: told to stop first)."""
        if not records:
            return 0
        attempts = Attempts(self._options.retry, self._rng)
        while True:
            decision = self._try(attempts, records)
            if isinstance(decision, Accepted):
                return 0
            if isinstance(decision, Rejected) and decision.status in DESTINATION_REFUSALS:
                delay = self._options.retry.delay_s(attempts.count, None, self._rng)
                decision = Wait(delay, f"HTTP {decision.status}: {decision.detail}")
            if isinstance(decision, Rejected):
                if len(records) == 1:
                    self._park(records[0], decision)
                    return 1
                middle = len(records) // 2
                first = self._deliver(records[:middle])
                if first is None:
                    return None
                second = self._deliver(records[middle:])
                return None if second is None else first + second
            assert isinstance(decision, Wait), "with max_attempts 0 the relay never gives up"
            self._book.record_error(self._destination.id, decision.cause, now_text())
            logger.warning(
                "forwarding to %s: %s; again in %.1fs",
                self._destination.name,
                decision.cause,
                decision.seconds,
            )
            if self._stop.wait(decision.seconds):
                return None

    def _try(self, attempts: Attempts, records: Sequence[EventRecord]) -> Decision:
        try:
            answer = self._sink.deliver(records)
        except (httpx.TransportError, DestinationUnavailable, OSError) as error:
            return attempts.after_error(error)
        return attempts.after_response(answer.status, answer.retry_after, answer.body)

    def _park(self, record: EventRecord, refusal: Rejected) -> None:
        self._book.add_dead_letter(
            self._destination.id, record, refusal.status, refusal.detail, now_text()
        )
        logger.warning(
            "forwarding to %s: event at seq %d refused with %d, kept in dead letters",
            self._destination.name,
            record.seq,
            refusal.status,
        )


class Relay:
    """Forwards to every destination while this process holds the lease."""

    def __init__(
        self,
        book: ForwardBook,
        options: RelayOptions,
        *,
        make_sink: SinkFactory | None = None,
    ) -> None:
        self._book = book
        self._options = options
        self._make_sink = make_sink or (lambda d: open_sink(d, timeout_s=options.timeout_s))
        self.holder = f"{uuid.uuid4()}"
        self._workers: dict[str, tuple[threading.Thread, threading.Event]] = {}

    def run(self, stop: threading.Event) -> None:
        """Forward until ``stop`` is set; then stop every destination and give the lease up."""
        try:
            while not stop.is_set():
                try:
                    # With no destination there is nothing to hold the lease for (no write).
                    if self._book.all() and self._hold_lease():
                        self._start_workers(stop)
                    else:
                        self._stop_workers()
                except SQLAlchemyError:
                    logger.exception("forwarding: the database failed; trying again")
                stop.wait(min(self._options.lease_s / 3, NEW_DESTINATION_S))
        finally:
            self._stop_workers()
            with contextlib.suppress(SQLAlchemyError):  # it expires by itself
                self._book.release_lease(self.holder)

    def _hold_lease(self) -> bool:
        expires = datetime.now(UTC) + timedelta(seconds=self._options.lease_s)
        return self._book.take_lease(self.holder, now=now_text(), expires_at=utc_text(expires))

    def _start_workers(self, stop: threading.Event) -> None:
        for destination in self._book.all():
            running = self._workers.get(destination.name)
            if destination.is_paused or (running is not None and running[0].is_alive()):
                continue
            own_stop = threading.Event()
            thread = threading.Thread(
                target=self._forward,
                args=(destination, own_stop, stop),
                name=f"forward-{destination.id}",
                daemon=True,
            )
            self._workers[destination.name] = (thread, own_stop)
            thread.start()

    def _stop_workers(self) -> None:
        for _, own_stop in self._workers.values():
            own_stop.set()
        for thread, _ in self._workers.values():
            thread.join()
        self._workers.clear()

    def _forward(
        self, destination: Destination, own_stop: threading.Event, stop: threading.Event
    ) -> None:
        sink = self._make_sink(destination)
        delivery = Delivery(self._book, destination, sink, self._options, own_stop)
        logger.info("forwarding to %s (%s)", destination.name, redact_url(destination.url))
        try:
            while not (own_stop.is_set() or stop.is_set()):
                try:
                    current = self._book.get(destination.name)
                    if current.is_paused:
                        return
                    delivered = delivery.step(current)
                except NotFound:
                    return  # removed
                except SQLAlchemyError:
                    # The store's own database is away: the cursor is where it was; try again.
                    logger.exception("forwarding to %s: the database failed", destination.name)
                    delivered = 0
                if delivered is None:
                    return
                if delivered == 0:
                    own_stop.wait(self._options.poll_interval_s)
        finally:
            delivery.close()
            sink.close()


@dataclass
class Forwarding:
    """A relay running in a thread of its own, stopped with ``stop``."""

    thread: threading.Thread
    stop_event: threading.Event

    @classmethod
    def start(cls, relay: Relay) -> Forwarding:
        """Start the relay in a daemon thread."""
        stop_event = threading.Event()
        thread = threading.Thread(target=relay.run, args=(stop_event,), name="forwarder")
        thread.daemon = True
        thread.start()
        return cls(thread, stop_event)

    def stop(self) -> None:
        """Stop every destination (at most one request's timeout) and give the lease up."""
        self.stop_event.set()
        self.thread.join()


def forward_once(
    book: ForwardBook, destination: Destination, sink: Sink, options: RelayOptions
) -> int:
    """Deliver everything there is now to one destination; how many events were read."""
    delivery = Delivery(book, destination, sink, options, threading.Event())
    total = 0
    try:
        while step := delivery.step():
            total += step
    finally:
        delivery.close()
    return total
