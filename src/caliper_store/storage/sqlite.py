"""The embedded backend: one SQLite file in WAL mode, written by one connection per process.

WAL lets readers (the CLI, reports) work while the server writes; ``BEGIN IMMEDIATE`` takes the
write lock at the start of a group commit, so the check-then-insert below cannot race even when
several server processes share the file.
"""

from __future__ import annotations

import bisect
import fcntl
import functools
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, create_engine, event
from sqlalchemy.exc import DBAPIError

from caliper_store.errors import ConfigurationError, StorageUnavailable
from caliper_store.storage.audit import AUDIT_INSERT_COLUMNS, replay_audit_rows
from caliper_store.storage.base import Store
from caliper_store.storage.compression import (
    CompressionSettings,
    Dictionary,
    dictionary_from_row,
    dictionary_sql,
    dictionary_values,
)
from caliper_store.storage.logins import login_rows, login_upsert_sql
from caliper_store.storage.removal import RemovedEvent
from caliper_store.storage.rollups import (
    MICROS_PER_DAY,
    StoredEvent,
    name_rows,
    name_upsert_sql,
    segment_recount_sql,
)
from caliper_store.storage.schema import EVENT_COLUMNS, utc_micros, utc_text
from caliper_store.storage.search import query_timeout
from caliper_store.storage.segments import (
    create_segment_sql,
    event_id_hash,
    events_view_sql,
    is_segment_table,
    seal_segment_sql,
    segment,
    segment_table,
)
from caliper_store.storage.usage import RelationSize

logger = logging.getLogger(__name__)

PAGE_SIZE_BYTES = 8192
# The writer's own checkpoint is only a backstop (80 MiB of WAL): the checkpointer thread
# copies the WAL into the database file every CHECKPOINT_INTERVAL_S, on the other core.
WRITER_AUTOCHECKPOINT_PAGES = 10_000
CHECKPOINT_INTERVAL_S = 0.25
# After a checkpoint resets the WAL, keep at most this much of its file on disk.
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# The file beside the database that orders the writers of several server processes, and how
# often a waiting writer tries it.
WRITER_LOCK_SUFFIX = "-writer.lock"
LOCK_POLL_S = 0.0005
# SQLite allows 32766 bound parameters; stay well below for IN (...) lists.
IN_CHUNK = 900
# How often a read asks whether it is past its time limit, in SQLite VM steps: a scan runs
# 9-12 million steps a second here, so about once a millisecond. A page by an index takes
# 1,000-5,000 steps and never calls back; each call back has to take the GIL, so not more often.
TIME_CHECK_STEPS = 10_000

_EVENT_TIME = EVENT_COLUMNS.index("event_time")
_RECEIVED_AT = EVENT_COLUMNS.index("received_at")
# Rows go in as multi-row INSERTs, never executemany: executemany steps once per row, and the
# sqlite3 module lets go of the GIL and waits to take it back around every step. Under load the
# event loop holds the GIL meanwhile, so each step could wait a switch interval (5 ms): Learn
# showed 4,300 context switches a second with neither thread past half a core, and Canvas's
# one receipt per request made every group commit wait that way once per request.
MAX_ROWS_PER_STATEMENT = 500
MAX_BOUND_PARAMETERS = 32_766  # SQLite's default limit
# OR IGNORE rather than ON CONFLICT DO NOTHING: with no constraint left that could abort the
# statement half-way, SQLite needs no statement journal (a copy of every page the INSERT
# touches): the Learn INSERT took 1.4 s instead of 2.4 s. An ignored event row is caught after
# the fact (insert_events), so nothing is dropped silently.

