"""The production backend: PostgreSQL 15+, monthly partitions, COPY on the hot path.

The writer holds its own psycopg connection; reads go through SQLAlchemy's pool. Event-id
uniqueness lives in ``event_ids`` (unpartitioned), so "one id, once, across all months" holds on
a partitioned ``events``; rows are inserted in event-id order so two processes sending the same
events cannot deadlock on each other's ids.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

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
from caliper_store.storage.records import EventRow, WriteRequest
from caliper_store.storage.removal import RemovedEvent
from caliper_store.storage.rollups import (
    POSTGRES_STAGING_COPY,
    POSTGRES_STAGING_SQL,
    StoredEvent,
    name_rows,
    name_upsert_sql,
    postgres_recount_sql,
    staged_rows,
)
from caliper_store.storage.schema import EVENT_COLUMNS
from caliper_store.storage.search import query_timeout
from caliper_store.storage.usage import RelationSize

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
# Partition DDL waits at most this long for readers holding the table, then the batch retries.
PARTITION_LOCK_TIMEOUT_MS = 5_000
PARTITION_LOCK_KEY = 0x63616C69  # "cali": serializes partition creation across processes
MONTHS_AHEAD = 2
# How long dropping an emptied partition may keep ingest waiting on the events table.
DROP_LOCK_TIMEOUT_MS = 100

_EVENT_TIME = EVENT_COLUMNS.index("event_time")
_RECEIVED_AT = EVENT_COLUMNS.index("received_at")
# Binary COPY: PostgreSQL parses no text for the columns of each event (Learn, 2 processes:
# 15,650-15,780 events/s with text COPY, 17,490-17,850 binary, in alternating runs).
_COPY_EVENTS = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_EVENT_COPY_TYPES = [
    {
        "has_derived_id": "bool",
        "is_extension": "bool",
        "api_key_id": "int4",
        "receipt_id": "int8",
        "actor_key": "int8",
        "object_key": "int8",
        "group_key": "int8",
        "event_time": "timestamptz",
        "received_at": "timestamptz",
        "raw_zstd": "bytea",
        "raw_dictionary": "int4",
        "rule_set_id": "int4",
        "session_key": "int8",
    }.get(name, "text")
    for name in EVENT_COLUMNS
]
# Each table and index of the current schema, a partitioned one summed over its partitions
# (pg_partition_tree lists nothing for a table that is not partitioned).
_RELATION_SIZES = """
SELECT t.relname, t.relname, 'table',
       CASE WHEN t.relkind = 'p'
            THEN (SELECT sum(pg_table_size(p.relid)) FROM pg_partition_tree(t.oid::regclass) p)
            ELSE pg_table_size(t.oid) END
FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p') AND NOT t.relispartition
UNION ALL
SELECT i.relname, t.relname, 'index',
       CASE WHEN i.relkind = 'I'
            THEN (SELECT sum(pg_relation_size(p.relid)) FROM pg_partition_tree(i.oid::regclass) p)
            ELSE pg_relation_size(i.oid) END
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND NOT t.relispartition
"""
_REMOVED_COLUMNS = ", ".join(RemovedEvent._fields)
_COPY_RECEIPTS = (
    "COPY receipts (id, api_key_id, sensor, send_time, data_version, is_envelope, received_at, "
    "body_bytes, item_count, stored_count, duplicate_count, quarantined_count, dropped_count, "
    "rule_set_id) FROM STDIN"
)


def _month_bounds(year: int, month: int) -> tuple[str, str]:
    start = f"{year:04d}-{month:02d}-01 00:00:00+00"
    if (year, month) == (9999, 12):
        return start, "infinity"
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, f"{end_year:04d}-{end_month:02d}-01 00:00:00+00"


def _month_of(utc_text: str) -> tuple[int, int]:
    return int(utc_text[0:4]), int(utc_text[5:7])


def partition_name(year: int, month: int) -> str:
    """``events_p2024_01``: one table per calendar month (UTC)."""
    return f"events_p{year:04d}_{month:02d}"


_SELECT_DICTIONARY, _INSERT_DICTIONARY = dictionary_sql("%s")


_NAME_UPSERT = name_upsert_sql("%s")
_LOGIN_UPSERT = login_upsert_sql("%s", dialect_name="postgresql")
# The advisory lock that rollup writers share and a removal takes alone. Writers' upserts
# run in one statement whose row order PostgreSQL picks, so a removal that took row locks
# one by one could deadlock with them (seen: a purge under ingest load).
ROLLUP_LOCK = 0x63616C5F726F6C6C  # "cal_roll"


class _PostgresWriteTransaction:
    """The writer's SQL for one group commit on PostgreSQL."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._cursor = connection.cursor()

    def active_key_ids(self, key_ids: Collection[int]) -> set[int]:
        self._cursor.execute(
            "SELECT id FROM api_keys WHERE status = 'active' AND id = ANY(%s)", (list(key_ids),)
        )
        return {row[0] for row in self._cursor.fetchall()}

    def allocate_receipt_ids(self, count: int) -> list[int]:
        self._cursor.execute(
            "SELECT nextval('receipts_id_seq') FROM generate_series(1, %s)", (count,)
        )
        return [row[0] for row in self._cursor.fetchall()]

    def event_hashes(self, event_ids: Collection[str]) -> dict[str, str]:
        self._cursor.execute(
            "SELECT event_id, content_hash FROM event_ids WHERE event_id = ANY(%s)",
            (list(event_ids),),
        )
        return {row[0]: row[1] for row in self._cursor.fetchall()}

    def insert_events(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, str]:
        if not rows:
            return {}
        # One lock order for every process: sorted ids cannot deadlock against each other.
        ordered = sorted(rows, key=lambda row: row[0])
        self._cursor.execute(
            "INSERT INTO event_ids (event_id, content_hash, event_time) "
            "SELECT * FROM unnest(%s::text[], %s::varchar[], %s::timestamptz[]) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (
                [row[0] for row in ordered],
                [row[2] for row in ordered],
                [row[_EVENT_TIME] for row in ordered],
            ),
        )
        inserted = {row[0] for row in self._cursor.fetchall()}
        existing: dict[str, str] = {}
        if len(inserted) < len(ordered):
            existing = self.event_hashes([row[0] for row in ordered if row[0] not in inserted])
        with self._cursor.copy(_COPY_EVENTS) as copy:
            copy.set_types(_EVENT_COPY_TYPES)
            received: dict[str, datetime] = {}
            for row in ordered:
                if row[0] in inserted:
                    values = list(row)
                    values[_EVENT_TIME] = datetime.fromisoformat(row[_EVENT_TIME])
                    arrival = row[_RECEIVED_AT]
                    if arrival not in received:
                        received[arrival] = datetime.fromisoformat(arrival)
                    values[_RECEIVED_AT] = received[arrival]
                    copy.write_row(values)
        return existing

    def insert_entities(self, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
        existing: set[tuple[str, str]] = set()
        for row in rows:
            self._cursor.execute(
                "INSERT INTO entities (entity_id, content_hash, caliper_version, entity_type, "
                "api_key_id, receipt_id, received_at, raw) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (entity_id, content_hash) DO NOTHING RETURNING seq",
                row,
            )
            if self._cursor.fetchone() is None:
                existing.add((row[0], row[1]))
        return existing

    def insert_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(
                "INSERT INTO quarantine (receipt_id, api_key_id, item_index, event_id, "
                "caliper_version, reason, reasons, received_at, raw) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def insert_receipts(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._cursor.copy(_COPY_RECEIPTS) as copy:
            for row in rows:
                copy.write_row(row)

    def add_rollups(self, stored: Sequence[StoredEvent], *, shard: int) -> None:
        # Counted by PostgreSQL from a staging copy of the stored events; only the names, which
        # are no column, are upserted row by row (few: only producers that name their courses).
        # Writers share the rollup lock; a removal holds it alone (exclude_rollup_writers).
        self._cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", (ROLLUP_LOCK,))
        with self._cursor.copy(POSTGRES_STAGING_COPY) as copy:
            for row in staged_rows(stored):
                copy.write_row(row)
        self._cursor.execute(postgres_recount_sql(shard=shard))
        names = name_rows(stored, shard=shard, times_as_micros=False)
        if names:
            self._cursor.executemany(_NAME_UPSERT, names)
        logins = login_rows(stored, times_as_micros=False)
        if logins:
            self._cursor.executemany(_LOGIN_UPSERT, logins)

    def held_quarantine(self, ids: Collection[int]) -> set[int]:
        # FOR UPDATE: a concurrent replay of the same item waits here, then finds it resolved.
        self._cursor.execute(
            "SELECT id FROM quarantine WHERE status = 'held' AND id = ANY(%s) "
            "ORDER BY id FOR UPDATE",
            (list(ids),),
        )
        return {row[0] for row in self._cursor.fetchall()}

    def resolve_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self._cursor.executemany(
            "UPDATE quarantine SET status = %s, resolved_at = %s WHERE id = %s",
            [(row[1], row[3], row[0]) for row in rows],
        )
        self._cursor.executemany(
            "INSERT INTO quarantine_audit "
            "(quarantine_id, action, actor, at, outcome, event_id, note) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        self._cursor.executemany(
            f"{AUDIT_INSERT_COLUMNS} VALUES (%s, %s, %s, %s, %s, %s)", replay_audit_rows(rows)
        )

    # What a removal (purge, erase) needs: storage/removal.py.
    def exclude_rollup_writers(self) -> None:
        self._cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), list(parameters))
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def rows_many(self, sql: str, parameters: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("?", "%s"), parameters)

    def day_of(self, event_time: Any) -> int:
        days: int = math.floor(event_time.timestamp() / 86_400)
        return days

    def time_value(self, moment: str) -> Any:
        return datetime.fromisoformat(moment)

    def remove_events(self, seqs: Sequence[int]) -> list[RemovedEvent]:
        # By seq alone every partition's primary key is probed; the batch's time bounds, read
        # first, let PostgreSQL skip the months the batch has no event in. They are taken in
        # Python: asked for min(event_time), PostgreSQL walks the time index from one end
        # until a row of the batch turns up (481 ms for 40 events of 2 million; 4 ms so).
        self._cursor.execute("SELECT event_time FROM events WHERE seq = ANY(%s)", (list(seqs),))
        times = [row[0] for row in self._cursor.fetchall()]
        if not times:
            return []
        first, last = min(times), max(times)
        self._cursor.execute(
            "DELETE FROM events WHERE seq = ANY(%s) AND event_time BETWEEN %s AND %s "
            f"RETURNING {_REMOVED_COLUMNS}",
            (list(seqs), first, last),
        )
        removed = [RemovedEvent(*row) for row in self._cursor.fetchall()]
        self._cursor.execute(
            "DELETE FROM event_ids WHERE event_id = ANY(%s)",
            ([event.event_id for event in removed],),
        )
        return removed

    def newest_dictionary_id(self) -> int:
        self._cursor.execute("SELECT coalesce(max(id), 0) FROM raw_dictionaries")
        row = self._cursor.fetchone()
        return int(row[0]) if row else 0

    def stored_dictionary(self, dictionary_id: int) -> Dictionary:
        self._cursor.execute(_SELECT_DICTIONARY, (dictionary_id,))
        return dictionary_from_row(self._cursor.fetchone())

    def insert_dictionary(self, dictionary: Dictionary, created_at: str) -> int:
        values = dictionary_values(dictionary, created_at)
        self._cursor.execute(_INSERT_DICTIONARY + " RETURNING id", values)
        row = self._cursor.fetchone()
        assert row is not None
        return int(row[0])

    def touch_keys(self, key_ids: Collection[int], used_at: str, stale_before: str) -> None:
        self._cursor.execute(
            "UPDATE api_keys SET last_used_at = %s WHERE id = ANY(%s) "
            "AND (last_used_at IS NULL OR last_used_at < %s)",
            (used_at, list(key_ids), stale_before),
        )


