"""SQL that reads events back and decides on quarantined items, once for every backend.

Written with SQLAlchemy Core over ``storage.schema``: times are the fixed-width UTC text of
``UtcTime`` on SQLite and PostgreSQL alike, so comparing them as strings orders them as times.
Pages are keyset pages on ``(event_time, seq)`` (or ``(received_at, seq)``): both are fixed once
an event is stored and ``seq`` is unique, so a position stays valid however many events arrive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from caliper_store.errors import QueryTimeout, StorageUnavailable
from caliper_store.storage import audit
from caliper_store.storage.compression import RawCodec
from caliper_store.storage.schema import (
    event_id_collisions,
    event_id_hashes,
    events,
    iri_key,
    quarantine,
    quarantine_audit,
    receipts,
    recent_event_id_hashes,
)
from caliper_store.storage.segments import event_id_hash

logger = logging.getLogger(__name__)

# A read waits in no queue, so a client may try again soon after the database comes back.
READ_RETRY_AFTER_S = 1

# Bounds the statements run on a connection inside it by the store's query_timeout_ms, and
# raises QueryTimeout when they run over (each backend's Store.time_limit).
TimeLimit = Callable[[Connection], AbstractContextManager[None]]


@contextmanager
def no_time_limit(connection: Connection) -> Iterator[None]:
    """A TimeLimit that bounds nothing."""
    del connection  # nothing to install
    yield


def query_timeout(limit_ms: int) -> QueryTimeout:
    """The error of a read stopped at ``limit_ms``, for a backend's TimeLimit to raise."""
    return QueryTimeout(
        f"the query ran past query_timeout_ms={limit_ms} and was stopped; nothing was changed. "
        "Narrow it with an indexed filter (actorId, groupId, objectId, keyId or a time range) "
        "or raise query_timeout_ms",
        limit_ms=limit_ms,
        retry_after_s=READ_RETRY_AFTER_S,
    )


# Columns a filter may name; each is a plain column of ``events``.
FILTER_COLUMNS = frozenset(
    {
        "event_id",
        "event_type",
        "action",
        "actor_id",
        "actor_external_id",
        "object_id",
        "object_type",
        "group_id",
        "session_id",
        "ed_app_id",
        "sensor",
        "api_key_id",
        "caliper_version",
        "event_time",
        "received_at",
    }
)

# IRI columns whose filter index is built on a 64-bit hash column (storage.schema.iri_key).
HASHED_COLUMNS: dict[str, str] = {
    "actor_id": "actor_key",
    "object_id": "object_key",
    "group_id": "group_key",
    "session_id": "session_key",
}

# The normalized columns every result carries, in this order (EventRecord's fields).
RECORD_COLUMNS: tuple[str, ...] = (
    "seq",
    "event_id",
    "event_type",
    "action",
    "actor_id",
    "actor_type",
    "actor_external_id",
    "object_id",
    "object_type",
    "group_id",
    "membership_role",
    "session_id",
    "ed_app_id",
    "sensor",
    "api_key_id",
    "receipt_id",
    "caliper_version",
    "is_extension",
    "has_derived_id",
    "event_time",
    "received_at",
)

QuarantineStatus = Literal["held", "replayed", "discarded"]
QUARANTINE_STATUSES: tuple[QuarantineStatus, ...] = ("held", "replayed", "discarded")


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter on an events column: ``in`` a set of values, or ``>=`` / ``<`` a bound."""

    column: str
    op: Literal["in", ">=", "<"]
    values: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last event's time (event or received time) and seq."""

    time: str
    seq: int


