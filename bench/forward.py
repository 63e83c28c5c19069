"""Forwarding and the sensor, each as a fraction of a rate measured in the same run (issue 14).

- ``ingest``: bench/ingest.py against a server with no destination, one with a destination
  (a second caliper-store, live, on the same two cores), one with that destination at the
  lowest CPU priority (taking only what the source leaves, as on a machine of its own), and one
  whose destination is a bare HTTP server (bench/trivial_app.py: what the forwarder itself
  costs), in rotating order; target: with at least 0.9 of without.
- ``forward``: after a round, how fast ``caliper-store forward run`` delivers the events just
  stored to a new second store, as a fraction of the ingest rate of that round (target 0.8,
  so a destination keeps up).
- ``sensor``: ``caliper_store.sensor.Sensor`` sending bench/workload.py's events to a server,
  against bench/load.py (the load generator of bench/ingest.py) on the same kind of server,
  alternating; target: at least 0.9 of it.
- ``chdb``: events/s into chDB through the ClickHouse sink, beside the rate at which the relay
  reads the same events from the store.

    python bench/forward.py --part all --scenario learn --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import load, serverproc, workload
from bench.limits import REPO, Window, figures, run_ingest
from caliper_store.config import Settings
from caliper_store.forward import ClickHouseSink
from caliper_store.sensor import Sensor, SensorOptions
from caliper_store.storage import open_store
from caliper_store.storage.forwarding import START

CLI = [sys.executable, "-m", "caliper_store"]
# The live destination of the "niced" mode: the lowest priority there is, standing for a store
# on a machine of its own (the same two cores serve both stores and the load generator).
DESTINATION_NICENESS = 19


def _cli(*args: str) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _store_events(database: str) -> int:
    store = open_store(Settings(database_url=database))
    try:
        return int(store.stats()["events"])
    finally:
        store.close()


class _Served:
    """A server of the bench's on a free port, answering POST /caliper."""

    key: str

    def __init__(self, work: Path, name: str, argv: list[str]) -> None:
        self.port = serverproc.free_port()
        self.server = serverproc.ServerProcess(
            name, [*argv, "--port", str(self.port)], work / f"{name}.log", "127.0.0.1", self.port
        )
        self.server.wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/caliper"

    def stop(self) -> None:
        self.server.stop()


class Destination(_Served):
    """A second caliper-store on a new SQLite file; ``niceness`` above 0 lowers its priority,
    so it takes only the CPU the source leaves, as a destination on a machine of its own would.
    """

    def __init__(self, work: Path, name: str, niceness: int = 0) -> None:
        self.database = f"sqlite:///{work / name}.db"
        _cli("migrate", "--database", self.database)
        self.key = _cli("keys", "create", "--label", "source", "--database", self.database)
        serve = [*CLI, "serve", "--database", self.database]
        super().__init__(work, name, ["nice", "-n", str(niceness), *serve])


class BareDestination(_Served):
    """bench/trivial_app.py: takes every envelope and does nothing, so only the forwarder's
    own cost is left at the source."""

    def __init__(self, work: Path, name: str) -> None:
        self.key = "bare"
        super().__init__(work, name, [sys.executable, str(REPO / "bench" / "trivial_app.py")])


def _ingest_round(
    scenario: str, number: int, work: Path, window: Window, niceness: int
) -> dict[str, float]:
    """One round: ingest without a destination and with one, then the forwarding rate."""
    rates: dict[str, float] = {}
    modes = ["without", "with", "niced", "bare"]
    order = modes[number % len(modes) :] + modes[: number % len(modes)]
    for mode in order:
        database = f"sqlite:///{work / f'{scenario}-{mode}-{number}'}.db"
        destination: _Served | None = None
        if mode == "with":
            destination = Destination(work, f"dest-{mode}-{number}")
        elif mode == "niced":
            destination = Destination(work, f"dest-{mode}-{number}", niceness=niceness)
        elif mode == "bare":
            destination = BareDestination(work, f"bare-{number}")

        def add_destination(url: str, target: _Served | None = destination) -> None:
            if target is not None:
                _cli(
                    "forward",
                    "add",
                    "d",
                    "--url",
                    target.url,
                    "--key",
                    target.key,
                    "--database",
                    url,
                )

        report = run_ingest(
            REPO, scenario, database, work / "results", window, before_load=add_destination
        )
        rate, ceiling, p99 = figures(report)
        rates[mode] = rate
        print(
            f"  round {number + 1} {mode:<7} {rate:9,.0f} events/s "
            f"({rate / ceiling:.3f} of the bare ceiling {ceiling:,.0f})  p99 {p99:7.1f} ms"
        )
        if destination is not None:
            destination.stop()
        if mode == "without":
            for parts in (1, 16):
                rates[f"forward x{parts}"] = _forward_rate(database, work, number, parts)
    return rates


