"""HTTP/1.1 load generator for `POST /caliper`: keep-alive connections driven by callbacks.

Each connection is an asyncio Protocol on uvloop with an httptools response parser; a response
callback sends the next request straight away, so a request costs one `transport.write`, one
parse and a few attribute updates: no coroutine, future or task per request. That is what lets one
core drive far more small requests per second than the server under test can take (see README).

Standalone: `python bench/load.py --url http://127.0.0.1:8000/caliper --scenario canvas`.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import gc
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools
import uvloop

if __package__ in (None, ""):
    # Run as `python bench/load.py`: import the helpers as the `bench` package mypy sees.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import workload

RequestFactory = Callable[[], tuple[bytes, int]]
RETRY_STATUSES = (429, 503)
# 503/429 promise nothing was stored (ARCHITECTURE.md section 2); 4xx means rejected. Any other
# failure (5xx, connection lost, timeout) may or may not have been committed.
_NS_PER_S = 1_000_000_000
_MAX_CONNECT_FAILURES = 100  # 10 s of refused connections: the server is gone


class LoadObserver(Protocol):
    """Called from the event loop: when the measured window opens and closes, and on each tick."""

    def on_window_start(self) -> None: ...

    def on_window_end(self) -> None: ...

    def on_tick(self) -> None: ...


class NullObserver:
    """An observer that does nothing."""

    def on_window_start(self) -> None:
        return None

    def on_window_end(self) -> None:
        return None

    def on_tick(self) -> None:
        return None


@dataclass(frozen=True)
class LoadConfig:
    """Where to send, how hard and for how long."""

    host: str
    port: int
    path: str = "/caliper"
    connections: int = 64
    warmup_s: float = 2.0
    duration_s: float = 10.0
    request_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    tick_s: float = 0.1


@dataclass
class LoadResult:
    """What one load run saw. Window figures exclude the warm-up; totals cover the whole run."""

    connections: int
    window_s: float
    ok_requests: int = 0
    ok_events: int = 0
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))
    window_statuses: Counter[int] = field(default_factory=Counter)
    total_statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acked_events_total: int = 0
    sent_requests_total: int = 0
    ambiguous_events: int = 0
    client_cpu_s: float = 0.0
    _sorted_ns: list[int] | None = field(default=None, repr=False)

    @property
    def events_per_s(self) -> float:
        return self.ok_events / self.window_s if self.window_s else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.ok_requests / self.window_s if self.window_s else 0.0

    @property
    def client_cores(self) -> float:
        """CPU the load generator itself used during the window, in cores."""
        return self.client_cpu_s / self.window_s if self.window_s else 0.0

    def latency_ms(self, quantile: float) -> float:
        """Latency of acknowledged requests at `quantile` (0..1, 1 is the max), in ms."""
        if not self.latencies_ns:
            return float("nan")
        if self._sorted_ns is None or len(self._sorted_ns) != len(self.latencies_ns):
            self._sorted_ns = sorted(self.latencies_ns)
        ordered = self._sorted_ns
        index = min(len(ordered) - 1, max(0, round(quantile * len(ordered)) - 1))
        return ordered[index] / 1e6

    def non_200(self) -> str:
        parts = [f"{status}x{count}" for status, count in sorted(self.window_statuses.items())]
        extra = self.total_statuses - self.window_statuses
        if extra:
            parts.append(
                "outside window: "
                + ", ".join(f"{status}x{count}" for status, count in sorted(extra.items()))
            )
        parts += [f"{name}x{count}" for name, count in sorted(self.errors.items())]
        return ", ".join(parts) if parts else "none"


def make_request_factory(
    source: workload.EnvelopeSource, host: str, port: int, path: str, api_key: str | None
) -> RequestFactory:
    """Return a callable building one complete HTTP request (bytes, events in it) per call."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "User-Agent: caliper-store-bench",
    ]
    if api_key:
        lines.append(f"Authorization: Bearer {api_key}")
    head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode()
    next_body = source.next_body

    def build() -> tuple[bytes, int]:
        pieces, length, events = next_body()
        return b"".join((head, b"%d\r\n\r\n" % length, *pieces)), events

    return build


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser calls back into it, it calls back into the run."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.request: bytes | None = None
        self.events = 0
        self.sent_ns = 0
        self.is_in_flight = False
        self.is_retired = False
        self.retry_after: bytes | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.run.fail(self, "bad-response")

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = value

    def on_message_complete(self) -> None:
        self.run.complete(self, self.parser.get_status_code(), self.parser.should_keep_alive())

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)


