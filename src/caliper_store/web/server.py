"""The HTTP protocol: uvicorn's httptools protocol, with bounded headers and read deadlines."""

from __future__ import annotations

import asyncio
import functools
import logging
from asyncio.events import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from caliper_store.config import Settings, same_named
from caliper_store.observability import OVERLOADED
from caliper_store.web.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

logger = logging.getLogger(__name__)

# What a header line adds to its name and value on the wire: ": " and CRLF.
HEADER_LINE_OVERHEAD_BYTES = 4


@dataclass(frozen=True)
class ServerLimits:
    """The limits the protocol enforces itself; frozen and small so it pickles to workers."""

    max_header_bytes: int
    max_header_count: int
    header_timeout_s: int
    request_read_timeout_s: int
    max_connections: int
    retry_after_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        """The protocol's share of the settings."""
        return same_named(cls, settings)


class Refusal(Exception):
    """A request the protocol answers itself: raised in a parser callback to stop parsing.

    httptools turns it into an ``HttpParserCallbackError`` whose ``__context__`` it is.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        field: str | None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.field = field
        self.retry_after_s = retry_after_s

    def encode(self, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        """The whole response, as uvicorn's ``send_400_response`` writes its own: raw bytes."""
        problem: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            problem["field"] = self.field
        body = orjson.dumps(problem)
        content = [STATUS_LINE[self.status]]
        for name, value in default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        if self.retry_after_s is not None:
            content.append(b"retry-after: %d\r\n" % self.retry_after_s)
        content.extend(
            [
                b"content-type: " + PROBLEM_MEDIA_TYPE.encode("ascii") + b"\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        return b"".join(content)


def _too_large(limits: ServerLimits) -> Refusal:
    return Refusal(
        431,
        "headers-too-large",
        "The request headers are too large",
        f"the request line and headers exceed max_header_bytes={limits.max_header_bytes}",
        "headers",
    )


def _too_many(limits: ServerLimits) -> Refusal:
    return Refusal(
        431,
        "headers-too-large",
        "The request headers are too large",
        f"the request has more than max_header_count={limits.max_header_count} header lines",
        "headers",
    )


def _headers_late(limits: ServerLimits) -> Refusal:
    return Refusal(
        408,
        "request-timeout",
        "The request was not received in time",
        f"the request line and headers took more than header_timeout_s={limits.header_timeout_s}"
        " seconds",
        "headers",
    )


def _too_busy(limits: ServerLimits) -> Refusal:
    return Refusal(
        503,
        "overloaded",
        "The store is busy; retry later",
        f"the server holds max_connections={limits.max_connections} connections or requests",
        None,
        retry_after_s=limits.retry_after_s,
    )


def _body_late(limits: ServerLimits) -> Refusal:
    return Refusal(
        408,
        "request-timeout",
        "The request was not received in time",
        f"the body took more than request_read_timeout_s={limits.request_read_timeout_s} seconds",
        "body",
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size and count cap on headers and read deadlines.

    uvicorn reads headers of any size and count, and arms its keep-alive timer only after a
    response, so a connection that never sends, or sends headers or a body slowly, is kept
    forever. One deadline per connection covers both phases: the headers (from connection open,
    or from the end of the previous exchange) and then the body (from the end of the headers).
    Past the first request's, its timer is armed only when a read ends mid-request, so a request
    that arrives in one read, as one-event ingest requests do, costs no timer at all.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ServerLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # Read for every header line: one attribute lookup, not two.
        self.max_header_bytes = limits.max_header_bytes
        self.max_header_count = limits.max_header_count
        # An idle keep-alive connection is waiting for headers too: it may not outlive their
        # deadline. uvicorn's own timer closes it silently, which suits an idle connection.
        self.timeout_keep_alive = min(self.timeout_keep_alive, limits.header_timeout_s)
        # True from connection open and each message's end until the next headers are complete.
        self.in_headers = True
        # The URL and header lines the parser has handed over for the current request.
        self.header_bytes = 0
        # Bytes read while a request's headers were incomplete: httptools joins a header line's
        # pieces before it calls on_header, so a header that never ends is only seen here.
        self.raw_header_bytes = 0
        self.deadline: float | None = None
        self.deadline_timer: TimerHandle | None = None

    # asyncio.Protocol

    # asyncio's Protocol takes a BaseTransport; uvicorn's parent narrows it the same way.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header clock: a connection that never sends must not stay open."""
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.limits.header_timeout_s
        self.deadline_timer = self.loop.call_at(self.deadline, self.deadline_passed)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        super().connection_lost(exc)
        self.stop_clock()

    def data_received(self, data: bytes) -> None:
        """Feed the parser as uvicorn does, answering our refusals, then arm a pending deadline.

        uvicorn's own version answers every parser error, ours included, with a plain 400.
        """
        self._unset_keepalive_if_required()
        if self.in_headers:
            self.raw_header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, Refusal):
                self.refuse(error.__context__)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                return
            # Served as a plain request, so its limits apply as to any other.
            self._unsupported_upgrade_warning()
        if self.in_headers and self.raw_header_bytes > self.max_header_bytes:
            self.refuse(_too_large(self.limits))
        elif self.deadline is not None and self.deadline_timer is None:
            # This read ended mid-request: from now on the deadline needs a timer.
            self.deadline_timer = self.loop.call_at(self.deadline, self.deadline_passed)

    # httptools parser callbacks

    def on_url(self, url: bytes) -> None:
        """Count the URL (it may come in pieces) toward max_header_bytes."""
        self.header_bytes += len(url)
        if self.header_bytes > self.max_header_bytes:
            raise _too_large(self.limits)
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count the line, and stop before keeping one beyond a limit.

        The body is uvicorn's, repeated rather than called through super(): it runs for every
        header line of every request.
        """
        headers = self.headers
        self.header_bytes += len(name) + len(value) + HEADER_LINE_OVERHEAD_BYTES
        if self.header_bytes > self.max_header_bytes or len(headers) >= self.max_header_count:
            raise self.refusal_for_headers()
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def refusal_for_headers(self) -> Refusal:
        """Which header limit the request went over (the count is checked first)."""
        if len(self.headers) >= self.max_header_count:
            return _too_many(self.limits)
        return _too_large(self.limits)

    def on_headers_complete(self) -> None:
        """Refuse a request beyond max_connections; stop the header clock, start the body's.

        uvicorn's own limit_concurrency answers a plain-text 503 without Retry-After (which
        Canvas and Learn need to back off), logs a warning for each, and counts the asking
        connection against the limit.
        """
        limit = self.limits.max_connections
        if len(self.connections) > limit or len(self.tasks) >= limit:
            OVERLOADED.labels("connections").inc()
            raise _too_busy(self.limits)
        self.in_headers = False
        if self.deadline_timer is not None:  # only when the headers took more than one read
            self.stop_clock()
        self.deadline = self.loop.time() + self.limits.request_read_timeout_s
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """Stop the body clock; the next request's headers are counted afresh."""
        self.deadline = None
        if self.deadline_timer is not None:  # only when the body took more than one read
            self.stop_clock()
        self.in_headers = True
        self.header_bytes = self.raw_header_bytes = 0
        super().on_message_complete()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete:  # answered before the body ended
            self.start_header_clock()

    def on_response_complete(self) -> None:
        """With the exchange over, the next request's headers are due within the timeout."""
        super().on_response_complete()
        self.start_header_clock()

    # Deadlines

    def start_header_clock(self) -> None:
        """Start the header clock once a request is read and answered (in either order).

        It is not armed here: until a byte comes, uvicorn's keep-alive timer (capped at the
        header timeout) closes the idle connection; a read that leaves headers incomplete arms it.
        """
        cycle = self.cycle
        if (
            self.in_headers
            and self.deadline is None
            and (cycle is None or cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self.deadline = self.loop.time() + self.limits.header_timeout_s

    def stop_clock(self) -> None:
        """Forget the current deadline and its timer, if any."""
        self.deadline = None
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
            self.deadline_timer = None

    def deadline_passed(self) -> None:
        """The headers or the body came too slowly: answer 408 if we still can, and close."""
        self.deadline_timer = None
        if self.transport.is_closing():
            return
        if self.in_headers:
            self.refuse(_headers_late(self.limits))
        elif self.flow.read_paused:
            # We stopped reading (the app is behind, or a pipelined request waits its turn):
            # the delay is ours, not the client's.
            self.deadline_timer = self.loop.call_later(
                self.limits.request_read_timeout_s, self.deadline_passed
            )
        else:
            self.refuse(_body_late(self.limits))

    def refuse(self, refusal: Refusal) -> None:
        """Answer with a problem, unless another response is on the wire, then close."""
        self.stop_clock()
        logger.debug("closing a connection: %d %s", refusal.status, refusal.detail)
        cycle = self.cycle
        if self.in_headers:
            # The previous request, if any, must be answered in full before this one.
            can_answer = cycle is None or cycle.response_complete
        else:
            can_answer = not cycle.response_started and not self.pipeline
            # The app is waiting for the rest of the body: tell it the client is gone, and
            # keep its late answer, if any, off the wire.
            cycle.disconnected = True
            cycle.message_event.set()
        if can_answer:
            self.transport.write(refusal.encode(self.server_state.default_headers))
        self.transport.close()


def bounded_http_protocol(settings: Settings) -> Callable[..., asyncio.Protocol]:
    """The ``http=`` argument for uvicorn: a partial, since uvicorn pickles it for workers."""
    return functools.partial(BoundedHttpToolsProtocol, limits=ServerLimits.from_settings(settings))
