"""The HTTP server's own limits, over raw sockets: header size and count, read deadlines."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.server import ServerProcess

from caliper_store.config import Settings
from caliper_store.storage import open_store

HEADER_TIMEOUT_S = 1
READ_TIMEOUT_S = 1
MAX_HEADER_COUNT = 20
MAX_HEADER_BYTES = 4096
LIMIT_FLAGS = (
    "--header-timeout-s",
    str(HEADER_TIMEOUT_S),
    "--request-read-timeout-s",
    str(READ_TIMEOUT_S),
    "--max-header-count",
    str(MAX_HEADER_COUNT),
    "--max-header-bytes",
    str(MAX_HEADER_BYTES),
)
# Generous for a loaded two-core machine, yet far below "forever".
CLOSE_WITHIN_S = HEADER_TIMEOUT_S + 4
HUGE_HEADER_BYTES = 100 * 1024 * 1024


@pytest.fixture
def limited(tmp_path: Path, sqlite_url: str) -> Iterator[ServerProcess]:
    """A server with small limits, so each test takes a second or two."""
    running = start_server(tmp_path, sqlite_url, *LIMIT_FLAGS)
    yield running
    assert running.stop(), running.log()


@pytest.fixture
def key(limited: ServerProcess, sqlite_url: str) -> str:
    """An ingest key in the limited server's database (its schema exists once it is up)."""
    store = open_store(Settings(database_url=sqlite_url))
    try:
        secret, _ = store.keys.create(label="limits", now="2024-01-01T00:00:00.000000Z")
    finally:
        store.close()
    return secret


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=CLOSE_WITHIN_S)


def is_readable(sock: socket.socket, within_s: float) -> bool:
    readable, _, _ = select.select([sock], [], [], within_s)
    return bool(readable)


def read_until_closed(sock: socket.socket, within_s: float = CLOSE_WITHIN_S) -> bytes:
    """All the server sends before it closes the connection; fails if it stays open."""
    deadline = time.monotonic() + within_s
    received = bytearray()
    while (left := deadline - time.monotonic()) > 0:
        if not is_readable(sock, left):
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # it closed with our bytes unread
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(f"still open after {within_s}s, having sent {bytes(received)!r}")


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of one raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_problem(raw: bytes, status: int, slug: str, setting: str, field: str) -> None:
    code, headers, body = parse(raw)
    assert code == status, raw
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    problem = orjson.loads(body)
    assert problem["type"] == f"urn:caliper-store:problem:{slug}"
    assert problem["status"] == status
    assert problem["title"]
    assert setting in problem["detail"]
    assert problem["field"] == field