class _Run:
    """The state of one load run; every method runs on the event loop thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: LoadConfig,
        factory: RequestFactory,
        observer: LoadObserver,
    ) -> None:
        self.loop = loop
        self.config = config
        self.factory = factory
        self.observer = observer
        self.result = LoadResult(config.connections, config.duration_s)
        self.live: set[_Connection] = set()
        self.done: asyncio.Future[None] = loop.create_future()
        self.window_start_ns = 0
        self.end_ns = 0
        self.is_stopping = False
        # The window stays open past duration_s until a request finishes in it: a window with
        # none (a busy machine, a short smoke run) would have no rate and no latency to report.
        self.is_window_held = False
        self._cpu_at_window_start = 0.0
        self._latencies = self.result.latencies_ns

    async def run(self) -> LoadResult:
        config = self.config
        conns = await asyncio.gather(*(self.connect() for _ in range(config.connections)))
        now = time.perf_counter_ns()
        self.window_start_ns = now + round(config.warmup_s * _NS_PER_S)
        self.end_ns = self.window_start_ns + round(config.duration_s * _NS_PER_S)
        self.loop.call_later(config.warmup_s, self._open_window)
        self.loop.call_later(config.warmup_s + config.duration_s, self._close_window)
        self.loop.call_later(config.tick_s, self._tick)
        for conn in conns:
            self.send(conn)
        await self.done
        return self.result

    async def connect(self) -> _Connection:
        failures = 0
        while True:
            try:
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), self.config.host, self.config.port
                )
            except OSError:
                self.result.errors["connect-failed"] += 1
                failures += 1
                if self.is_stopping or failures >= _MAX_CONNECT_FAILURES:
                    raise
                # Not a timing sleep: back off before reconnecting to a server that refuses.
                await asyncio.sleep(0.1)
                continue
            self.live.add(conn)
            return conn

    def send(self, conn: _Connection) -> None:
        if self.is_stopping or conn.is_retired:
            self.retire(conn)
            return
        if conn.request is None:
            conn.request, conn.events = self.factory()
        conn.is_in_flight = True
        conn.sent_ns = time.perf_counter_ns()
        self.result.sent_requests_total += 1
        assert conn.transport is not None
        conn.transport.write(conn.request)

    def complete(self, conn: _Connection, status: int, is_keep_alive: bool) -> None:
        now = time.perf_counter_ns()
        conn.is_in_flight = False
        result = self.result
        is_in_window = self.window_start_ns <= now < self.end_ns
        if status == 200:
            result.acked_events_total += conn.events
            if is_in_window:
                result.ok_requests += 1
                result.ok_events += conn.events
                self._latencies.append(now - conn.sent_ns)
                if self.is_window_held:
                    self._end_window_at(now)
            conn.request = None
        else:
            result.total_statuses[status] += 1
            if is_in_window:
                result.window_statuses[status] += 1
            if status in RETRY_STATUSES:
                # Overloaded: nothing was stored. Wait as told, then resend the same envelope.
                delay_s = min(_retry_after_s(conn.retry_after), max(0.0, (self.end_ns - now) / 1e9))
                conn.retry_after = None
                if is_keep_alive:
                    self.loop.call_later(delay_s, self.send, conn)
                return
            if status >= 500:
                result.ambiguous_events += conn.events
            conn.request = None
        if is_keep_alive:
            self.send(conn)
        # Otherwise the server closes the connection and `lost` opens a new one.

    def fail(self, conn: _Connection, reason: str) -> None:
        """Count `reason`, drop the connection (`lost` then replaces it)."""
        self.result.errors[reason] += 1
        if conn.is_in_flight:
            conn.is_in_flight = False
            self.result.ambiguous_events += conn.events
        if conn.transport is not None:
            conn.transport.abort()

    def lost(self, conn: _Connection) -> None:
        if conn.is_in_flight:
            conn.is_in_flight = False
            self.result.errors["connection-lost"] += 1
            self.result.ambiguous_events += conn.events
        was_live = conn in self.live
        self.live.discard(conn)
        if conn.is_retired or not was_live:
            self._check_done()
            return
        conn.is_retired = True
        if self.is_stopping:
            self._check_done()
        else:
            self.loop.create_task(self._replace())

    async def _replace(self) -> None:
        try:
            conn = await self.connect()
        except OSError:
            self._check_done()
            return
        self.send(conn)

    def retire(self, conn: _Connection) -> None:
        conn.is_retired = True
        self.live.discard(conn)
        if conn.transport is not None:
            conn.transport.close()
        self._check_done()

    def _check_done(self) -> None:
        if self.is_stopping and not self.live and not self.done.done():
            self.done.set_result(None)

    def _open_window(self) -> None:
        self._cpu_at_window_start = time.process_time()
        self.observer.on_window_start()

    def _close_window(self) -> None:
        """End the window at duration_s, or hold it open until a request finishes in it."""
        if self.result.ok_requests:
            self._stop()
            return
        self.is_window_held = True
        self.end_ns = 2**63 - 1
        # Backstop: a server that answers nothing but errors still ends the run.
        self.loop.call_later(self.config.request_timeout_s, self._end_window_at, None)

    def _end_window_at(self, now: int | None) -> None:
        """End a held window when its first request finished (``now``), or at the backstop."""
        if not self.is_window_held:
            return
        self.is_window_held = False
        self.end_ns = now + 1 if now is not None else time.perf_counter_ns()
        self.result.window_s = (self.end_ns - self.window_start_ns) / _NS_PER_S
        self.loop.call_soon(self._stop)

    def _stop(self) -> None:
        self.result.client_cpu_s = time.process_time() - self._cpu_at_window_start
        self.observer.on_window_end()
        self.is_stopping = True
        for conn in list(self.live):
            if not conn.is_in_flight:
                self.retire(conn)
        self.loop.call_later(self.config.drain_timeout_s, self._abandon)
        self._check_done()

    def _abandon(self) -> None:
        for conn in list(self.live):
            if conn.is_in_flight:
                conn.is_in_flight = False
                self.result.errors["drain-timeout"] += 1
                self.result.ambiguous_events += conn.events
            self.retire(conn)

    def _tick(self) -> None:
        self.observer.on_tick()
        limit_ns = round(self.config.request_timeout_s * _NS_PER_S)
        now = time.perf_counter_ns()
        for conn in list(self.live):
            if conn.is_in_flight and now - conn.sent_ns > limit_ns:
                self.fail(conn, "timeout")
        if not self.done.done():
            self.loop.call_later(self.config.tick_s, self._tick)


def _retry_after_s(value: bytes | None) -> float:
    if not value:
        return 1.0
    text = value.decode("latin-1").strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, moment.timestamp() - time.time())


def run_load(
    config: LoadConfig, factory: RequestFactory, observer: LoadObserver | None = None
) -> LoadResult:
    """Drive `config.connections` keep-alive connections for warm-up plus duration; block."""
    # Templates and ids made so far stay put: the collector then only scans per-request garbage.
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        loop = runner.get_loop()
        return runner.run(_Run(loop, config, factory, observer or NullObserver()).run())


def main() -> None:
    parser = argparse.ArgumentParser(description="Load one Caliper endpoint and print figures.")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/caliper")
    parser.add_argument("--scenario", choices=workload.SCENARIOS, default="canvas")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--duration-s", type=float, default=10.0)
    args = parser.parse_args()
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    source = workload.EnvelopeSource(workload.build_scenario(args.scenario), workload.IdSource())
    factory = make_request_factory(source, host, port, url.path or "/", args.api_key)
    config = LoadConfig(
        host, port, url.path or "/", args.connections, args.warmup_s, args.duration_s
    )
    result = run_load(config, factory)
    print(
        f"{args.scenario}: {result.requests_per_s:,.0f} req/s, {result.events_per_s:,.0f} events/s"
        f" | latency p50 {result.latency_ms(0.5):.2f} ms, p99 {result.latency_ms(0.99):.2f} ms,"
        f" max {result.latency_ms(1.0):.2f} ms | non-200: {result.non_200()}"
        f" | generator CPU {result.client_cores:.2f} cores"
        f" | acked events (whole run) {result.acked_events_total:,}"
    )


if __name__ == "__main__":
    main()
