"""The abuse suite as a benchmark: the server's peak memory and /healthz latency while it runs.

    python bench/abuse.py [--database sqlite:////tmp/abuse/caliper.db] [--rounds 3]

Starts `caliper-store serve`, measures /healthz latency on the idle server (the ceiling of this
run), then sends, `--rounds` times, every abusive request of tests/web/test_abuse.py at once from
as many threads (16 MiB of `{}`, a 512 KiB sensor, a 100 MiB header, many headers, a body nested
1,000 and 2,000 levels deep, two Authorization headers, bodies abandoned mid-way, idle
connections) while probing /healthz. Prints each status seen, the latency beside the idle
figure, and the server's resident memory (with its writer process): before, at its peak (VmHWM),
and after.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import serverproc

HOST = "127.0.0.1"
MIB = 1024 * 1024
V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"


def event(number: int) -> dict[str, object]:
    return {
        "@context": V1P1,
        "id": f"urn:uuid:00000000-0000-4000-8000-{number:012d}",
        "type": "NavigationEvent",
        "actor": {"id": "https://example.edu/users/1", "type": "Person"},
        "action": "NavigatedTo",
        "object": {"id": "https://example.edu/pages/1", "type": "WebPage"},
        "eventTime": "2024-01-01T00:00:00.000Z",
    }


def envelope(events: list[dict[str, object]], sensor: str = "https://example.edu/s") -> bytes:
    return orjson.dumps({"sensor": sensor, "dataVersion": V1P1, "data": events})


def request(key: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /caliper HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n%s\r\n%s"
        % (key.encode(), len(body), extra, body)
    )


def exchange(port: int, payload: bytes, *, read: bool = True, stream_mib: int = 0) -> str:
    """Send raw bytes (and `stream_mib` MiB of header filler), return the status line seen."""
    with socket.create_connection((HOST, port), timeout=60) as sock:
        try:
            if stream_mib:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ")
                chunk = b"a" * MIB
                for _ in range(stream_mib):
                    sock.sendall(chunk)
            sock.sendall(payload)
            if not read:
                return "abandoned"
            answer = sock.recv(4096)
        except OSError as error:
            return f"closed ({type(error).__name__})"
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def cases(key: str) -> dict[str, Callable[[int], str]]:
    """Each abusive request, its bytes built here so no sender holds the GIL while probing."""
    deep_event = request(key, envelope([event(1)])[:-2] + b',{"x":' + nested(1_000) + b"}]}")
    empty_objects = request(key, b"[" + b",".join([b"{}"] * (16 * MIB // 3 - 1)) + b"]")
    huge_sensor = request(key, envelope([event(n) for n in range(100)], "s" * 512 * 1024))
    many_headers = (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: v\r\n" % n for n in range(100_000))
        + b"\r\n"
    )
    deep_body = request(key, b"[" * 2_000 + b"]" * 2_000)
    two_keys = request(key, envelope([event(2)]), b"Authorization: Bearer other\r\n")
    return {
        "16 MiB of {}": lambda port: exchange(port, empty_objects),
        "512 KiB sensor, 100 events": lambda port: exchange(port, huge_sensor),
        "100 MiB header": lambda port: exchange(port, b"\r\n\r\n", stream_mib=100),
        "100,000 headers": lambda port: exchange(port, many_headers),
        "item 1,000 levels deep": lambda port: exchange(port, deep_event),
        "body 2,000 levels deep": lambda port: exchange(port, deep_body),
        "two Authorization headers": lambda port: exchange(port, two_keys),
        "body abandoned mid-way": lambda port: exchange(
            port, request(key, b"x" * 1000)[:-900], read=False
        ),
        "idle connection": lambda port: exchange(port, b"", read=True),
    }


def healthz_ms(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    return (time.perf_counter() - started) * 1000


def tree_mib(pid: int, field: str) -> float:
    return sum(serverproc._status_kib(p, field) for p in serverproc.process_tree(pid)) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="default: a new SQLite file")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caliper-abuse-"))
    database = args.database or f"sqlite:///{work / 'caliper.db'}"
    command = serverproc.product_command()
    key = subprocess.run(
        [*command, "keys", "create", "--label", "abuse", "--database", database],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = serverproc.free_port()
    argv = [*command, "serve", "--host", HOST, "--port", str(port), "--database", database]
    server = serverproc.ServerProcess("caliper-store", argv, work / "server.log", HOST, port)
    server.wait_ready()
    try:
        exchange(port, request(key, envelope([event(0)])))  # the writer process starts
        idle = [healthz_ms(port) for _ in range(200)]
        before = tree_mib(server.pid, "VmRSS")
        statuses: dict[str, Counter[str]] = {}
        busy: list[float] = []
        abusive = cases(key)
        for _ in range(args.rounds):
            threads = []
            for name, run in abusive.items():

                def target(name: str = name, run: Callable[[int], str] = run) -> None:
                    statuses.setdefault(name, Counter())[run(port)] += 1

                threads.append(threading.Thread(target=target))
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                busy.append(healthz_ms(port))
            for thread in threads:
                thread.join()
        peak = tree_mib(server.pid, "VmHWM")
        after = tree_mib(server.pid, "VmRSS")
    finally:
        code = server.stop()
    print(f"caliper-store abuse benchmark, {database}, {args.rounds} rounds")
    for name, seen in statuses.items():
        print(f"  {name:<28} {dict(seen)}")
    print("\n/healthz latency     median     p99      max   (ms)")
    for label, sample in (("idle (ceiling)", idle), ("under abuse", busy)):
        p99 = statistics.quantiles(sample, n=100)[98] if len(sample) > 1 else sample[0]
        print(f"  {label:<16} {statistics.median(sample):8.1f} {p99:8.1f} {max(sample):8.1f}")
    ratio = statistics.median(busy) / statistics.median(idle)
    print(f"  under abuse, median as a multiple of idle: {ratio:.1f}x ({len(busy)} probes)")
    print(
        f"\nserver memory (with its writer process), MiB: before {before:.0f}, "
        f"peak {peak:.0f}, after {after:.0f}"
    )
    print(f"server exit: {code} ({'clean' if serverproc.is_clean_exit(code) else 'NOT CLEAN'})")
    return 0 if serverproc.is_clean_exit(code) else 1


if __name__ == "__main__":
    sys.exit(main())