def _forward_rate(database: str, work: Path, number: int, parts: int) -> float:
    """Events/s of `caliper-store forward run` delivering a store's events to a new store,
    ``parts`` envelopes in flight (``forward_concurrency``).

    Timed from the first delivery to the last, read off the destination's row in the source
    (one indexed read a poll): counting the destination's events each poll scanned its whole
    table on the same two cores, and the relay's start-up is not its rate.
    """
    name = f"d{parts}"
    stored = _store_events(database)
    destination = Destination(work, f"catch-up-{number}-{parts}")
    _cli(
        "forward",
        "add",
        name,
        "--url",
        destination.url,
        "--key",
        destination.key,
        "--from-start",
        "--database",
        database,
    )
    source = open_store(Settings(database_url=database))
    started = time.monotonic()
    relay = subprocess.Popen(
        [*CLI, "forward", "run", "--database", database],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CALIPER_STORE_FORWARD_CONCURRENCY": str(parts)},
    )
    try:
        first: tuple[float, int] | None = None
        delivered = 0
        while delivered < stored:
            time.sleep(0.05)  # polling for deliveries; the figure is the span they took
            delivered = source.forwarding.get(name).delivered_events
            if first is None and delivered > 0:
                first = (time.monotonic(), delivered)
        assert first is not None
        began, first_delivered = first
        if first_delivered == delivered:  # all of it between two polls: no span to time
            began, first_delivered = started, 0
        rate = (delivered - first_delivered) / (time.monotonic() - began)
    finally:
        relay.terminate()
        relay.wait()
        source.close()
    received = _store_events(destination.database)
    destination.stop()
    _cli("forward", "remove", name, "--database", database)
    if received != stored:
        raise SystemExit(f"forward x{parts}: {stored} events stored, {received} delivered")
    return rate


def _sensor_round(
    scenario: str, number: int, work: Path, events: int, window: Window
) -> tuple[float, float]:
    """bench/load.py and the Sensor, each on a new server, alternating: events/s of each."""
    built = workload.build_scenario(scenario)
    results: dict[str, float] = {}
    order = ["load", "sensor"] if number % 2 == 0 else ["sensor", "load"]
    for mode in order:
        target = Destination(work, f"sensor-{mode}-{scenario}-{number}")
        source = workload.EnvelopeSource(built, workload.IdSource())
        if mode == "load":
            factory = load.make_request_factory(
                source, "127.0.0.1", target.port, "/caliper", target.key
            )
            config = load.LoadConfig(
                "127.0.0.1",
                target.port,
                "/caliper",
                connections=16,
                warmup_s=window.warmup_s,
                duration_s=window.duration_s,
            )
            results[mode] = load.run_load(config, factory).events_per_s
        else:
            rows = [raw.encode() for _, raw in source.next_rows(events)]
            options = SensorOptions(
                sensor_id="urn:bench:sensor",
                data_version="1.1",
                batch_events=built.events_per_envelope,
                concurrency=16,
                batch_interval_s=0,
            )
            began = time.monotonic()
            with Sensor(target.url, target.key, options) as sensor:
                for start in range(0, len(rows), 1000):
                    sensor.send(*rows[start : start + 1000])
            results[mode] = events / (time.monotonic() - began)
        target.stop()
        print(f"  round {number + 1} {mode:<6} {results[mode]:9,.0f} events/s")
    return results["sensor"], results["load"]


