"""One consistent read of many tables: what a report needs, on either backend.

A report reads events, receipts and quarantine together and must not count an event that
arrived between two of its statements in one figure and not in another. A snapshot is one
read transaction (SQLite's WAL snapshot; PostgreSQL's REPEATABLE READ), under the store's time
limit, with database failures mapped as every other read is (``search._reading``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import date, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Select,
    Subquery,
    Table,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
    union_all,
)

from caliper_store.storage.compression import RawCodec
from caliper_store.storage.rollups import (
    KEY_COLUMNS,
    STORED_SQL,
    recount_sql,
    utc_day_sql,
    utc_hour_sql,
)
from caliper_store.storage.schema import (
    actor_logins,
    api_keys,
    entities,
    event_segments,
    events,
    quarantine,
    receipts,
    rollup_daily_keys,
    rollup_group_actors,
    rollup_group_sources,
    rollup_groups,
)
from caliper_store.storage.search import (
    RAW_COLUMNS,
    STREAM_ROWS,
    Condition,
    TimeLimit,
    _conditions,
    _reading,
)
from caliper_store.storage.segments import MAX_COMPOUND_TERMS, segment

EPOCH_DAY = date(1970, 1, 1)
# Rows of raw events fetched by seq in one statement (SQLite binds at most 32,766 values).
RAW_LOOKUP_CHUNK = 1_000


def _day_text(day: int) -> str:
    """The ISO date of a count of days since 1970 (as ``utc_day_sql`` gives)."""
    return (EPOCH_DAY + timedelta(days=int(day))).isoformat()


def _hour_text(hour: str) -> str:
    """The ``utc_text`` of the start of an hour as ``utc_hour_sql`` gives it."""
    return f"{hour}:00:00.000000Z"


def _nearest_rank(count: int, percent: int) -> int:
    """The 1-based place of the nearest-rank percentile among ``count`` (at least 1) values.

    ceil(percent * count / 100), in integers: no float rounds a place to the next one.
    """
    return (count * percent + 99) // 100


def _lag_micros_sql(dialect_name: str) -> str:
    """SQL for an event's received time minus its eventTime, in microseconds."""
    if dialect_name == "postgresql":
        return "CAST(round(extract(epoch FROM received_at - event_time) * 1000000) AS BIGINT)"
    return "received_at - event_time"


class GroupRollup(NamedTuple):
    """A course as its rollup counts it (see storage/rollups.py)."""

    group_key: int
    group_id: str
    events: int
    first_event_time: str
    last_event_time: str
    name: str | None
    name_event_time: str | None


class ReceiptHour(NamedTuple):
    """The requests of one key and sensor received in one UTC hour, as their receipts count."""

    api_key_id: int
    sensor: str | None
    hour: str
    envelopes: int
    items: int
    stored: int
    duplicates: int
    quarantined: int
    last_seen: str


class QuarantineHour(NamedTuple):
    """Items of one key and sensor quarantined in one UTC hour for one first reason."""

    api_key_id: int
    sensor: str | None
    hour: str
    reason: str
    items: int


class LagHour(NamedTuple):
    """Received time minus eventTime of the events of one key and sensor received in one hour.

    Nearest-rank p50 and p95 and the maximum, in microseconds; ``events`` how many were stored.
    """

    api_key_id: int
    sensor: str | None
    hour: str
    events: int
    p50_micros: int
    p95_micros: int
    max_micros: int


class EventSource(Protocol):
    """What the reports that can also run on ClickHouse read: a ``Snapshot`` has all of it."""

    def events(
        self,
        conditions: Sequence[Condition],
        columns: Sequence[str],
        *,
        with_raw: bool = False,
        is_newest_first: bool = False,
    ) -> Iterator[tuple[object, ...]]:
        """The chosen columns of every matching event, in ``(event_time, seq)`` order.

        A column may also be one of ``MICROS_COLUMNS``.
        """

    def raw_events(self, seqs: Sequence[int]) -> dict[int, str]:
        """The raw JSON of the events with these seqs."""

    def newest_received_at(self) -> str | None:
        """When the newest event arrived."""

    def group_rollups(self) -> list[GroupRollup]:
        """Every course with its counts and newest name."""

    def key_labels(self) -> dict[int, str]:
        """The labels of the API keys, by id."""


