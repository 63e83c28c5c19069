"""Whole sending jobs for the command line: files, an export's replay, generated traffic.

Each job feeds one or more ``Sensor``s, waits for the store to have everything, and sums up
what the store said (its receipts' verdicts) and what could not be delivered.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from caliper_store.errors import DeliveryFailed, QueueFull
from caliper_store.sensor.batches import SensorOptions, SensorStats
from caliper_store.sensor.client import Sensor
from caliper_store.sensor.envelope import DataVersion, envelope_body
from caliper_store.sensor.files import (
    EnvelopeFile,
    Progress,
    read_export,
    read_payloads,
)
from caliper_store.sensor.loadgen import Population, traffic
from caliper_store.sensor.shapes import Shape

SensorFactory = Callable[[SensorOptions], Sensor]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a sending job did: the sensors' counters summed, and how long it took."""

    stats: SensorStats
    undelivered: int
    elapsed_s: float

    @property
    def is_complete(self) -> bool:
        """Every event delivered and none refused."""
        return self.undelivered == 0 and self.stats.rejected == 0

    def as_json(self) -> dict[str, Any]:
        """The summary as ``--json`` prints it."""
        shown: dict[str, Any] = {f.name: getattr(self.stats, f.name) for f in fields(SensorStats)}
        shown |= {"undelivered": self.undelivered, "elapsedSeconds": round(self.elapsed_s, 3)}
        if self.elapsed_s > 0:
            shown["eventsPerSecond"] = round(self.stats.delivered / self.elapsed_s, 1)
        return shown


def shape_options(shape: Shape, **overrides: Any) -> SensorOptions:
    """The options a producer sends with: its sensor id, dataVersion, batch size, key form."""
    options = SensorOptions(
        sensor_id=shape.sensor_id,
        data_version=shape.data_version,
        batch_events=shape.events_per_envelope,
        is_bare_key=shape.is_bare_key,
    )
    return dataclasses.replace(options, **overrides)


def send_files(files: Sequence[Path], sensor: Sensor, on_bytes: Progress | None) -> RunSummary:
    """Send envelopes as they are and loose events in batches; wait until the store has all."""
    started = time.monotonic()
    with _closing([sensor]) as summary:
        for payload in read_payloads(files, on_bytes):
            if isinstance(payload, EnvelopeFile):
                sensor.post_envelope(payload.body, payload.event_count)
            else:
                send_waiting(sensor, payload.body)
    return summary.finish(started)


def replay_export(
    path: Path, options: SensorOptions, make_sensor: SensorFactory, on_bytes: Progress | None
) -> RunSummary:
    """Re-send an NDJSON export's raw events, each with the sensor and version it came with.

    Ids travel inside the raw events, so a store that has some of them counts duplicates.
    """
    started = time.monotonic()
    sensors: dict[tuple[str, str | None], Sensor] = {}
    with _closing(sensors.values()) as summary:
        for event in read_export(path, on_bytes):
            route = (event.caliper_version, event.sensor)
            sensor = sensors.get(route)
            if sensor is None:
                sensor = sensors[route] = make_sensor(
                    dataclasses.replace(
                        options,
                        sensor_id=event.sensor or options.sensor_id,
                        data_version=_data_version(event.caliper_version),
                    )
                )
            send_waiting(sensor, event.raw)
    return summary.finish(started)


def run_loadgen(
    shape: Shape,
    population: Population,
    sensor: Sensor,
    *,
    rate_events_s: float | None,
    on_day: Callable[[int], None] | None,
) -> RunSummary:
    """Send the generated traffic, at most ``rate_events_s`` events a second when given."""
    started = time.monotonic()
    sent = 0
    with _closing([sensor]) as summary:
        for day in traffic(shape, population):
            for event in day:
                if rate_events_s:
                    _pace(started, sent, rate_events_s)
                send_waiting(sensor, orjson.dumps(event))
                sent += 1
            if on_day is not None:
                on_day(1)
    return summary.finish(started)


def write_loadgen(shape: Shape, population: Population, sink: IO[bytes]) -> int:
    """Write the generated traffic as NDJSON envelopes, as the producer would send them."""
    written = 0
    for day in traffic(shape, population):
        step = shape.events_per_envelope
        for start in range(0, len(day), step):
            batch = [orjson.dumps(event) for event in day[start : start + step]]
            send_time = day[min(start + step, len(day)) - 1]["eventTime"]
            sink.write(
                envelope_body(
                    batch,
                    sensor_id=shape.sensor_id,
                    data_version=shape.data_version,
                    send_time=_parse_time(send_time),
                )
                + b"\n"
            )
            written += len(batch)
    return written


def send_waiting(sensor: Sensor, body: bytes) -> None:
    """Queue one event, waiting for the queue to drain when it is full (never dropping)."""
    while True:
        try:
            sensor.send(body)
            return
        except QueueFull:
            sensor.flush()


class _Summary:
    """The counters of a job's sensors, summed once they are closed."""

    def __init__(self, sensors: Iterable[Sensor]) -> None:
        self.sensors = sensors
        self.stats = SensorStats()
        self.undelivered = 0

    def add(self, sensor: Sensor) -> None:
        for field in fields(SensorStats):
            if field.name != "last_error":
                total = getattr(self.stats, field.name) + getattr(sensor.stats, field.name)
                setattr(self.stats, field.name, total)
        self.stats.last_error = sensor.stats.last_error or self.stats.last_error
        self.undelivered += len(sensor.queue)

    def finish(self, started: float) -> RunSummary:
        return RunSummary(self.stats, self.undelivered, time.monotonic() - started)


@contextmanager
def _closing(sensors: Iterable[Sensor]) -> Iterator[_Summary]:
    """Flush and close every sensor at the end, even after an error, summing their counters.

    What a sensor could not deliver is counted as undelivered (a disk queue keeps it), not
    raised: the summary says it, and the command's exit code.
    """
    summary = _Summary(sensors)
    try:
        yield summary
    finally:
        for sensor in list(summary.sensors):
            with suppress(DeliveryFailed):
                sensor.close()
            summary.add(sensor)


def _pace(started: float, sent: int, rate_events_s: float) -> None:
    ahead_s = started + sent / rate_events_s - time.monotonic()
    if ahead_s > 0:
        time.sleep(ahead_s)


def _data_version(version: str) -> DataVersion | None:
    """The dataVersion to send an export's events with: their own; 1.0 as Moodle, without."""
    if version == "1.1":
        return "1.1"
    if version == "1.2":
        return "1.2"
    return None


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
