"""A sensor's queue of events not yet delivered: in memory, or in an SQLite file that survives.

The disk queue commits each ``put`` before it returns and removes events only after the store
answered 2xx, so a sender killed at any moment resends, on restart, exactly the events whose
delivery it had not seen confirmed, with the same ids: the store counts those it already had as
duplicates, and every event is stored once. Events the store refused for good (a 4xx) move to a
``rejected`` table with the answer, for a person to read; they are never silently dropped.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from caliper_store.errors import QueueFull

DEFAULT_MAX_QUEUED_EVENTS = 100_000


class Queued(NamedTuple):
    """One queued event: its place in the queue and its wire bytes."""

    seq: int
    body: bytes


class RejectedEvent(NamedTuple):
    """An event the store refused, with the answer it gave."""

    body: bytes
    status: int
    detail: str
    rejected_at: str


class EventQueue(Protocol):
    """Where a sensor keeps events until the store has them."""

    def put(self, bodies: Sequence[bytes]) -> None:
        """Queue events, all or none (raises QueueFull when they do not fit)."""

    def take(self, max_events: int, max_bytes: int, skip: Collection[int]) -> list[Queued]:
        """The oldest events not in ``skip``, up to the limits; at least one if any is queued."""

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered events."""

    def reject(self, events: Sequence[Queued], status: int, detail: str) -> None:
        """Take refused events out of the queue, keeping them with the answer where possible."""

    @property
    def rejected(self) -> list[RejectedEvent]:
        """The events the store refused, with its answers, oldest first."""

    def __len__(self) -> int:
        """How many events wait."""

    def close(self) -> None:
        """Release the queue's resources."""


def _within(
    candidates: Iterable[Queued], max_events: int, max_bytes: int, skip: Collection[int]
) -> list[Queued]:
    taken: list[Queued] = []
    size = 0
    for queued in candidates:
        if queued.seq in skip:
            continue
        if taken and (len(taken) >= max_events or size + len(queued.body) > max_bytes):
            break
        taken.append(queued)
        size += len(queued.body) + 1
    return taken


class MemoryQueue:
    """Events in this process's memory, bounded: lost if the process dies before delivery."""

    def __init__(self, max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS) -> None:
        self._events: OrderedDict[int, bytes] = OrderedDict()
        self._next_seq = 1
        self._max = max_queued_events
        self._lock = threading.Lock()
        self.rejected: list[RejectedEvent] = []

    def put(self, bodies: Sequence[bytes]) -> None:
        """Queue events, all or none."""
        with self._lock:
            if len(self._events) + len(bodies) > self._max:
                raise QueueFull(_full_detail(len(self._events), self._max))
            for body in bodies:
                self._events[self._next_seq] = body
                self._next_seq += 1

    def take(self, max_events: int, max_bytes: int, skip: Collection[int]) -> list[Queued]:
        """The oldest events not being sent already."""
        with self._lock:
            return _within(
                (Queued(seq, body) for seq, body in self._events.items()),
                max_events,
                max_bytes,
                skip,
            )

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered events."""
        with self._lock:
            for seq in seqs:
                self._events.pop(seq, None)

    def reject(self, events: Sequence[Queued], status: int, detail: str) -> None:
        """Move refused events to ``rejected`` (in memory, most recent ``max_queued_events``)."""
        now = _now_text()
        with self._lock:
            for queued in events:
                self._events.pop(queued.seq, None)
                self.rejected.append(RejectedEvent(queued.body, status, detail, now))
            del self.rejected[: max(0, len(self.rejected) - self._max)]

    def __len__(self) -> int:
        """How many events wait."""
        return len(self._events)

    def close(self) -> None:
        """Nothing to release."""


class DiskQueue:
    """Events in an SQLite file (WAL, ``synchronous=FULL``): a killed sender loses none."""

    def __init__(self, path: Path, max_queued_events: int = 10_000_000) -> None:
        self.path = path
        self._max = max_queued_events
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queued (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "body BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, "
            "status INTEGER NOT NULL, detail TEXT NOT NULL, rejected_at TEXT NOT NULL)"
        )
        self._count: int = self._db.execute("SELECT count(*) FROM queued").fetchone()[0]

    def put(self, bodies: Sequence[bytes]) -> None:
        """Queue events in one committed transaction, all or none."""
        with self._lock:
            if self._count + len(bodies) > self._max:
                raise QueueFull(_full_detail(self._count, self._max))
            with self._transaction():
                self._db.executemany("INSERT INTO queued (body) VALUES (?)", [(b,) for b in bodies])
            self._count += len(bodies)

    def take(self, max_events: int, max_bytes: int, skip: Collection[int]) -> list[Queued]:
        """The oldest events not being sent already."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM queued ORDER BY seq LIMIT ?", (max_events + len(skip),)
            )
            events = (Queued(seq, bytes(body)) for seq, body in rows)
            return _within(events, max_events, max_bytes, skip)

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget delivered events, committed before this returns."""
        keys = [(seq,) for seq in seqs]
        with self._lock, self._transaction():
            before = self._db.total_changes
            self._db.executemany("DELETE FROM queued WHERE seq = ?", keys)
            self._count -= self._db.total_changes - before

    def reject(self, events: Sequence[Queued], status: int, detail: str) -> None:
        """Move refused events to the ``rejected`` table, with the store's answer."""
        now = _now_text()
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?)",
                [(queued.seq, queued.body, status, detail, now) for queued in events],
            )
            before = self._db.total_changes
            self._db.executemany("DELETE FROM queued WHERE seq = ?", [(q.seq,) for q in events])
            self._count -= self._db.total_changes - before

    @property
    def rejected(self) -> list[RejectedEvent]:
        """Every event the store refused, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body, status, detail, rejected_at FROM rejected ORDER BY seq"
            ).fetchall()
        return [RejectedEvent(bytes(body), status, detail, at) for body, status, detail, at in rows]

    def __len__(self) -> int:
        """How many events wait."""
        return self._count

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (sqlite3 in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if error is None else "ROLLBACK")


def _full_detail(queued: int, limit: int) -> str:
    return (
        f"the sensor's queue holds {queued} events and takes at most max_queued_events={limit}; "
        "nothing was queued: the store is away or slower than the events come"
    )


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def open_queue(queue: EventQueue | Path | None) -> EventQueue:
    """The queue a sensor keeps: the one given, a disk queue at a path, or one in memory."""
    if queue is None:
        return MemoryQueue()
    if isinstance(queue, Path):
        return DiskQueue(queue)
    return queue