class PostgresStore(Store):
    """A Store on a PostgreSQL server."""

    backend = "postgresql"

    def __init__(
        self,
        database_url: str,
        *,
        pool_size: int,
        lock_timeout_ms: int,
        retry_after_s: int,
        query_timeout_ms: int,
        compression: CompressionSettings,
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql+psycopg")
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        engine = create_engine(
            url,
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        super().__init__(
            engine,
            retry_after_s=retry_after_s,
            query_timeout_ms=query_timeout_ms,
            compression=compression,
        )
        self._lock_timeout_ms = lock_timeout_ms
        self._writer_connection: psycopg.Connection[Any] | None = None
        self._known_months: set[tuple[int, int]] | None = None

    def _connect_writer(self) -> psycopg.Connection[Any]:
        connection = psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
        connection.execute(f"SET lock_timeout = {int(self._lock_timeout_ms)}")
        # The rollups' staging table, made once for the connection's life (autocommit: no
        # later rollback can take it away).
        connection.execute(POSTGRES_STAGING_SQL)
        return connection

    @contextmanager
    def write_transaction(self) -> Iterator[_PostgresWriteTransaction]:
        """One transaction on the writer connection; a broken connection is replaced next time."""
        if self._writer_connection is None or self._writer_connection.closed:
            self._writer_connection = self._connect_writer()
        connection = self._writer_connection
        try:
            with connection.transaction():
                yield _PostgresWriteTransaction(connection)
        except BaseException as error:
            if connection.broken or connection.closed:
                self._discard_writer()
            if isinstance(error, psycopg.errors.CheckViolation):
                # No partition for a row: a purge dropped a month this process thought it had.
                self._known_months = None
            raise

    def drop_past_partitions(self, before: str) -> list[str]:
        """Drop each month's partition that ends by ``before`` and that a purge has emptied.

        Each drop is its own transaction, which holds the lock on ``events`` that DROP needs
        (ingest waits for it) for at most DROP_LOCK_TIMEOUT_MS, and drops only a partition found
        empty under that lock, so no event written meanwhile can go with it.
        """
        dropped = []
        cutoff = datetime.fromisoformat(before)
        for year, month in sorted(self._partition_months()):
            _, end = _month_bounds(year, month)
            if end == "infinity" or datetime.fromisoformat(end) > cutoff:
                continue
            name = partition_name(year, month)
            with psycopg.connect(self._conninfo, connect_timeout=CONNECT_TIMEOUT_S) as connection:
                try:
                    connection.execute(f"SET LOCAL lock_timeout = {DROP_LOCK_TIMEOUT_MS}")
                    connection.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                    if connection.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone() is None:
                        connection.execute(f"DROP TABLE {name}")
                        dropped.append(name)
                except psycopg.errors.LockNotAvailable:
                    logger.info("partition %s not dropped: ingest held events; next purge", name)
                    connection.rollback()
        if dropped:
            self._known_months = None
        return dropped

    def _partition_months(self) -> set[tuple[int, int]]:
        with self.engine.connect() as connection:
            names = connection.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'events'::regclass"
                )
            ).scalars()
            return {
                (int(name[8:12]), int(name[13:15])) for name in names if name.startswith("events_p")
            }

    @contextmanager
    def time_limit(self, connection: Connection) -> Iterator[None]:
        """``SET LOCAL statement_timeout`` for this read's transaction (gone at its rollback).

        The server cancels a statement past it (SQLSTATE 57014, QueryCanceled), which becomes
        QueryTimeout; a cancel that comes sooner (an operator's pg_cancel_backend) does not.
        """
        limit_ms = self.query_timeout_ms
        started = time.monotonic()
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(limit_ms)}")
        try:
            yield
        except DBAPIError as error:
            is_late = time.monotonic() - started >= limit_ms / 1000
            if is_late and isinstance(error.orig, psycopg.errors.QueryCanceled):
                raise query_timeout(limit_ms) from error
            raise

    def prepare_for_traffic(self, now: datetime) -> None:
        """Partitions for this month and the next few, so ordinary traffic never waits on DDL."""
        self.create_partitions_ahead(now.year, now.month)

    def prepare_batch(self, requests: Sequence[WriteRequest]) -> None:
        """Create the monthly partitions this batch's events need, before the write transaction."""
        months = {
            _month_of(item.event_time)
            for request in requests
            for item in request.items
            if isinstance(item, EventRow)
        }
        if self._known_months is None or not months <= self._known_months:
            self.ensure_partitions(months)

    def ensure_partitions(self, months: Collection[tuple[int, int]]) -> None:
        """Create missing monthly partitions (idempotent, safe across processes)."""
        with self.engine.begin() as connection:
            connection.execute(text(f"SET LOCAL lock_timeout = {PARTITION_LOCK_TIMEOUT_MS}"))
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": PARTITION_LOCK_KEY}
            )
            existing = set(
                connection.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'events'::regclass"
                    )
                ).scalars()
            )
            for year, month in sorted(months):
                name = partition_name(year, month)
                if name in existing:
                    continue
                start, end = _month_bounds(year, month)
                connection.execute(
                    text(
                        f"CREATE TABLE {name} PARTITION OF events "
                        f"FOR VALUES FROM ('{start}') TO ('{end}')"
                    )
                )
                existing.add(name)
                logger.info("created partition %s", name)
        self._known_months = {
            (int(name[8:12]), int(name[13:15])) for name in existing if name.startswith("events_p")
        }

    def create_partitions_ahead(self, year: int, month: int) -> None:
        """Partitions for this month and the next few, so ordinary traffic never waits on DDL."""
        months = []
        for _ in range(MONTHS_AHEAD + 1):
            months.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        self.ensure_partitions(months)

    def relation_sizes(self) -> list[RelationSize]:
        """Every table (with TOAST) and index of the schema, summed over partitions."""
        with self.engine.connect() as connection:
            rows = connection.execute(text(_RELATION_SIZES)).all()
        return [RelationSize(row[0], row[1], row[2], int(row[3] or 0)) for row in rows]

    def reclaim_space(self) -> None:
        """VACUUM (ANALYZE) events: the old row versions' space becomes reusable at once.

        The files shrink only under VACUUM FULL, which locks the table: left to the operator.
        """
        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute("VACUUM (ANALYZE) events")

    def check_ready(self) -> None:
        """The server answers, is not a read-only replica, and can start a write transaction."""
        with self.engine.begin() as connection:
            if connection.execute(text("SELECT pg_is_in_recovery()")).scalar():
                raise RuntimeError("the PostgreSQL server is a read-only replica")
            connection.execute(text("SELECT txid_current()"))

    def _discard_writer(self) -> None:
        if self._writer_connection is not None:
            self._writer_connection.close()
            self._writer_connection = None

    def close(self) -> None:
        """Close the writer connection and the pool."""
        self._discard_writer()
        self.engine.dispose()