class Wire:
    """One keep-alive connection, reading responses one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def response(self, within_s: float = CLOSE_WITHIN_S) -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + within_s
        while True:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if found:
                status, headers, _ = parse(head + found)
                length = int(headers.get("content-length", "0"))
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return status, headers, rest[:length]
            left = deadline - time.monotonic()
            assert left > 0, f"no response in {within_s}s; {self.buffer!r}"
            if not is_readable(self.sock, left):
                continue
            chunk = self.sock.recv(65536)
            assert chunk, f"closed mid-exchange; {self.buffer!r}"
            self.buffer += chunk


def healthz_request(extra: bytes = b"") -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


def post_request(key: str, body: bytes) -> tuple[bytes, bytes]:
    """The head and the body of an ingest request."""
    head = (
        b"POST /caliper HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head, body


def test_too_many_headers_get_a_431_problem_and_the_connection_closes(
    limited: ServerProcess,
) -> None:
    lines = b"".join(b"X-Extra-%d: v\r\n" % number for number in range(MAX_HEADER_COUNT))
    with connect(limited) as sock:
        sock.sendall(healthz_request(lines))  # Host makes it one too many
        raw = read_until_closed(sock)
    assert_problem(raw, 431, "headers-too-large", "max_header_count", "headers")


def test_a_hundred_thousand_headers_are_not_all_read(limited: ServerProcess) -> None:
    lines = b"".join(b"X-%d: v\r\n" % number for number in range(100_000))
    with connect(limited) as sock:
        # Refused and closed before we finish sending: what we want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(healthz_request(lines))
        raw = read_until_closed(sock)
    if raw:  # the answer may be lost to the reset of a close with our bytes unread
        assert parse(raw)[0] == 431


def test_a_header_too_large_gets_a_431_problem(limited: ServerProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(healthz_request(b"X-Large: " + b"a" * MAX_HEADER_BYTES + b"\r\n"))
        raw = read_until_closed(sock)
    assert_problem(raw, 431, "headers-too-large", "max_header_bytes", "headers")


def test_a_url_too_long_gets_a_431_problem(limited: ServerProcess) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /healthz?" + b"a" * MAX_HEADER_BYTES + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = read_until_closed(sock)
    assert_problem(raw, 431, "headers-too-large", "max_header_bytes", "headers")


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    limited: ServerProcess,
) -> None:
    with connect(limited) as sock:
        started = time.monotonic()
        raw = read_until_closed(sock)
        waited = time.monotonic() - started
    assert waited >= HEADER_TIMEOUT_S * 0.9
    assert_problem(raw, 408, "request-timeout", "header_timeout_s", "headers")


def test_headers_sent_byte_by_byte_are_cut_off_at_the_header_timeout(
    limited: ServerProcess,
) -> None:
    # Each byte comes well within the timeout; the headers as a whole never do.
    trickle = healthz_request(b"X-Slow: " + b"a" * 100)
    with connect(limited) as sock:
        started = time.monotonic()
        for byte in trickle:
            sock.sendall(bytes([byte]))
            if is_readable(sock, 0.05) or time.monotonic() - started > CLOSE_WITHIN_S:
                break
        raw = read_until_closed(sock)
        waited = time.monotonic() - started
    assert waited < CLOSE_WITHIN_S
    assert_problem(raw, 408, "request-timeout", "header_timeout_s", "headers")


def test_a_body_trickled_too_slowly_gets_a_408_and_the_connection_closes(
    limited: ServerProcess, key: str
) -> None:
    head, body = post_request(key, orjson.dumps(envelope([canvas_event()])))
    with connect(limited) as sock:
        sock.sendall(head)
        started = time.monotonic()
        for byte in body:
            sock.sendall(bytes([byte]))
            if is_readable(sock, 0.05) or time.monotonic() - started > CLOSE_WITHIN_S:
                break
        raw = read_until_closed(sock)
    assert_problem(raw, 408, "request-timeout", "request_read_timeout_s", "body")
    assert limited.is_running()


def test_a_keep_alive_client_is_served_for_longer_than_the_timeouts_then_idles_out(
    limited: ServerProcess, key: str
) -> None:
    """Normal traffic, split across reads or pipelined, is untouched; the clock restarts."""
    with connect(limited) as sock:
        wire = Wire(sock)
        started = time.monotonic()
        while time.monotonic() - started < 2.5 * HEADER_TIMEOUT_S:
            sock.sendall(healthz_request())
            assert wire.response()[0] == 200
            # Headers and body each split across reads, with a pause between.
            head, body = post_request(key, orjson.dumps(envelope([canvas_event()])))
            sock.sendall(head[:20])
            assert not is_readable(sock, 0.05)
            sock.sendall(head[20:] + body[:10])
            assert not is_readable(sock, 0.05)
            sock.sendall(body[10:])
            assert wire.response()[0] == 200
            # Two requests in one write.
            sock.sendall(healthz_request() * 2)
            assert [wire.response()[0], wire.response()[0]] == [200, 200]
        # Idle, it is closed silently at the header timeout, before keep_alive_timeout_s (5).
        assert read_until_closed(sock, within_s=HEADER_TIMEOUT_S + 2) == b""
    with httpx.Client(base_url=limited.base_url, timeout=10) as http:
        for _ in range(50):
            assert http.get("/healthz").status_code == 200


def test_healthz_answers_quickly_while_a_huge_header_is_being_sent(
    limited: ServerProcess,
) -> None:
    sent = 0
    refused: list[BaseException] = []

    def send_huge_header() -> None:
        nonlocal sent
        chunk = b"a" * (1024 * 1024)
        with connect(limited) as sock:
            try:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Huge: ")
                while sent < HUGE_HEADER_BYTES:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError as error:  # reset or broken pipe: the server stopped reading
                refused.append(error)

    sender = threading.Thread(target=send_huge_header)
    sender.start()
    slowest = 0.0
    with httpx.Client(base_url=limited.base_url, timeout=30) as http:
        while sender.is_alive() or slowest == 0.0:
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    sender.join()
    assert refused, f"the server read all {sent} bytes of one header"
    assert sent < HUGE_HEADER_BYTES // 4
    assert slowest < 1.0


def test_a_request_beyond_max_connections_gets_503(tmp_path: Path, sqlite_url: str) -> None:
    running = start_server(tmp_path, sqlite_url, "--max-connections", "3")
    try:
        idle = [connect(running) for _ in range(3)]
        with connect(running) as sock:
            sock.sendall(healthz_request())
            answer = read_until_closed(sock)
            assert parse(answer)[0] == 503
            assert b"retry-after: 1\r\n" in answer.lower()
            assert b"application/problem+json" in answer
        # The idle ones still count; once they go, requests are served again.
        for sock in idle:
            sock.close()
        for _ in range(200):  # the server notices the closes as it reads them
            with connect(running) as sock:
                sock.sendall(healthz_request(b"Connection: close\r\n"))
                if parse(read_until_closed(sock))[0] == 200:
                    break
        else:
            pytest.fail("requests were refused after the idle connections went away")
    finally:
        assert running.stop(), running.log()


def test_every_worker_process_enforces_the_limits(tmp_path: Path, sqlite_url: str) -> None:
    """The protocol and its limits reach spawned workers (uvicorn pickles its config)."""
    running = start_server(tmp_path, sqlite_url, "--workers", "2", *LIMIT_FLAGS)
    try:
        lines = b"".join(b"X-Extra-%d: v\r\n" % number for number in range(MAX_HEADER_COUNT))
        for _ in range(6):
            with connect(running) as sock:
                sock.sendall(healthz_request(lines))
                assert parse(read_until_closed(sock))[0] == 431
    finally:
        assert running.stop(), running.log()
