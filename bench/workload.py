"""Realistic Caliper events for the benchmark: Learn-style batches and Canvas-style single events.

Events are built once as templates (a seeded random mix of users, courses, event kinds, drawn
from the producers' shapes that ``caliper-store loadgen`` sends, ``caliper_store.sensor``),
serialized with orjson and split around the event id. A request then costs a few byte
concatenations plus a fresh id per event, so the load generator spends its CPU on sockets, not
on JSON.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from caliper_store.sensor import SHAPES, caliper_time, random_event

SCENARIOS = ("learn", "canvas")
CALIPER_V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
TEMPLATE_COUNT = 4096
# Students and courses behind each scenario's random events.
POPULATIONS = {"learn": (4000, 300), "canvas": (5000, 400)}

_ID_MARKER = "@@EVENT-ID@@"


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """One serialized event split around its id: the event is `pre + id + post`."""

    pre: bytes
    post: bytes


@dataclass(frozen=True, slots=True)
class Scenario:
    """A workload: which events, how many per envelope, how ids are spelled."""

    name: str
    events_per_envelope: int
    id_prefix: bytes
    templates: tuple[EventTemplate, ...]
    envelope_head: bytes
    envelope_tail: bytes

    @property
    def mean_event_bytes(self) -> float:
        """Mean serialized size of one event, id included."""
        total = sum(len(t.pre) + len(t.post) for t in self.templates)
        return total / len(self.templates) + len(self.id_prefix) + 36


class IdSource:
    """Event ids unique across the whole run, cheap to make, random in their leading digits.

    Shape: `xxxxxxxx-rrrr-4rrr-vrrr-cccccccccccc` (a valid UUID 4): `x` fresh random per id, so
    inserts land all over a B-tree as real UUIDs do; `r`/`v` random per run; `c` a counter, so two
    ids of one run can never collide.
    """

    def __init__(self) -> None:
        run = secrets.token_hex(6)
        variant = "89ab"[int(run[11], 16) % 4]
        self._middle = f"-{run[0:4]}-4{run[4:7]}-{variant}{run[7:10]}-".encode()
        self._next = 0

    @property
    def issued(self) -> int:
        """How many ids this source has handed out."""
        return self._next

    def take(self, count: int, prefix: bytes) -> list[bytes]:
        """Return `count` fresh ids, each starting with `prefix` (`urn:uuid:` or nothing)."""
        rnd = os.urandom(4 * count).hex().encode()
        start = self._next
        self._next += count
        middle = self._middle
        return [
            b"%s%s%s%012x" % (prefix, rnd[8 * i : 8 * i + 8], middle, start + i)
            for i in range(count)
        ]


def build_scenario(name: str, *, seed: int = 1, template_count: int = TEMPLATE_COUNT) -> Scenario:
    """Build the templates of one scenario (`learn` or `canvas`)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    rng = random.Random(f"{name}:{seed}")
    now = datetime.now(UTC)
    shape = SHAPES[name]
    students, courses = POPULATIONS[name]
    templates = []
    for _ in range(template_count):
        event_time = caliper_time(now - timedelta(seconds=rng.uniform(0, 3600)))
        event = random_event(shape, rng, event_time, _ID_MARKER, students=students, courses=courses)
        templates.append(_split_template(event))
    head = b'{"sensor":%s,"sendTime":%s,"dataVersion":%s,"data":[' % (
        orjson.dumps(shape.sensor_id),
        orjson.dumps(caliper_time(now)),
        orjson.dumps(CALIPER_V1P1),
    )
    prefix = b"" if name == "learn" else b"urn:uuid:"
    return Scenario(name, shape.events_per_envelope, prefix, tuple(templates), head, b"]}")


class EnvelopeSource:
    """Hands out envelope bodies as lists of byte pieces, each event with a fresh id."""

    def __init__(self, scenario: Scenario, ids: IdSource) -> None:
        self.scenario = scenario
        self._ids = ids
        self._cursor = 0
        templates = scenario.templates
        self._pre = [t.pre for t in templates]
        self._post = [t.post for t in templates]
        id_len = len(scenario.id_prefix) + 36
        self._event_len = [len(t.pre) + len(t.post) + id_len for t in templates]
        self._frame_len = len(scenario.envelope_head) + len(scenario.envelope_tail)

    def next_body(self) -> tuple[list[bytes], int, int]:
        """Return (pieces of one envelope body, body length in bytes, number of events)."""
        scenario = self.scenario
        n = scenario.events_per_envelope
        count = len(self._pre)
        start = self._cursor
        self._cursor = (start + n) % count
        ids = self._ids.take(n, scenario.id_prefix)
        pieces = [scenario.envelope_head]
        length = self._frame_len + n - 1
        for k in range(n):
            i = (start + k) % count
            if k:
                pieces.append(b",")
            pieces += (self._pre[i], ids[k], self._post[i])
            length += self._event_len[i]
        pieces.append(scenario.envelope_tail)
        return pieces, length, n

    def next_rows(self, count: int) -> list[tuple[str, str]]:
        """Return `count` events as (id, raw JSON) rows, for the bare database ceilings."""
        ids = self._ids.take(count, self.scenario.id_prefix)
        size = len(self._pre)
        start = self._cursor
        self._cursor = (start + count) % size
        rows = []
        for k, event_id in enumerate(ids):
            i = (start + k) % size
            rows.append((event_id.decode(), (self._pre[i] + event_id + self._post[i]).decode()))
        return rows


def _split_template(event: dict[str, Any]) -> EventTemplate:
    raw = orjson.dumps(event)
    pre, marker, post = raw.partition(orjson.dumps(_ID_MARKER))
    if not marker or _ID_MARKER.encode() in post:
        raise AssertionError("the id marker must appear exactly once in a template")
    return EventTemplate(pre + b'"', b'"' + post)
