"""A Caliper sensor: build events and envelopes, send them batched and retried, generate load.

``Sensor`` (threads) and ``AsyncSensor`` (asyncio) send to any Caliper endpoint, this store's
or another's; ``traffic`` makes a term of Learn-, Canvas- or Moodle-shaped events. This package
knows nothing of the store's insides: it speaks the Sensor API over HTTP, as any sender would.
"""

from caliper_store.sensor.aio import AsyncSensor
from caliper_store.sensor.batches import SensorOptions, SensorStats
from caliper_store.sensor.client import Sensor
from caliper_store.sensor.envelope import (
    DATA_VERSIONS,
    DataVersion,
    caliper_event,
    caliper_time,
    envelope_body,
    event_bytes,
    new_event_id,
)
from caliper_store.sensor.files import payload_files
from caliper_store.sensor.loadgen import MIXES, Population, random_event, traffic
from caliper_store.sensor.queue import DiskQueue, EventQueue, MemoryQueue, Queued, RejectedEvent
from caliper_store.sensor.retry import (
    Accepted,
    Decision,
    GaveUp,
    Rejected,
    RetryPolicy,
    problem_detail,
    retry_after_seconds,
)
from caliper_store.sensor.runs import (
    RunSummary,
    replay_export,
    run_loadgen,
    send_files,
    shape_options,
    write_loadgen,
)
from caliper_store.sensor.shapes import SHAPES, Shape

__all__ = [
    "DATA_VERSIONS",
    "MIXES",
    "SHAPES",
    "Accepted",
    "AsyncSensor",
    "DataVersion",
    "Decision",
    "DiskQueue",
    "EventQueue",
    "GaveUp",
    "MemoryQueue",
    "Population",
    "Queued",
    "Rejected",
    "RejectedEvent",
    "RetryPolicy",
    "RunSummary",
    "Sensor",
    "SensorOptions",
    "SensorStats",
    "Shape",
    "caliper_event",
    "caliper_time",
    "envelope_body",
    "event_bytes",
    "new_event_id",
    "payload_files",
    "problem_detail",
    "random_event",
    "replay_export",
    "retry_after_seconds",
    "run_loadgen",
    "send_files",
    "shape_options",
    "traffic",
    "write_loadgen",
]