# Columns ``events`` returns besides the table's: the two times as integer microseconds since
# 1970, for reports, which compare and count them for every event they read.
EVENT_TIME_MICROS = "event_time_micros"
RECEIVED_AT_MICROS = "received_at_micros"
MICROS_COLUMNS = {EVENT_TIME_MICROS: "event_time", RECEIVED_AT_MICROS: "received_at"}
# Rows fetched at a time by a read without the raw JSON: a round trip each on PostgreSQL.
PLAIN_STREAM_ROWS = 2_000

# A read of events as ``Snapshot.events`` takes it: conditions, columns, raw, newest first.
EventRead = tuple[tuple[Condition, ...], tuple[str, ...], bool, bool]


class Snapshot:
    """Reads on one connection inside one read transaction (see the module docstring).

    With ``shares_reads``, a read of events made twice (the same conditions and columns) and
    raw JSON read twice come from memory the second time: the dashboard's course page runs
    three reports over the same course's events. Within one snapshot nothing changes, so the
    answers are the same; the rows read are held until the snapshot ends.
    """

    def __init__(
        self, connection: Connection, codec: RawCodec, *, shares_reads: bool = False
    ) -> None:
        self._connection = connection
        self._codec = codec
        self._shares_reads = shares_reads
        self._events_read: dict[EventRead, list[tuple[object, ...]]] = {}
        self._raw_read: dict[int, str] = {}

    def events(
        self,
        conditions: Sequence[Condition],
        columns: Sequence[str],
        *,
        with_raw: bool = False,
        is_newest_first: bool = False,
    ) -> Iterator[tuple[object, ...]]:
        """The chosen columns of every matching event, in ``(event_time, seq)`` order, streamed.

        With ``with_raw``, each row ends with the raw JSON as sent; ``is_newest_first`` reverses
        the order.
        """
        if not self._shares_reads:
            yield from self._streamed(conditions, columns, with_raw, is_newest_first)
            return
        read = (tuple(conditions), tuple(columns), with_raw, is_newest_first)
        rows = self._events_read.get(read)
        if rows is None:
            rows = list(self._streamed(conditions, columns, with_raw, is_newest_first))
            self._events_read[read] = rows
        yield from rows

    def _streamed(
        self,
        conditions: Sequence[Condition],
        columns: Sequence[str],
        with_raw: bool,
        is_newest_first: bool,
    ) -> Iterator[tuple[object, ...]]:
        chosen = [self._column(name) for name in columns]
        if with_raw:
            chosen.extend(events.c[name] for name in RAW_COLUMNS)
        query = (
            select(*chosen)
            .where(*_conditions(conditions, self._connection.dialect.name))
            .order_by(
                *(
                    (events.c.event_time.desc(), events.c.seq.desc())
                    if is_newest_first
                    else (events.c.event_time, events.c.seq)
                )
            )
        )
        streamed = self._connection.execution_options(
            stream_results=True, yield_per=STREAM_ROWS if with_raw else PLAIN_STREAM_ROWS
        )
        width = len(columns)
        with streamed.execute(query) as rows:
            for row in rows:
                if not with_raw:
                    yield tuple(row)
                    continue
                plain, frame, dictionary_id = row[width:]
                raw = self._codec.decode(self._connection, plain, frame, dictionary_id)
                yield (*row[:width], raw)

    def _column(self, name: str) -> Any:
        """An events column by name, or one of ``MICROS_COLUMNS`` (SQLite keeps the integer)."""
        time_column = MICROS_COLUMNS.get(name)
        if time_column is None:
            return events.c[name]
        if self._connection.dialect.name == "postgresql":
            return literal_column(
                f"CAST(extract(epoch FROM {time_column}) * 1000000 AS BIGINT)", BigInteger
            ).label(name)
        return type_coerce(events.c[time_column], BigInteger).label(name)

    def raw_events(self, seqs: Sequence[int]) -> dict[int, str]:
        """The raw JSON as sent of the events with these seqs."""
        found: dict[int, str] = {}
        if self._shares_reads:
            found = {seq: self._raw_read[seq] for seq in seqs if seq in self._raw_read}
        wanted = sorted(set(seqs) - found.keys())
        for start in range(0, len(wanted), RAW_LOOKUP_CHUNK):
            chunk = wanted[start : start + RAW_LOOKUP_CHUNK]
            query = select(events.c.seq, *(events.c[name] for name in RAW_COLUMNS)).where(
                events.c.seq.in_(chunk)
            )
            for seq, plain, frame, dictionary_id in self._connection.execute(query):
                found[seq] = self._codec.decode(self._connection, plain, frame, dictionary_id)
        if self._shares_reads:
            self._raw_read.update(found)
        return found

    def newest_received_at(self) -> str | None:
        """When the newest stored event was received (``receipts`` cover every stored event)."""
        value = self._connection.scalar(  # walks receipts_received_at back from the newest
            select(receipts.c.received_at)
            .where(receipts.c.stored_count > 0)
            .order_by(receipts.c.received_at.desc())
            .limit(1)
        )
        return None if value is None else str(value)

    def receipt_hours(self, since: str, until: str) -> list[ReceiptHour]:
        """Per key, sensor and UTC hour, the requests received in ``[since, until)``.

        Added up by the database: a day of a store that Canvas sends to is 30,000 receipts.
        """
        hour: Any = literal_column(utc_hour_sql(self._connection.dialect.name, "received_at"))
        columns = receipts.c
        query = (
            select(
                columns.api_key_id,
                columns.sensor,
                hour,
                func.count(),
                func.sum(columns.item_count),
                func.sum(columns.stored_count),
                func.sum(columns.duplicate_count),
                func.sum(columns.quarantined_count),
                func.max(columns.received_at),
            )
            .where(columns.received_at >= since, columns.received_at < until)
            .group_by(columns.api_key_id, columns.sensor, hour)
        )
        return [
            ReceiptHour(
                int(key),
                sensor,
                _hour_text(at),
                int(envelopes),
                int(items),
                int(stored),
                int(duplicates),
                int(quarantined),
                str(last),
            )
            for key, sensor, at, envelopes, items, stored, duplicates, quarantined, last in (
                self._connection.execute(query)
            )
        ]

    def quarantine_hours(self, since: str, until: str) -> list[QuarantineHour]:
        """Items quarantined in ``[since, until)``, whatever became of them since.

        Per key, sensor (of the request that brought them), UTC hour and first reason.
        """
        hour: Any = literal_column(
            utc_hour_sql(self._connection.dialect.name, "quarantine.received_at")
        )
        held = quarantine.c
        query = (
            select(held.api_key_id, receipts.c.sensor, hour, held.reason, func.count())
            .select_from(quarantine.outerjoin(receipts, receipts.c.id == held.receipt_id))
            .where(held.received_at >= since, held.received_at < until)
            .group_by(held.api_key_id, receipts.c.sensor, hour, held.reason)
        )
        return [
            QuarantineHour(int(key), sensor, _hour_text(at), str(reason), int(items))
            for key, sensor, at, reason, items in self._connection.execute(query)
        ]

    def lag_hours(self, since: str, until: str) -> list[LagHour]:
        """Per key, sensor and UTC hour received in ``[since, until)``, the stored events' lags.

        A day of a busy store is 30,000 events; read as report rows they cost 10 µs each.
        PostgreSQL ranks each hour's lags itself (``percentile_disc`` is the nearest rank);
        SQLite computes each event's hour and lag and sorts them, and each hour's sorted lags
        give their ranks here (1.5 µs an event; its window functions cost 3.5).
        """
        dialect_name = self._connection.dialect.name
        hour: Any = literal_column(utc_hour_sql(dialect_name, "received_at", is_micros=True))
        lag: Any = literal_column(_lag_micros_sql(dialect_name))
        received = (events.c.received_at >= since, events.c.received_at < until)
        if dialect_name == "postgresql":
            return self._ranked_lag_hours(hour, lag, received)
        query = (
            select(events.c.api_key_id, events.c.sensor, hour, lag)
            .where(*received)
            .order_by(events.c.api_key_id, events.c.sensor, hour, lag)
        )
        found = []
        rows = self._connection.execute(query)
        for (key, sensor, at), group in itertools.groupby(rows, key=lambda row: row[:3]):
            lags = [int(row[3]) for row in group]
            found.append(
                LagHour(
                    int(key),
                    sensor,
                    _hour_text(at),
                    len(lags),
                    lags[_nearest_rank(len(lags), 50) - 1],
                    lags[_nearest_rank(len(lags), 95) - 1],
                    lags[-1],
                )
            )
        return found

    def _ranked_lag_hours(self, hour: Any, lag: Any, received: tuple[Any, ...]) -> list[LagHour]:
        """PostgreSQL: ``lag_hours`` ranked by ordered-set aggregates, one row an hour back."""
        lags = select(events.c.api_key_id, events.c.sensor, hour.label("hour"), lag.label("lag"))
        ranked = lags.where(*received).subquery("lags")

        def at_rank(percent: int) -> Any:
            return func.percentile_disc(percent / 100).within_group(ranked.c.lag)

        group = (ranked.c.api_key_id, ranked.c.sensor, ranked.c.hour)
        query = select(
            *group, func.count(), at_rank(50), at_rank(95), func.max(ranked.c.lag)
        ).group_by(*group)
        return [
            LagHour(int(key), sensor, _hour_text(at), int(size), int(p50), int(p95), int(most))
            for key, sensor, at, size, p50, p95, most in self._connection.execute(query)
        ]

    def key_last_seen(self, since: str, until: str) -> dict[int, str]:
        """Each key that sent a request in ``[since, until)``: when it sent the last one."""
        columns = receipts.c
        query = (
            select(columns.api_key_id, func.max(columns.received_at))
            .where(columns.received_at >= since, columns.received_at < until)
            .group_by(columns.api_key_id)
        )
        return {int(key): str(last) for key, last in self._connection.execute(query)}

    def daily_event_counts(self, since: str, until: str) -> list[tuple[str, int, int]]:
        """``(UTC day, key id, events)`` for the events whose eventTime is in ``[since, until)``.

        Counted by the database, not row by row here: a month of a busy store is a million rows.
        """
        day: Any = literal_column(utc_day_sql(self._connection.dialect.name)).label("day")
        query = (
            select(day, events.c.api_key_id, func.count())
            .where(events.c.event_time >= since, events.c.event_time < until)
            .group_by(day, events.c.api_key_id)
        )
        counts = [
            (_day_text(found_day), int(key_id), int(count))
            for found_day, key_id, count in self._connection.execute(query)
        ]
        return sorted(counts)

    def held_by_reason(self) -> dict[str, int]:
        """Items held in quarantine now, by their first reason."""
        query = (
            select(quarantine.c.reason, func.count())
            .where(quarantine.c.status == "held")
            .group_by(quarantine.c.reason)
        )
        return {reason: int(count) for reason, count in self._connection.execute(query)}

    def group_rollups(self) -> list[GroupRollup]:
        """Every course's rollup, its writers' shards added up."""
        found: dict[int, GroupRollup] = {}
        for row in self._connection.execute(select(rollup_groups)):
            held = found.get(row.group_key)
            if held is None:
                found[row.group_key] = GroupRollup(
                    row.group_key,
                    row.group_id,
                    int(row.events),
                    row.first_event_time,
                    row.last_event_time,
                    row.name,
                    row.name_event_time,
                )
                continue
            is_newer_name = row.name is not None and (
                held.name_event_time is None or row.name_event_time > held.name_event_time
            )
            found[row.group_key] = GroupRollup(
                held.group_key,
                held.group_id,
                held.events + int(row.events),
                min(held.first_event_time, row.first_event_time),
                max(held.last_event_time, row.last_event_time),
                row.name if is_newer_name else held.name,
                row.name_event_time if is_newer_name else held.name_event_time,
            )
        return list(found.values())

    def group_people(
        self, since: str, until: str, *, most_spanning: int
    ) -> tuple[dict[int, tuple[int, int]], list[tuple[int, str]]]:
        """Per course, its Person actors and those with a first or last event in the period.

        Also the Person actors whose events span ``[since, until)``, first before and last
        after it: whether they had an event in it needs the events. At most ``most_spanning``
        + 1 of them (more, and the caller counts the period's events instead). Counted by the
        database: a store of 10 million events has hundreds of thousands of (course, person)
        rows.
        """
        columns = rollup_group_actors.c
        first, last = columns.first_event_time, columns.last_event_time
        touches = or_(and_(first >= since, first < until), and_(last >= since, last < until))
        query = (
            select(
                columns.group_key,
                func.count(),
                func.sum(case((touches, 1), else_=0)),
            )
            .where(columns.is_person)
            .group_by(columns.group_key)
        )
        counts = {
            int(key): (int(people), int(active or 0))
            for key, people, active in self._connection.execute(query)
        }
        spanning = (
            select(columns.group_key, columns.actor_id)
            .where(columns.is_person, first < since, last >= until)
            .limit(most_spanning + 1)
        )
        return counts, [(int(key), str(actor)) for key, actor in self._connection.execute(spanning)]

    def active_people(self, since: str, until: str) -> dict[int, int]:
        """Per course, the Person actors with an event in ``[since, until)``, from the events.

        Counted in the database from the period's events. On SQLite each arrival segment is
        asked apart for the two columns: through the events view SQLite reads whole rows, a
        page each where event times lie scattered, while a sealed segment's ``people_time``
        index holds all it needs (2 million events: 74 ms for a week, against 272-284).
        """

        def period(table: Table) -> Select[tuple[Any, Any]]:
            columns = table.c
            return select(columns.group_key, columns.actor_key).where(
                columns.event_time >= since,
                columns.event_time < until,
                columns.group_key.is_not(None),
                columns.actor_type == "Person",
            )

        found: Subquery
        if self._connection.dialect.name == "sqlite":
            numbers = list(self._connection.scalars(select(event_segments.c.id)))
            parts = [
                union_all(
                    *(period(segment(n)) for n in numbers[start : start + MAX_COMPOUND_TERMS])
                ).subquery()
                for start in range(0, len(numbers), MAX_COMPOUND_TERMS)
            ]
            if not parts:
                return {}
            found = parts[0]
            if len(parts) > 1:  # past SQLite's limit on the terms of one compound SELECT
                found = union_all(
                    *(select(part.c.group_key, part.c.actor_key) for part in parts)
                ).subquery()
        else:
            found = period(events).subquery()
        query = select(found.c.group_key, func.count(func.distinct(found.c.actor_key))).group_by(
            found.c.group_key
        )
        return {int(key): int(count) for key, count in self._connection.execute(query)}

    def group_source_rollups(self) -> list[tuple[int, int, str, int]]:
        """``(group key, key id, sensor or '', events)``, shards added up."""
        columns = rollup_group_sources.c
        query = select(
            columns.group_key, columns.api_key_id, columns.sensor, func.sum(columns.events)
        ).group_by(columns.group_key, columns.api_key_id, columns.sensor)
        return [(int(g), int(k), str(s), int(n)) for g, k, s, n in self._connection.execute(query)]

    def daily_key_rollups(self, first_day: int, last_day: int) -> list[tuple[str, int, int]]:
        """``(UTC day, key id, events)`` for days ``first_day`` to ``last_day`` (since 1970)."""
        columns = rollup_daily_keys.c
        query = (
            select(columns.day, columns.api_key_id, func.sum(columns.events))
            .where(columns.day >= first_day, columns.day <= last_day)
            .group_by(columns.day, columns.api_key_id)
        )
        rows = self._connection.execute(query)
        return sorted((_day_text(day), int(key_id), int(count)) for day, key_id, count in rows)

    def rollup_tables(
        self, *, recounted: bool
    ) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
        """Each rollup as stored (shards added up), or as the events count it now.

        Keyed by each rollup's key columns; values are the other columns, as the database
        returns them (comparable between the two forms).
        """
        statements = recount_sql(self._connection.dialect.name) if recounted else STORED_SQL
        tables = {}
        for name, statement in statements.items():
            width = KEY_COLUMNS[name]
            rows = self._connection.exec_driver_sql(statement)
            tables[name] = {
                tuple(row[:width]): tuple(
                    bool(value) if name == "group_actors" and position == 1 else value
                    for position, value in enumerate(row[width:])
                )
                for row in rows
            }
        return tables

    def has_event(self, conditions: Sequence[Condition]) -> bool:
        """Whether any stored event matches."""
        query = (
            select(events.c.seq)
            .where(*_conditions(conditions, self._connection.dialect.name))
            .limit(1)
        )
        return self._connection.execute(query).first() is not None

    def quarantine_items(self) -> Iterator[tuple[int, int, str, str, str, str]]:
        """Every quarantined item, whatever its status, streamed (for a person's rights).

        Rows are (id, key id, received at, status, reasons as JSON, raw).
        """
        query = select(
            quarantine.c.id,
            quarantine.c.api_key_id,
            quarantine.c.received_at,
            quarantine.c.status,
            quarantine.c.reasons,
            quarantine.c.raw,
        ).order_by(quarantine.c.id)
        streamed = self._connection.execution_options(stream_results=True, yield_per=STREAM_ROWS)
        with streamed.execute(query) as rows:
            for row in rows:
                yield row.id, row.api_key_id, row.received_at, row.status, row.reasons, row.raw

    def entity_items(self) -> Iterator[tuple[int, str, str, str]]:
        """Every stored entity description: (seq, entity id, type, raw), streamed."""
        query = select(
            entities.c.seq, entities.c.entity_id, entities.c.entity_type, entities.c.raw
        ).order_by(entities.c.seq)
        streamed = self._connection.execution_options(stream_results=True, yield_per=STREAM_ROWS)
        with streamed.execute(query) as rows:
            for row in rows:
                yield row.seq, row.entity_id, row.entity_type, row.raw

    def login_pairs(self, values: Sequence[str]) -> list[tuple[str, str]]:
        """The (login, actor id) pairs kept where the login or the actor id is one of ``values``."""
        if not values:
            return []
        query = select(actor_logins.c.login, actor_logins.c.actor_id).where(
            or_(actor_logins.c.login.in_(values), actor_logins.c.actor_id.in_(values))
        )
        return [(str(login), str(actor_id)) for login, actor_id in self._connection.execute(query)]

    def key_labels(self) -> dict[int, str]:
        """Every API key's label by id (labels are names people chose, never secrets)."""
        rows = self._connection.execute(select(api_keys.c.id, api_keys.c.label))
        return {key_id: label for key_id, label in rows}


@contextmanager
def read_snapshot(
    engine: Engine, codec: RawCodec, time_limit: TimeLimit | None, *, shares_reads: bool = False
) -> Iterator[Snapshot]:
    """A :class:`Snapshot`, rolled back at the end (it never writes); no time limit if None.

    Raises:
        StorageUnavailable: the database could not be reached or did not answer.
        QueryTimeout: the reads together ran past the store's query time limit.
    """
    with _reading("a report"), engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin(), nullcontext() if time_limit is None else time_limit(connection):
            if connection.dialect.name == "sqlite":
                # pysqlite opens a transaction only before a write; a read snapshot needs BEGIN.
                connection.exec_driver_sql("BEGIN")
            yield Snapshot(connection, codec, shares_reads=shares_reads)