def _chdb(work: Path, events: int) -> None:
    """Events/s into chDB, beside the rate the relay reads the same events from the store."""
    destination = Destination(work, "chdb-fill")
    _cli(
        "loadgen",
        "--shape",
        "learn",
        "--courses",
        "40",
        "--students",
        str(events // 40),
        "--days",
        "1",
        "--url",
        destination.url,
        "--key",
        destination.key,
        "--no-progress",
    )
    destination.stop()
    database = destination.database
    store = open_store(Settings(database_url=database))
    began = time.monotonic()
    batches = []
    cursor = START
    while found := store.forwarding.events_after(cursor, 1000):
        batches.append([event.record for event in found])
        cursor = found[-1].cursor
    read_s = time.monotonic() - began
    total = sum(len(batch) for batch in batches)
    sink = ClickHouseSink.connect(f"chdb://{work / 'ch'}")
    began = time.monotonic()
    for batch in batches:
        sink.deliver(batch)
    write_s = time.monotonic() - began
    sink.close()
    store.close()
    print(
        f"chdb: {total:,} events, read from the store {total / read_s:,.0f} events/s, "
        f"into chDB {total / write_s:,.0f} events/s ({read_s / write_s:.3f} of the read rate)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=["ingest", "sensor", "chdb", "all"], default="all")
    parser.add_argument("--scenario", choices=list(workload.SCENARIOS), default="learn")
    parser.add_argument("--rounds", type=int, default=3)
    Window.add_arguments(parser)
    parser.add_argument("--events", type=int, default=40_000, help="sensor and chdb parts")
    parser.add_argument(
        "--niceness",
        type=int,
        default=DESTINATION_NICENESS,
        help="the niced destination's priority (a smoke run on a busy machine gives 0, or a "
        "destination at 19 may not start within a minute)",
    )
    args = parser.parse_args()
    window = Window.from_arguments(args)
    work = Path(tempfile.mkdtemp(prefix="caliper-forward-"))
    if args.part in ("ingest", "all"):
        ratios, niced_ratios, bare_ratios, keeping_up = [], [], [], []
        print(f"{args.scenario}: ingest with one destination against without, and forwarding")
        for number in range(args.rounds):
            rates = _ingest_round(args.scenario, number, work, window, args.niceness)
            ratios.append(rates["with"] / rates["without"])
            niced_ratios.append(rates["niced"] / rates["without"])
            bare_ratios.append(rates["bare"] / rates["without"])
            keeping_up.append(rates["forward x16"] / rates["without"])
            one = rates["forward x1"]
            print(
                f"  round {number + 1}: with / without {ratios[-1]:.3f} (the destination at "
                f"nice {args.niceness}: {niced_ratios[-1]:.3f}; a bare HTTP destination: "
                f"{bare_ratios[-1]:.3f}); forwarding {one:,.0f} "
                f"events/s one envelope at a time ({one / rates['without']:.3f} of the ingest "
                f"rate), {rates['forward x16']:,.0f} with 16 in flight ({keeping_up[-1]:.3f})"
            )
        print(
            f"ingest with a destination: median {statistics.median(ratios):.3f} of without, "
            f"{statistics.median(niced_ratios):.3f} with the destination at nice "
            f"{args.niceness}, {statistics.median(bare_ratios):.3f} with a bare HTTP "
            f"destination (target 0.9); forwarding with 16 in flight: median "
            f"{statistics.median(keeping_up):.3f} of the ingest rate (target 0.8)"
        )
    if args.part in ("sensor", "all"):
        shares = []
        for number in range(args.rounds):
            sensor, generator = _sensor_round(args.scenario, number, work, args.events, window)
            shares.append(sensor / generator)
        print(
            f"sensor: median {statistics.median(shares):.3f} of bench/load.py's rate (target 0.9)"
        )
    if args.part in ("chdb", "all"):
        _chdb(work, args.events)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