# The last receipt id and the newest segment (its number and first seq) of a transaction, read
# under BEGIN IMMEDIATE's write lock.
_HIGH_WATER_MARKS = (
    "(SELECT coalesce(max(id), 0) FROM receipts), "
    "(SELECT id || ' ' || first_seq FROM event_segments ORDER BY id DESC LIMIT 1)"
)
_EVENT_SEGMENT_COLUMNS = ", ".join(("seq", *EVENT_COLUMNS))
_INSERT_RECENT_HASHES = ("INSERT OR IGNORE INTO recent_event_id_hashes (id_hash, seq)", "")
# Sealed hashes are only read at ingest (a lookup dirties no page). Recent ones move into them
# a slice of the hash space at a time, in hash order, one slice every segment_events /
# HASH_SLICES events: each sealed leaf is written about once per segment_events events, and
# no commit rewrites the whole table (see _merge_hash_slices).
HASH_SLICES = 64
_SLICE_WIDTH = 2**64 // HASH_SLICES
_MERGE_SLICE = (
    "INSERT INTO event_id_hashes (id_hash, seq) SELECT id_hash, seq FROM recent_event_id_hashes "
    "WHERE id_hash >= ? AND id_hash <= ? ORDER BY id_hash",
    "DELETE FROM recent_event_id_hashes WHERE id_hash >= ? AND id_hash <= ?",
)
_INSERT_COLLISIONS = ("INSERT INTO event_id_collisions (event_id, seq)", "")
_SEGMENT_FIRST_SEQS = "SELECT first_seq FROM event_segments ORDER BY id"
_REMOVED_COLUMNS = ", ".join(RemovedEvent._fields)
_INSERT_ENTITIES = (
    "INSERT INTO entities (entity_id, content_hash, caliper_version, entity_type, api_key_id, "
    "receipt_id, received_at, raw)",
    "ON CONFLICT (entity_id, content_hash) DO NOTHING",
)
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (receipt_id, api_key_id, item_index, event_id, caliper_version, "
    "reason, reasons, received_at, raw)",
    "",
)
_INSERT_RECEIPTS = (
    "INSERT INTO receipts (id, api_key_id, sensor, send_time, data_version, is_envelope, "
    "received_at, body_bytes, item_count, stored_count, duplicate_count, quarantined_count, "
    "dropped_count, rule_set_id)",
    "",
)
_INSERT_AUDIT = (
    "INSERT INTO quarantine_audit (quarantine_id, action, actor, at, outcome, event_id, note)",
    "",
)


@functools.lru_cache(maxsize=64)
def _multi_row_sql(head: str, tail: str, width: int, row_count: int) -> str:
    row = f"({', '.join('?' for _ in range(width))})"
    return f"{head} VALUES {', '.join([row] * row_count)} {tail}"