# The time a page is ordered by.
OrderBy = Literal["event_time", "received_at"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event: its normalized columns and, when asked for, its raw JSON as sent."""

    seq: int
    event_id: str
    event_type: str
    action: str
    actor_id: str
    actor_type: str | None
    actor_external_id: str | None
    object_id: str
    object_type: str | None
    group_id: str | None
    membership_role: str | None
    session_id: str | None
    ed_app_id: str | None
    sensor: str | None
    api_key_id: int
    receipt_id: int
    caliper_version: str
    is_extension: bool
    has_derived_id: bool
    event_time: str
    received_at: str
    raw: str | None = None

    def position(self, by: OrderBy = "event_time") -> Position:
        """The keyset position just after this event, in pages ordered ``by``."""
        return Position(self.received_at if by == "received_at" else self.event_time, self.seq)


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """The receipt of the request that delivered an event or a quarantined item."""

    id: int
    api_key_id: int
    sensor: str | None
    send_time: str | None
    data_version: str | None
    is_envelope: bool
    received_at: str
    body_bytes: int
    item_count: int
    stored_count: int
    duplicate_count: int
    quarantined_count: int


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision taken on a quarantined item."""

    id: int
    quarantine_id: int
    action: str
    actor: str
    at: str
    outcome: str | None
    event_id: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """One quarantined item with its reasons and where it stands."""

    id: int
    receipt_id: int
    api_key_id: int
    item_index: int
    event_id: str | None
    caliper_version: str | None
    reason: str
    reasons: list[dict[str, str]]
    received_at: str
    status: str
    resolved_at: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Which quarantined items to list; empty tuples and None mean "any"."""

    statuses: tuple[str, ...] = ("held",)
    reasons: tuple[str, ...] = ()
    api_key_ids: tuple[int, ...] = ()
    ids: tuple[int, ...] = ()
    received_from: str | None = None
    received_to: str | None = None


def _column(name: str) -> Any:
    if name not in FILTER_COLUMNS:
        raise ValueError(f"events cannot be filtered on {name!r}")
    return events.c[name]


def _in(column: Any, values: list[Any]) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = column == values[0] if len(values) == 1 else column.in_(values)
    return clause


def _conditions(conditions: Sequence[Condition], dialect_name: str) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for condition in conditions:
        column = _column(condition.column)
        if condition.op == "in":
            values = list(condition.values)
            if condition.column == "event_id":
                clauses.append(matching_event_ids(dialect_name, [str(value) for value in values]))
                continue
            hashed = HASHED_COLUMNS.get(condition.column)
            if hashed is not None:
                # The index is on the 64-bit hash; the IRI itself rules out any collision.
                keys = list(dict.fromkeys(iri_key(str(value)) for value in values))
                clauses.append(_in(events.c[hashed], keys))
            clauses.append(_in(column, values))
        elif condition.op == ">=":
            clauses.append(column >= condition.values[0])
        else:
            clauses.append(column < condition.values[0])
    return clauses


def _after(position: Position, *, by: OrderBy, is_descending: bool) -> ColumnElement[bool]:
    # Spelled out rather than as a row value, so both SQLite and PostgreSQL range-scan the
    # index on the time with the first term and only check seq on the boundary time.
    time, seq = events.c[by], events.c.seq
    if is_descending:
        return and_(time <= position.time, or_(time < position.time, seq < position.seq))
    return and_(time >= position.time, or_(time > position.time, seq > position.seq))


# Rows fetched at a time when a page is streamed to bound its bytes.
STREAM_ROWS = 100


@dataclass(frozen=True, slots=True)
class EventBatch:
    """A page of events, and whether it ended early on its byte budget."""

    records: list[EventRecord]
    is_cut: bool


# The columns a raw event is kept in, plain or compressed (see storage/compression.py).
RAW_COLUMNS = ("raw", "raw_zstd", "raw_dictionary")


def record_query(*, with_raw: bool) -> Select[Any]:
    """The select of an EventRecord's columns (and the raw event's, when asked for)."""
    columns = [events.c[name] for name in RECORD_COLUMNS]
    if with_raw:
        columns.extend(events.c[name] for name in RAW_COLUMNS)
    return select(*columns)


def record_from_row(row: Sequence[Any], codec: RawCodec, connection: Connection) -> EventRecord:
    """An EventRecord from a row of ``record_query``, its raw event decoded."""
    values = list(row[: len(RECORD_COLUMNS)])
    # Booleans come back as 0/1 from SQLite.
    values[17] = bool(values[17])
    values[18] = bool(values[18])
    if len(row) > len(RECORD_COLUMNS):
        plain, frame, dictionary_id = row[len(RECORD_COLUMNS) :]
        values.append(codec.decode(connection, plain, frame, dictionary_id))
    return EventRecord(*values)


def search_events(
    connection: Connection,
    conditions: Sequence[Condition],
    *,
    codec: RawCodec,
    after: Position | None,
    is_descending: bool,
    limit: int,
    with_raw: bool,
    by: OrderBy = "event_time",
    max_raw_bytes: int | None = None,
) -> EventBatch:
    """One keyset page: up to ``limit`` matching events after ``after``, ordered ``by`` time.

    With raw events and ``max_raw_bytes``, the rows are streamed (a server-side cursor on
    PostgreSQL, whose driver otherwise fetches a whole result) and the page ends after the
    event that takes their raw JSON past ``max_raw_bytes``: ``is_cut`` then says more may
    follow. Other columns are bounded by ``max_id_chars`` at ingest; raw events only by the
    body size.
    """
    query = page_statement(
        conditions,
        dialect_name=connection.dialect.name,
        after=after,
        is_descending=is_descending,
        limit=limit,
        with_raw=with_raw,
        by=by,
    )
    if not with_raw or max_raw_bytes is None:
        rows = connection.execute(query)
        return EventBatch([record_from_row(row, codec, connection) for row in rows], is_cut=False)
    records: list[EventRecord] = []
    held_bytes = 0
    streamed = connection.execution_options(stream_results=True, yield_per=STREAM_ROWS)
    with streamed.execute(query) as rows:
        for row in rows:
            record = record_from_row(row, codec, connection)
            records.append(record)
            held_bytes += len(record.raw or "")
            if held_bytes > max_raw_bytes and len(records) < limit:
                return EventBatch(records, is_cut=True)
    return EventBatch(records, is_cut=False)


def page_statement(
    conditions: Sequence[Condition],
    *,
    dialect_name: str,
    after: Position | None,
    is_descending: bool,
    limit: int,
    with_raw: bool,
    by: OrderBy = "event_time",
) -> Select[Any]:
    """The SELECT of one keyset page (also what tests ask the planner about)."""
    clauses = _conditions(conditions, dialect_name)
    if after is not None:
        clauses.append(_after(after, by=by, is_descending=is_descending))
    query = record_query(with_raw=with_raw).where(*clauses)
    if is_descending:
        query = query.order_by(events.c[by].desc(), events.c.seq.desc())
    else:
        query = query.order_by(events.c[by], events.c.seq)
    return query.limit(limit)


def iter_event_batches(
    engine: Engine,
    conditions: Sequence[Condition],
    *,
    codec: RawCodec,
    batch_events: int,
    with_raw: bool,
    is_descending: bool = False,
    by: OrderBy = "event_time",
    time_limit: TimeLimit = no_time_limit,
    max_raw_bytes: int | None = None,
) -> Iterator[list[EventRecord]]:
    """Every matching event, in time order, ``batch_events`` at a time.

    Each batch is its own short read, so a long export neither holds a snapshot open (which
    would stop SQLite's WAL from checkpointing) nor keeps more than one batch in memory; and
    each batch has a ``time_limit`` of its own, so an export is never cut for its length.
    """
    position: Position | None = None
    while True:
        with engine.connect() as connection, time_limit(connection):
            batch = search_events(
                connection,
                conditions,
                codec=codec,
                after=position,
                is_descending=is_descending,
                limit=batch_events,
                with_raw=with_raw,
                by=by,
                max_raw_bytes=max_raw_bytes,
            )
        if batch.records:
            yield batch.records
        if len(batch.records) < batch_events and not batch.is_cut:
            return
        position = batch.records[-1].position(by)


def count_events(connection: Connection, conditions: Sequence[Condition]) -> int:
    """How many events match (for progress bars)."""
    clauses = _conditions(conditions, connection.dialect.name)
    query = select(func.count()).select_from(events).where(*clauses)
    return int(connection.scalar(query) or 0)


def _receipt(connection: Connection, receipt_id: int) -> ReceiptRecord | None:
    row = connection.execute(select(receipts).where(receipts.c.id == receipt_id)).first()
    if row is None:
        return None
    return ReceiptRecord(
        id=row.id,
        api_key_id=row.api_key_id,
        sensor=row.sensor,
        send_time=row.send_time,
        data_version=row.data_version,
        is_envelope=bool(row.is_envelope),
        received_at=row.received_at,
        body_bytes=row.body_bytes,
        item_count=row.item_count,
        stored_count=row.stored_count,
        duplicate_count=row.duplicate_count,
        quarantined_count=row.quarantined_count,
    )


def matching_event_ids(dialect_name: str, event_ids: Sequence[str]) -> ColumnElement[bool]:
    """The events of these ids, by an index on each backend.

    SQLite's segments have no index on the id text: the ids are found by their hash (or, for a
    shared hash, in event_id_collisions), then compared.
    """
    clause = events.c.event_id.in_(event_ids)
    if dialect_name != "sqlite":
        return clause
    hashes = [event_id_hash(event_id) for event_id in event_ids]
    seqs = union_all(
        select(event_id_hashes.c.seq).where(event_id_hashes.c.id_hash.in_(hashes)),
        select(recent_event_id_hashes.c.seq).where(recent_event_id_hashes.c.id_hash.in_(hashes)),
        select(event_id_collisions.c.seq).where(event_id_collisions.c.event_id.in_(event_ids)),
    )
    return and_(events.c.seq.in_(seqs), clause)


def get_event(
    connection: Connection, event_id: str, codec: RawCodec
) -> tuple[EventRecord, ReceiptRecord | None] | None:
    """One event by id, raw included, with the receipt of the request that brought it."""
    row = connection.execute(
        record_query(with_raw=True)
        .where(matching_event_ids(connection.dialect.name, [event_id]))
        .limit(1)
    ).first()
    if row is None:
        return None
    record = record_from_row(row, codec, connection)
    return record, _receipt(connection, record.receipt_id)


def _quarantine_record(row: Any) -> QuarantineRecord:
    return QuarantineRecord(
        id=row.id,
        receipt_id=row.receipt_id,
        api_key_id=row.api_key_id,
        item_index=row.item_index,
        event_id=row.event_id,
        caliper_version=row.caliper_version,
        reason=row.reason,
        reasons=json.loads(row.reasons),
        received_at=row.received_at,
        status=row.status,
        resolved_at=row.resolved_at,
        raw=row.raw,
    )


def _quarantine_clauses(selection: QuarantineFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if selection.statuses:
        clauses.append(quarantine.c.status.in_(list(selection.statuses)))
    if selection.reasons:
        clauses.append(quarantine.c.reason.in_(list(selection.reasons)))
    if selection.api_key_ids:
        clauses.append(quarantine.c.api_key_id.in_(list(selection.api_key_ids)))
    if selection.ids:
        clauses.append(quarantine.c.id.in_(list(selection.ids)))
    if selection.received_from is not None:
        clauses.append(quarantine.c.received_at >= selection.received_from)
    if selection.received_to is not None:
        clauses.append(quarantine.c.received_at < selection.received_to)
    return clauses


def search_quarantine(
    connection: Connection,
    selection: QuarantineFilter,
    *,
    before_id: int | None,
    limit: int,
) -> list[QuarantineRecord]:
    """Quarantined items, newest first, keyset-paged on the id."""
    clauses = _quarantine_clauses(selection)
    if before_id is not None:
        clauses.append(quarantine.c.id < before_id)
    query = select(quarantine).where(*clauses).order_by(quarantine.c.id.desc()).limit(limit)
    return [_quarantine_record(row) for row in connection.execute(query)]


def quarantine_ids(connection: Connection, selection: QuarantineFilter) -> list[int]:
    """The ids of every matching quarantined item, oldest first (for bulk replay)."""
    query = select(quarantine.c.id).where(*_quarantine_clauses(selection)).order_by(quarantine.c.id)
    return [int(value) for value in connection.execute(query).scalars()]


def get_quarantined(
    connection: Connection, quarantine_id: int
) -> tuple[QuarantineRecord, ReceiptRecord | None, list[AuditRecord]] | None:
    """One quarantined item, the receipt it came with, and every decision taken on it."""
    row = connection.execute(select(quarantine).where(quarantine.c.id == quarantine_id)).first()
    if row is None:
        return None
    item = _quarantine_record(row)
    audit = [
        AuditRecord(
            id=entry.id,
            quarantine_id=entry.quarantine_id,
            action=entry.action,
            actor=entry.actor,
            at=entry.at,
            outcome=entry.outcome,
            event_id=entry.event_id,
            note=entry.note,
        )
        for entry in connection.execute(
            select(quarantine_audit)
            .where(quarantine_audit.c.quarantine_id == quarantine_id)
            .order_by(quarantine_audit.c.id)
        )
    ]
    return item, _receipt(connection, item.receipt_id), audit


def discard_quarantined(
    connection: Connection, ids: Sequence[int], *, actor: str, at: str, note: str | None
) -> list[int]:
    """Mark held items discarded, with one audit row each; return the ids that were held.

    The status check and the change are one UPDATE, so two people discarding (or one
    discarding while another replays) cannot both act on an item. The caller commits.
    """
    if not ids:
        return []
    changed = connection.execute(
        update(quarantine)
        .where(quarantine.c.id.in_(list(ids)), quarantine.c.status == "held")
        .values(status="discarded", resolved_at=at)
        .returning(quarantine.c.id)
    )
    discarded = sorted(int(value) for value in changed.scalars())
    if discarded:
        connection.execute(
            insert(quarantine_audit),
            [
                {
                    "quarantine_id": item_id,
                    "action": "discarded",
                    "actor": actor,
                    "at": at,
                    "outcome": None,
                    "event_id": None,
                    "note": note,
                }
                for item_id in discarded
            ],
        )
        for item_id in discarded:
            audit.record(
                connection,
                at=at,
                actor=actor,
                action="quarantine_discarded",
                target=f"quarantine {item_id}",
                rows=1,
            )
    return discarded


@contextmanager
def _reading(what: str, *, retry_after_s: int = READ_RETRY_AFTER_S) -> Iterator[None]:
    """Turn a database failure while reading ``what`` into StorageUnavailable (503).

    Logged here, once, with the driver's reason but never the statement's parameters, which
    hold the caller's filter values. A read stopped by the time limit is logged too, and stays
    a QueryTimeout: the database is fine, the query was too slow.

    Raises:
        StorageUnavailable: the database could not be reached or did not answer the read.
        QueryTimeout: the read ran past the time limit (raised by the backend's TimeLimit).
    """
    try:
        yield
    except QueryTimeout as error:
        logger.warning("reading %s stopped at query_timeout_ms=%d", what, error.limit_ms)
        raise
    except DBAPIError as error:
        cause = error.orig if error.orig is not None else error
        lines = str(cause).splitlines()
        logger.error(
            "reading %s failed: %s: %s", what, type(cause).__name__, lines[0] if lines else ""
        )
        raise StorageUnavailable(
            f"the database could not be read ({what}); nothing was changed",
            retry_after_s=retry_after_s,
        ) from error


class _Reader:
    """A reader's connections: each read is one connection, bounded in time, errors mapped."""

    def __init__(
        self,
        engine: Engine,
        *,
        time_limit: TimeLimit = no_time_limit,
        retry_after_s: int = READ_RETRY_AFTER_S,
    ) -> None:
        self._engine = engine
        self._time_limit = time_limit
        self._retry_after_s = retry_after_s

    @contextmanager
    def _connection(self, what: str) -> Iterator[Connection]:
        with (
            _reading(what, retry_after_s=self._retry_after_s),
            self._engine.connect() as connection,
            self._time_limit(connection),
        ):
            yield connection


class EventReader(_Reader):
    """Reads events back for a Store: pages, batches for export, counts, one event.

    Every read that fails in the database raises StorageUnavailable (see ``_reading``); every
    read (each export batch apart) runs under ``time_limit`` and raises QueryTimeout past it.
    Raw events come back exactly as sent, whatever form they are kept in (``codec``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        codec: RawCodec,
        time_limit: TimeLimit = no_time_limit,
        retry_after_s: int = READ_RETRY_AFTER_S,
    ) -> None:
        super().__init__(engine, time_limit=time_limit, retry_after_s=retry_after_s)
        self._codec = codec

    def page(
        self,
        conditions: Sequence[Condition],
        *,
        after: Position | None,
        is_descending: bool,
        limit: int,
        with_raw: bool,
        by: OrderBy = "event_time",
        max_raw_bytes: int | None = None,
    ) -> EventBatch:
        """One keyset page of matching events (see :func:`search_events`)."""
        with self._connection("events") as connection:
            return search_events(
                connection,
                conditions,
                codec=self._codec,
                after=after,
                is_descending=is_descending,
                limit=limit,
                with_raw=with_raw,
                by=by,
                max_raw_bytes=max_raw_bytes,
            )

    def batches(
        self,
        conditions: Sequence[Condition],
        *,
        batch_events: int,
        with_raw: bool,
        by: OrderBy = "event_time",
        max_raw_bytes: int | None = None,
    ) -> Iterator[list[EventRecord]]:
        """Every matching event in time order, one short read per batch."""
        found = iter_event_batches(
            self._engine,
            conditions,
            codec=self._codec,
            batch_events=batch_events,
            with_raw=with_raw,
            by=by,
            time_limit=self._time_limit,
            max_raw_bytes=max_raw_bytes,
        )
        while True:
            with _reading("events", retry_after_s=self._retry_after_s):
                batch = next(found, None)
            if batch is None:
                return
            yield batch

    def count(self, conditions: Sequence[Condition]) -> int:
        """How many events match."""
        with self._connection("events") as connection:
            return count_events(connection, conditions)

    def get(self, event_id: str) -> tuple[EventRecord, ReceiptRecord | None] | None:
        """One event with its receipt, or None."""
        with self._connection("an event") as connection:
            return get_event(connection, event_id, self._codec)


class QuarantineDesk(_Reader):
    """Lists quarantined items, shows one with its history, discards held ones.

    Every read that fails in the database raises StorageUnavailable (see ``_reading``); every
    read runs under ``time_limit`` and raises QueryTimeout past it. A discard is a write and
    has no time limit.
    """

    def page(
        self, selection: QuarantineFilter, *, before_id: int | None, limit: int
    ) -> list[QuarantineRecord]:
        """Matching items, newest first."""
        with self._connection("quarantine") as connection:
            return search_quarantine(connection, selection, before_id=before_id, limit=limit)

    def held_by_reason(self) -> dict[str, int]:
        """Items held now, per first reason (for metrics; the quarantine_status_id index)."""
        with self._connection("quarantine") as connection:
            rows = connection.execute(
                select(quarantine.c.reason, func.count())
                .where(quarantine.c.status == "held")
                .group_by(quarantine.c.reason)
            ).all()
        return {reason: count for reason, count in rows}

    def ids(self, selection: QuarantineFilter) -> list[int]:
        """Ids of every matching item, oldest first."""
        with self._connection("quarantine") as connection:
            return quarantine_ids(connection, selection)

    def get(
        self, quarantine_id: int
    ) -> tuple[QuarantineRecord, ReceiptRecord | None, list[AuditRecord]] | None:
        """One item with its receipt and audit trail, or None."""
        with self._connection("quarantine") as connection:
            return get_quarantined(connection, quarantine_id)

    def discard(self, ids: Sequence[int], *, actor: str, at: str, note: str | None) -> list[int]:
        """Discard the held items among ``ids`` in one transaction; return those discarded."""
        with self._engine.begin() as connection:
            return discard_quarantined(connection, ids, actor=actor, at=at, note=note)
