"""The sensor's queues: bounded in memory, durable on disk, refused events kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from caliper_store.errors import QueueFull
from caliper_store.sensor import DiskQueue, EventQueue, MemoryQueue


@pytest.fixture(params=["memory", "disk"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> EventQueue:
    if request.param == "memory":
        return MemoryQueue(max_queued_events=10)
    return DiskQueue(tmp_path / "queue.db", max_queued_events=10)


def test_take_gives_oldest_first_within_limits_and_skips_those_in_flight(
    queue: EventQueue,
) -> None:
    queue.put([b'{"n":%d}' % n for n in range(6)])
    first = queue.take(4, 1_000_000, set())
    assert [q.body for q in first] == [b'{"n":%d}' % n for n in range(4)]
    rest = queue.take(4, 1_000_000, {q.seq for q in first})
    assert [q.body for q in rest] == [b'{"n":4}', b'{"n":5}']
    assert len(queue.take(10, 20, set())) == 2  # 8 bytes each and a comma: two fit in 20
    assert len(queue.take(10, 1, set())) == 1  # one event always goes, even over the limit


def test_a_full_queue_refuses_the_whole_send(queue: EventQueue) -> None:
    queue.put([b"{}"] * 8)
    with pytest.raises(QueueFull, match="max_queued_events=10"):
        queue.put([b"{}"] * 3)
    assert len(queue) == 8


def test_removed_events_are_gone_and_rejected_ones_kept_with_the_answer(
    queue: EventQueue,
) -> None:
    queue.put([b'{"a":1}', b'{"b":2}', b'{"c":3}'])
    a, b, c = queue.take(3, 1_000_000, set())
    queue.remove([a.seq])
    queue.reject([b], 422, "dataVersion is not supported")
    assert [q.body for q in queue.take(3, 1_000_000, set())] == [c.body]
    assert len(queue) == 1
    assert [(r.body, r.status, r.detail) for r in queue.rejected] == [
        (b'{"b":2}', 422, "dataVersion is not supported")
    ]


def test_disk_queue_survives_being_closed_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    first = DiskQueue(path)
    first.put([b'{"n":1}', b'{"n":2}'])
    first.remove([first.take(1, 1_000_000, set())[0].seq])
    first.close()
    again = DiskQueue(path)
    assert len(again) == 1
    assert [q.body for q in again.take(10, 1_000_000, set())] == [b'{"n":2}']