def _insert_rows(
    connection: sqlite3.Connection, statement: tuple[str, str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT ``rows`` (tuples of one width) with as few statements, so GIL waits, as fit."""
    if not rows:
        return
    head, tail = statement
    width = len(rows[0])
    per_statement = min(MAX_ROWS_PER_STATEMENT, MAX_BOUND_PARAMETERS // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _multi_row_sql(head, tail, width, len(chunk))
        connection.execute(sql, list(itertools.chain.from_iterable(chunk)))


def sqlite_path(database_url: str) -> Path:
    """The file behind a ``sqlite:///`` URL (three slashes relative, four absolute)."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or database_url == prefix:
        raise ValueError(f"not an SQLite file URL: {database_url!r}")
    return Path(database_url[len(prefix) :])


def _configure(connection: sqlite3.Connection, *, synchronous: str, busy_timeout_ms: int) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    # page_size only takes effect before the first table exists (a new file).
    connection.execute(f"PRAGMA page_size = {PAGE_SIZE_BYTES}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {synchronous}")


def with_micros_times(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """An events row with its two times as integer microseconds (schema.UtcMicros on SQLite)."""
    values = list(row)
    values[_EVENT_TIME] = utc_micros(values[_EVENT_TIME])
    values[_RECEIVED_AT] = utc_micros(values[_RECEIVED_AT])
    return tuple(values)


_SELECT_DICTIONARY, _INSERT_DICTIONARY = dictionary_sql("?")


_NAME_UPSERT = name_upsert_sql("?")
_LOGIN_UPSERT = login_upsert_sql("?", dialect_name="sqlite")


class _SqliteWriteTransaction:
    """The writer's SQL for one group commit on SQLite."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        sealed_reader: sqlite3.Connection,
        segment_events: int,
    ) -> None:
        self._connection = connection
        # The sealed id hashes are read on a connection of their own: their random pages would
        # otherwise push the newest segment's index pages out of the writer's cache. It reads
        # the last commit, which is this transaction's view too as long as the merge into the
        # sealed hashes comes last (see insert_events).
        self._sealed_reader = sealed_reader
        self._has_merged = False  # then only the writer's own connection sees the sealed hashes
        self._segment_events = segment_events
        # (last receipt id, newest segment, its first seq) and the last seq, each read once:
        # BEGIN IMMEDIATE holds the write lock, so nobody else can move them meanwhile.
        self._marks: tuple[int, int, int] | None = None
        self._last_seq: int | None = None
        # (segment, first seq, last seq) of the rows insert_events stored, for add_rollups.
        self._inserted: list[tuple[str, int, int]] = []

    def _remember_marks(self, row: tuple[Any, ...]) -> None:
        number, first_seq = (int(part) for part in str(row[1]).split())
        self._marks = (int(row[0]), number, first_seq)

    def _high_water_marks(self) -> tuple[int, int, int]:
        if self._marks is None:
            self._remember_marks(self._connection.execute(f"SELECT {_HIGH_WATER_MARKS}").fetchone())
        assert self._marks is not None
        return self._marks

    def _newest_seq(self) -> int:
        if self._last_seq is None:
            _, number, first_seq = self._high_water_marks()
            row = self._connection.execute(f"SELECT max(seq) FROM {segment_table(number)}")
            newest = row.fetchone()[0]
            self._last_seq = first_seq - 1 if newest is None else int(newest)
        return self._last_seq

    def _select_in(
        self, sql: str, values: Sequence[Any], *, on: sqlite3.Connection | None = None
    ) -> list[tuple[Any, ...]]:
        connection = self._connection if on is None else on
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows.extend(connection.execute(sql.format(marks=marks), chunk).fetchall())
        return rows

    def active_key_ids(self, key_ids: Collection[int]) -> set[int]:
        if not key_ids or len(key_ids) > IN_CHUNK:
            rows = self._select_in(
                "SELECT id FROM api_keys WHERE status = 'active' AND id IN ({marks})",
                list(key_ids),
            )
            return {row[0] for row in rows}
        # The first statement of every group commit also reads the high-water marks.
        marks = ", ".join("?" for _ in key_ids)
        row = self._connection.execute(
            f"SELECT {_HIGH_WATER_MARKS}, "
            f"(SELECT group_concat(id) FROM api_keys WHERE status = 'active' AND id IN ({marks}))",
            list(key_ids),
        ).fetchone()
        self._remember_marks(row)
        return {int(key_id) for key_id in row[2].split(",")} if row[2] else set()

    def allocate_receipt_ids(self, count: int) -> list[int]:
        last = self._high_water_marks()[0]
        return list(range(last + 1, last + 1 + count))

    def _events_by_seq(self, seqs: Collection[int]) -> list[tuple[str, str]]:
        """(event id, content hash) of the stored events ``seqs``, each read from its segment."""
        firsts = [row[0] for row in self._connection.execute(_SEGMENT_FIRST_SEQS)]
        by_segment: dict[int, list[int]] = {}
        for seq in seqs:
            by_segment.setdefault(bisect.bisect_right(firsts, seq), []).append(seq)
        found: list[tuple[str, str]] = []
        for number, in_segment in by_segment.items():
            if number > 0:
                found.extend(
                    self._select_in(
                        f"SELECT event_id, content_hash FROM {segment_table(number)} "
                        "WHERE seq IN ({marks})",
                        in_segment,
                    )
                )
        return found

    def _sealed_hashes(self, hashes: Sequence[int]) -> set[int]:
        rows = self._select_in(
            "SELECT id_hash FROM event_id_hashes WHERE id_hash IN ({marks})",
            hashes,
            on=self._connection if self._has_merged else self._sealed_reader,
        )
        return {row[0] for row in rows}

    def event_hashes(self, event_ids: Collection[str]) -> dict[str, str]:
        ids = list(event_ids)
        hashes = [event_id_hash(event_id) for event_id in ids]
        seqs = [
            row[0]
            for table in ("event_id_hashes", "recent_event_id_hashes")
            for row in self._select_in(
                f"SELECT seq FROM {table} WHERE id_hash IN ({{marks}})", hashes
            )
        ]
        seqs.extend(
            row[0]
            for row in self._select_in(
                "SELECT seq FROM event_id_collisions WHERE event_id IN ({marks})", ids
            )
        )
        wanted = set(ids)
        return {
            event_id: content_hash
            for event_id, content_hash in self._events_by_seq(seqs)
            if event_id in wanted  # a hash shared with another id finds that id's row too
        }

    def _seal_full_segment(self) -> None:
        """Once the newest segment is full, start the next one."""
        _, number, first_seq = self._high_water_marks()
        last_seq = self._newest_seq()
        if last_seq - first_seq + 1 < self._segment_events:
            return
        self._start_segment(number + 1, last_seq + 1)

    def _start_segment(self, number: int, first_seq: int) -> None:
        """Make segment ``number``, whose first event will have ``first_seq``; write to it.

        The segment before it is sealed first: its sealed-segment indexes are built.
        """
        receipt_mark = self._high_water_marks()[0]
        for statement in seal_segment_sql(number - 1) if number > 1 else []:
            self._connection.execute(statement)
        for statement in create_segment_sql(number):
            self._connection.execute(statement)
        self._connection.execute(
            "INSERT INTO event_segments (id, first_seq, created_at) VALUES (?, ?, ?)",
            (number, first_seq, utc_text(datetime.now(UTC))),
        )
        for statement in events_view_sql(range(1, number + 1)):
            self._connection.execute(statement)
        self._marks = (receipt_mark, number, first_seq)

    def insert_events(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, str]:
        if not rows:
            return {}
        table = segment_table(self._high_water_marks()[1])
        last_seq = self._newest_seq()
        hashes = [event_id_hash(row[0]) for row in rows]
        seqs = range(last_seq + 1, last_seq + 1 + len(rows))
        # Claim each id's hash among the newest segment's unless a sealed one holds it; look
        # the ids up only if a hash was already held: a lookup of every id cost 11% of the
        # writer's time, for retries that are rare.
        sealed = self._sealed_hashes(hashes)
        claims = [
            (id_hash, seq)
            for id_hash, seq in zip(hashes, seqs, strict=True)
            if id_hash not in sealed
        ]
        changes_before = self._connection.total_changes
        _insert_rows(self._connection, _INSERT_RECENT_HASHES, claims)
        if not sealed and self._connection.total_changes - changes_before == len(rows):
            found: dict[str, str] = {}
            new = list(zip(seqs, rows, strict=True))
        else:
            found, new = self._split_known(rows, hashes, seqs, last_seq, sealed)
        changes_before = self._connection.total_changes
        _insert_rows(
            self._connection,
            (f"INSERT OR IGNORE INTO {table} ({_EVENT_SEGMENT_COLUMNS})", ""),
            [(seq, *with_micros_times(row)) for seq, row in new],
        )
        if self._connection.total_changes - changes_before != len(new):
            raise sqlite3.IntegrityError("an event row broke a constraint of its table")
        if new:
            self._last_seq = new[-1][0]
            self._inserted.append((table, new[0][0], new[-1][0]))
            # Last: the sealed hashes were read as of the last commit.
            self._merge_hash_slices(last_seq, self._last_seq)
        self._seal_full_segment()
        return found

    def _merge_hash_slices(self, before: int, after: int) -> None:
        """Move the slices of recent hashes that events ``before`` to ``after`` are due for."""
        step = max(1, self._segment_events // HASH_SLICES)
        due = min(after // step - before // step, HASH_SLICES)
        for position in range(after // step - due + 1, after // step + 1):
            low = -(2**63) + (position % HASH_SLICES) * _SLICE_WIDTH
            bounds = (low, low + _SLICE_WIDTH - 1)
            for statement in _MERGE_SLICE:
                self._connection.execute(statement, bounds)
            self._has_merged = True

    def _split_known(
        self,
        rows: Sequence[tuple[Any, ...]],
        hashes: Sequence[int],
        seqs: Sequence[int],
        last_seq: int,
        sealed: set[int],
    ) -> tuple[dict[str, str], list[tuple[int, tuple[Any, ...]]]]:
        """The ids of ``rows`` already stored (with their content hashes), and the new rows.

        A new row whose hash an earlier id holds is stored with its id in event_id_collisions.
        """
        held = sealed | {
            row[0]
            for row in self._select_in(
                f"SELECT id_hash FROM recent_event_id_hashes WHERE seq <= {last_seq} "
                "AND id_hash IN ({marks})",
                list(hashes),
            )
        }
        found = self.event_hashes(
            [row[0] for row, id_hash in zip(rows, hashes, strict=True) if id_hash in held]
        )
        new: list[tuple[int, tuple[Any, ...]]] = []
        collisions: list[tuple[str, int]] = []
        claimed: set[int] = set()
        for row, id_hash, seq in zip(rows, hashes, seqs, strict=True):
            if row[0] in found:
                continue
            new.append((seq, row))
            if id_hash in held or id_hash in claimed:
                collisions.append((row[0], seq))
            claimed.add(id_hash)
        _insert_rows(self._connection, _INSERT_COLLISIONS, collisions)
        return found, new

    def insert_entities(self, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
        found = self._select_in(
            "SELECT entity_id, content_hash FROM entities WHERE entity_id IN ({marks})",
            list({row[0] for row in rows}),
        )
        existing = {(row[0], row[1]) for row in found}
        _insert_rows(
            self._connection,
            _INSERT_ENTITIES,
            [row for row in rows if (row[0], row[1]) not in existing],
        )
        return existing

    def insert_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        _insert_rows(self._connection, _INSERT_QUARANTINE, rows)

    def insert_receipts(self, rows: Sequence[tuple[Any, ...]]) -> None:
        _insert_rows(self._connection, _INSERT_RECEIPTS, rows)

    def add_rollups(self, stored: Sequence[StoredEvent], *, shard: int) -> None:
        # Counted by SQLite from the rows this transaction inserted (insert_events keeps their
        # seq ranges); only the names, which are no column, are bound from Python.
        for table, first_seq, last_seq in self._inserted:
            for statement in segment_recount_sql(table, shard=shard):
                self._connection.execute(statement, (first_seq, last_seq))
        self._inserted.clear()
        names = name_rows(stored, shard=shard, times_as_micros=True)
        if names:
            self._connection.executemany(_NAME_UPSERT, names)
        logins = login_rows(stored, times_as_micros=True)
        if logins:
            self._connection.executemany(_LOGIN_UPSERT, logins)

    def touch_keys(self, key_ids: Collection[int], used_at: str, stale_before: str) -> None:
        self._connection.executemany(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ? "
            "AND (last_used_at IS NULL OR last_used_at < ?)",
            [(used_at, key_id, stale_before) for key_id in key_ids],
        )

    def held_quarantine(self, ids: Collection[int]) -> set[int]:
        # BEGIN IMMEDIATE already holds the write lock: no other writer can change these rows.
        rows = self._select_in(
            "SELECT id FROM quarantine WHERE status = 'held' AND id IN ({marks})", list(ids)
        )
        return {row[0] for row in rows}

    def resolve_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._connection.executemany(
            "UPDATE quarantine SET status = ?, resolved_at = ? WHERE id = ?",
            [(row[1], row[3], row[0]) for row in rows],
        )
        _insert_rows(self._connection, _INSERT_AUDIT, rows)
        _insert_rows(self._connection, (AUDIT_INSERT_COLUMNS, ""), replay_audit_rows(rows))

    # What a removal (purge, erase) needs: storage/removal.py.
    def exclude_rollup_writers(self) -> None:
        pass  # BEGIN IMMEDIATE already holds the whole database

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, list(parameters)).fetchall()

    def rows_many(self, sql: str, parameters: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(sql, parameters)

    def day_of(self, event_time: Any) -> int:
        return int(event_time) // MICROS_PER_DAY

    def time_value(self, moment: str) -> Any:
        return utc_micros(moment)

    def remove_events(self, seqs: Sequence[int]) -> list[RemovedEvent]:
        firsts = [row[0] for row in self._connection.execute(_SEGMENT_FIRST_SEQS)]
        by_segment: dict[int, list[int]] = {}
        for seq in seqs:
            by_segment.setdefault(bisect.bisect_right(firsts, seq), []).append(seq)
        removed: list[RemovedEvent] = []
        for number, in_segment in sorted(by_segment.items()):
            if number == 0:
                continue
            table = segment_table(number)
            rows = self._select_in(
                f"SELECT {_REMOVED_COLUMNS} FROM {table} WHERE seq IN ({{marks}})", in_segment
            )
            self._select_in(f"DELETE FROM {table} WHERE seq IN ({{marks}})", in_segment)
            removed.extend(RemovedEvent(*row) for row in rows)
        claims = [(event_id_hash(event.event_id), event.seq) for event in removed]
        for table in ("recent_event_id_hashes", "event_id_hashes"):
            self._connection.executemany(
                f"DELETE FROM {table} WHERE id_hash = ? AND seq = ?", claims
            )
        self._connection.executemany(
            "DELETE FROM event_id_collisions WHERE event_id = ? AND seq = ?",
            [(event.event_id, event.seq) for event in removed],
        )
        self._keep_seqs_unused(removed)
        return removed

    def _keep_seqs_unused(self, removed: Sequence[RemovedEvent]) -> None:
        """Never give a removed event's seq to a new one: readers page and resume by seq.

        The writer takes the next seq after the newest segment's last row; when a removal took
        that row, the next segment starts after it instead.
        """
        if not removed:
            return
        self._marks = None
        self._last_seq = None
        _, number, first_seq = self._high_water_marks()
        top = max(event.seq for event in removed)
        if top < first_seq or self._newest_seq() >= top:
            return
        self._last_seq = top
        self._start_segment(number + 1, top + 1)

    def newest_dictionary_id(self) -> int:
        row = self._connection.execute("SELECT coalesce(max(id), 0) FROM raw_dictionaries")
        return int(row.fetchone()[0])

    def stored_dictionary(self, dictionary_id: int) -> Dictionary:
        row = self._connection.execute(_SELECT_DICTIONARY, (dictionary_id,)).fetchone()
        return dictionary_from_row(row)

    def insert_dictionary(self, dictionary: Dictionary, created_at: str) -> int:
        values = dictionary_values(dictionary, created_at)
        cursor = self._connection.execute(_INSERT_DICTIONARY, values)
        return int(cursor.lastrowid or 0)


class _WriterLock:
    """Hands the write lock from one server process to the next without SQLite's long sleeps.

    SQLite's own busy handler sleeps 1, 2, 5 ... up to 100 ms between tries, so two server
    processes on one file took turns so unevenly that the p99 of Learn envelopes reached 7.9 s.
    An ``flock`` on a file beside the database, tried every LOCK_POLL_S, hands over within a
    fraction of a millisecond, and gives up after the same ``busy_timeout`` as SQLite (the
    batch then fails with 503). SQLite's lock still decides correctness; this only orders the
    server processes' writers (the CLI and other tools still wait through ``busy_timeout``).
    """

    def __init__(self, path: Path, *, timeout_ms: int) -> None:
        self._path = path
        self._timeout_s = timeout_ms / 1000
        self._descriptor: int | None = None

    def _acquire(self, descriptor: int) -> None:
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError(
                        "database is locked: another server process kept the writer lock"
                    ) from None
                time.sleep(LOCK_POLL_S)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for one write transaction."""
        if self._descriptor is None:
            self._descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        self._acquire(self._descriptor)
        try:
            yield
        finally:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


class _WalCheckpointer:
    """Copies committed WAL frames into the database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its threshold, on the
    writer's thread; measured on the Learn workload it took 45% of the writer's time. A PASSIVE
    checkpoint from another connection never blocks the writer or readers.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caliper-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection = self._connect()
        try:
            while not self._stopping.wait(CHECKPOINT_INTERVAL_S):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    logger.warning(
                        "WAL checkpoint failed (the writer's backstop remains): %r", error
                    )
        finally:
            connection.close()


class SqliteStore(Store):
    """A Store in one SQLite file."""

    backend = "sqlite"

    def __init__(
        self,
        database_url: str,
        *,
        synchronous: str,
        busy_timeout_ms: int,
        retry_after_s: int,
        query_timeout_ms: int,
        compression: CompressionSettings,
        segment_events: int,
        writer_cache_mib: int = 64,
    ) -> None:
        self.path = sqlite_path(database_url)
        self._segment_events = segment_events
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._writer_cache_mib = writer_cache_mib
        engine = create_engine(f"sqlite:///{self.path}")
        event.listen(engine, "connect", self._on_connect)
        super().__init__(
            engine,
            retry_after_s=retry_after_s,
            query_timeout_ms=query_timeout_ms,
            compression=compression,
        )
        self._writer_connection: sqlite3.Connection | None = None
        self._sealed_reader: sqlite3.Connection | None = None
        self._writer_lock = _WriterLock(
            self.path.with_name(self.path.name + WRITER_LOCK_SUFFIX), timeout_ms=busy_timeout_ms
        )
        self._checkpointer: _WalCheckpointer | None = None

    def _on_connect(self, dbapi_connection: sqlite3.Connection, _record: object) -> None:
        _configure(
            dbapi_connection, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms
        )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        _configure(connection, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms)
        return connection

    def _connect_writer(self) -> sqlite3.Connection:
        connection = self._connect()
        connection.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
        # Negative cache_size is in KiB. The default 2 MiB spilled dirty index pages to the WAL
        # in the middle of each group commit: 64 MiB took the Learn writer from 11k to 18k/s.
        connection.execute(f"PRAGMA cache_size = {-int(self._writer_cache_mib) * 1024}")
        if self._checkpointer is None:
            self._checkpointer = _WalCheckpointer(self._connect)
            self._checkpointer.start()
        return connection

    @contextmanager
    def write_transaction(self) -> Iterator[_SqliteWriteTransaction]:
        """One ``BEGIN IMMEDIATE ... COMMIT`` on the writer connection, under the writer lock."""
        if self._writer_connection is None:
            self._writer_connection = self._connect_writer()
            self._sealed_reader = self._connect()
        connection = self._writer_connection
        sealed_reader = self._sealed_reader
        assert sealed_reader is not None
        with self._writer_lock.held():
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                self._discard_writer()
                raise
            try:
                yield _SqliteWriteTransaction(
                    connection, sealed_reader=sealed_reader, segment_events=self._segment_events
                )
                connection.execute("COMMIT")
            except BaseException:
                try:
                    connection.execute("ROLLBACK")
                except sqlite3.Error:
                    self._discard_writer()
                raise

    @contextmanager
    def time_limit(self, connection: Connection) -> Iterator[None]:
        """A progress handler on this read connection that interrupts it past the deadline.

        SQLite then fails the running statement with "interrupted"; that failure, and only
        when the handler caused it, becomes QueryTimeout.
        """
        reader = cast(sqlite3.Connection, connection.connection.dbapi_connection)
        limit_ms = self.query_timeout_ms
        deadline = time.monotonic() + limit_ms / 1000
        is_expired = False

        def past_deadline() -> bool:
            nonlocal is_expired
            is_expired = time.monotonic() >= deadline
            return is_expired  # true interrupts the statement

        reader.set_progress_handler(past_deadline, TIME_CHECK_STEPS)
        try:
            yield
        except DBAPIError as error:
            if is_expired and isinstance(error.orig, sqlite3.OperationalError):
                raise query_timeout(limit_ms) from error
            raise
        finally:
            reader.set_progress_handler(None, 0)

    def relation_sizes(self) -> list[RelationSize]:
        """Pages of each table and index (``dbstat``), the free pages and the WAL file."""
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT s.name, coalesce(m.tbl_name, s.name), coalesce(m.type, 'table'), "
                "sum(s.pgsize) FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name "
                "GROUP BY s.name"
            ).fetchall()
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
            free_pages = connection.execute("PRAGMA freelist_count").fetchone()[0]
        finally:
            connection.close()
        sizes = [
            RelationSize(
                name,
                "events" if is_segment_table(table) else table,  # the view's parts, as one
                "index" if kind == "index" else "table",
                int(size),
            )
            for name, table, kind, size in rows
        ]
        sizes.append(RelationSize("free pages", "", "free", int(page_size) * int(free_pages)))
        wal = self.path.with_name(self.path.name + "-wal")
        sizes.append(
            RelationSize("write-ahead log", "", "wal", wal.stat().st_size if wal.exists() else 0)
        )
        return sizes

    def plain_rows_table(self) -> Table:
        """The first segment: revision 0006 made the events table of earlier revisions into it."""
        return segment(1)

    def backup_to(self, target: Path) -> int:
        """SQLite's online backup, in one step: one read snapshot, so writers go on meanwhile.

        In steps of some pages, a write between two steps restarts the copy, and under steady
        ingest it would never end. The copy is written beside ``target`` and renamed into place
        once complete and synced, so ``target`` is never a half copy.

        Raises:
            ConfigurationError: ``target`` exists already (a backup never overwrites one).
        """
        if target.exists():
            raise ConfigurationError(
                f"{target} exists; a backup never overwrites a file", field="path"
            )
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        source = self._connect()
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)
                # One self-contained file: the copy's pages go from its WAL into it.
                copy.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                copy.execute("PRAGMA journal_mode = DELETE").fetchall()
                verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise StorageUnavailable(
                        f"the copy failed PRAGMA quick_check: {verdict}", retry_after_s=1
                    )
            finally:
                copy.close()
        finally:
            source.close()
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return target.stat().st_size

    def reclaim_space(self) -> None:
        """Checkpoint the WAL, then VACUUM: SQLite reuses freed pages but never shrinks by itself.

        VACUUM holds the write lock throughout: the server's ingest waits (and answers 503 past
        write_lock_timeout_ms) meanwhile.
        """
        connection = self._connect()
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            connection.close()

    def check_ready(self) -> None:
        """Take and release the write lock on a connection of its own."""
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            _configure(
                connection, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms
            )
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    def _discard_writer(self) -> None:
        if self._writer_connection is not None:
            self._writer_connection.close()
            self._writer_connection = None
        if self._sealed_reader is not None:
            self._sealed_reader.close()
            self._sealed_reader = None

    def close(self) -> None:
        """Stop the checkpointer, close the writer connection and the read pool."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._discard_writer()
        self._writer_lock.close()
        self.engine.dispose()
