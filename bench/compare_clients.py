"""How much load each client can drive: the figures behind the choice of `load.py` (see README).

`python bench/compare_clients.py aiohttp --url http://127.0.0.1:P/caliper` drives an endpoint with
an aiohttp client (one coroutine per connection) and prints req/s and the client's own CPU.
`python bench/compare_clients.py sink --port P` serves a minimal uvloop + httptools endpoint that
answers 200 to every POST, far cheaper than Starlette, to find where a client itself tops out.
`python bench/compare_clients.py bodies --out FILE` writes canvas bodies, one a line, for
`wrk_rotate.lua`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import cast

import aiohttp
import httptools
import uvloop

if __package__ in (None, ""):
    # Run as `python bench/compare_clients.py`: import the helpers as the `bench` package mypy sees.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import workload

_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


async def _drive_aiohttp(url: str, connections: int, warmup_s: float, duration_s: float) -> None:
    source = workload.EnvelopeSource(workload.build_scenario("canvas"), workload.IdSource())
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    latencies: list[int] = []
    count = 0
    start = time.perf_counter()
    window_start = start + warmup_s
    end = window_start + duration_s

    async def one_connection(session: aiohttp.ClientSession) -> None:
        nonlocal count
        while True:
            pieces, _, _ = source.next_body()
            body = b"".join(pieces)
            sent = time.perf_counter_ns()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            now = time.perf_counter()
            if now >= end:
                return
            if now >= window_start and response.status == 200:
                count += 1
                latencies.append(time.perf_counter_ns() - sent)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu: list[float] = []
        cpu_task = asyncio.get_running_loop().call_later(
            warmup_s, lambda: cpu.append(time.process_time())
        )
        await asyncio.gather(*(one_connection(session) for _ in range(connections)))
        cpu_task.cancel()
    cpu_s = time.process_time() - cpu[0] if cpu else float("nan")
    latencies.sort()
    print(
        f"aiohttp, {connections} connections: {count / duration_s:,.0f} req/s,"
        f" p50 {latencies[len(latencies) // 2] / 1e6:.2f} ms,"
        f" p99 {latencies[int(len(latencies) * 0.99)] / 1e6:.2f} ms,"
        f" client CPU {cpu_s / duration_s:.2f} cores"
    )


class _SinkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(_RESPONSE)


async def _serve_sink(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_SinkProtocol, host, port)
    async with server:
        await server.serve_forever()


def _write_bodies(path: Path, count: int) -> None:
    source = workload.EnvelopeSource(workload.build_scenario("canvas"), workload.IdSource())
    with path.open("wb") as out:
        for _ in range(count):
            out.write(b"".join(source.next_body()[0]) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    drive = sub.add_parser("aiohttp", help="drive an endpoint with aiohttp")
    drive.add_argument("--url", required=True)
    drive.add_argument("--connections", type=int, default=64)
    drive.add_argument("--warmup-s", type=float, default=2.0)
    drive.add_argument("--duration-s", type=float, default=5.0)
    sink = sub.add_parser("sink", help="serve a minimal endpoint answering 200 to everything")
    sink.add_argument("--host", default="127.0.0.1")
    sink.add_argument("--port", type=int, required=True)
    bodies = sub.add_parser("bodies", help="write canvas envelopes, one a line, for wrk")
    bodies.add_argument("--out", required=True)
    bodies.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    if args.command == "bodies":
        _write_bodies(Path(args.out), args.count)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if args.command == "aiohttp":
            runner.run(_drive_aiohttp(args.url, args.connections, args.warmup_s, args.duration_s))
        else:
            runner.run(_serve_sink(args.host, args.port))


if __name__ == "__main__":
    main()
