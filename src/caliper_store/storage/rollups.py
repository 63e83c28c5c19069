"""Counts kept with the events, in the transaction that stores them (``rollup_*`` tables).

Per course, per course and person, per course and source, per day and key.

A report over a whole store (the course list, the overview) reads these thousands of rows
instead of millions of events. They are exact because they are written by the commit that
stores the events they count, from the events that commit actually stored: a duplicate, a
conflict or a quarantined item never reaches them, a replayed item counts once it is stored,
a late event adds to the day and course of its eventTime, and a crash loses them together with
the events or not at all. ``reports verify`` recomputes them from the events.

The database does the counting, in one INSERT ... SELECT ... GROUP BY ... ON CONFLICT per
table: SQLite over the rows the commit inserted (by seq), PostgreSQL over arrays of them.
Tallying in Python and upserting row by row cost 16 µs an event against 4.7 (SQLite, Learn
batches), which took Learn ingest to 0.87 of the rate without rollups. Course names are no
events column, so they alone are upserted from Python (``named_groups``).

Several PostgreSQL writers commit at once: the course, source and daily rows are kept per
writer ``shard`` (by process), so two writers never wait on each other's counter row, and
readers add the shards up. Rows are upserted in key order, so writers lock them in one order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from caliper_store.storage.records import EventRow
from caliper_store.storage.schema import iri_key, utc_micros

# Writers of one database whose counter rows never collide (PostgreSQL; SQLite has one writer).
ROLLUP_SHARDS = 16
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


# The group fields a course is named by, in order: a CourseSection's name, else its number.
GROUP_NAME_FIELDS = ("name", "courseNumber", "title", "label")
# Longer names are cut to this many characters where reports keep them.
MAX_GROUP_NAME_CHARS = 200


def group_name(group: Any) -> str | None:
    """The name a group (course or section) gives itself, if it is inline and gives one."""
    if not isinstance(group, dict):
        return None
    for name in GROUP_NAME_FIELDS:
        value = group.get(name)
        if isinstance(value, str) and value.strip():
            return value[:MAX_GROUP_NAME_CHARS]
    return None


def writer_shard() -> int:
    """This process's shard of the counter rows."""
    return os.getpid() % ROLLUP_SHARDS


class GroupCount(NamedTuple):
    """A ``rollup_groups`` row: a course's events, first and last eventTime, newest name."""

    group_key: int
    shard: int
    group_id: str
    events: int
    first_event_time: str
    last_event_time: str
    name: str | None
    name_event_time: str | None


class StoredEvent(NamedTuple):
    """What the rollups need of an event a commit stored, and of the request that brought it."""

    event_time: str
    group_id: str | None
    group_name: str | None
    actor_id: str
    actor_type: str | None
    api_key_id: int
    sensor: str | None
    # Not a rollup: the actor's login, for actor_logins (storage/logins.py).
    actor_login: str | None = None

    @classmethod
    def of(cls, row: EventRow, api_key_id: int, sensor: str | None) -> StoredEvent:
        """The part of a stored row the rollups count."""
        return cls(
            row.event_time,
            row.group_id,
            row.group_name,
            row.actor_id,
            row.actor_type,
            api_key_id,
            sensor,
            row.actor_login,
        )


def named_groups(stored: Iterable[StoredEvent], *, shard: int) -> list[GroupCount]:
    """Rows that carry only the courses' newest names of ``stored``, adding no events.

    Upserted (``name_upsert_sql``) after the counts of the same events: each row's eventTime
    is one the counts already took, so first and last stay as they are.
    """
    names: dict[str, tuple[str, str]] = {}
    for event in stored:
        if event.group_name is not None and event.group_id is not None:
            held = names.get(event.group_id)
            if held is None or event.event_time >= held[1]:
                names[event.group_id] = (event.group_name, event.event_time)
    return sorted(
        GroupCount(_key(group_id), shard, group_id, 0, time, time, name, time)
        for group_id, (name, time) in names.items()
    )


def name_rows(
    stored: Iterable[StoredEvent], *, shard: int, times_as_micros: bool
) -> list[tuple[Any, ...]]:
    """``named_groups`` as parameters of ``name_upsert_sql`` (SQLite binds times as integers)."""
    rows = named_groups(stored, shard=shard)
    if not times_as_micros:
        return [tuple(row) for row in rows]
    return [
        (
            row.group_key,
            row.shard,
            row.group_id,
            row.events,
            utc_micros(row.first_event_time),
            utc_micros(row.last_event_time),
            row.name,
            None if row.name_event_time is None else utc_micros(row.name_event_time),
        )
        for row in rows
    ]


_NEWER_NAME = (
    "excluded.name IS NOT NULL AND (rollup_groups.name_event_time IS NULL "
    "OR excluded.name_event_time >= rollup_groups.name_event_time)"
)


def name_upsert_sql(mark: str) -> str:
    """The upsert of ``named_groups`` rows, with the backend's parameter mark."""
    marks = ", ".join([mark] * len(GroupCount._fields))
    return (
        f"INSERT INTO rollup_groups ({', '.join(GroupCount._fields)}) VALUES ({marks}) "
        "ON CONFLICT (group_key, shard) DO UPDATE SET "
        f"name = CASE WHEN {_NEWER_NAME} THEN excluded.name ELSE rollup_groups.name END, "
        f"name_event_time = CASE WHEN {_NEWER_NAME} THEN excluded.name_event_time "
        "ELSE rollup_groups.name_event_time END"
    )


def _recount_upserts(rows: str, *, dialect_name: str, shard: int, person: str) -> list[str]:
    """The four upserts that add the stored events selected by ``rows`` (FROM ... WHERE ...).

    ``person`` is the SQL for "one of the rows is a Person". PostgreSQL takes the rows in key
    order, so that its concurrent writers lock them in one order; SQLite has one writer.
    """
    is_postgres = dialect_name == "postgresql"
    least, greatest = ("LEAST", "GREATEST") if is_postgres else ("min", "max")

    def order(keys: str) -> str:
        return f" ORDER BY {keys}" if is_postgres else ""

    def earliest_latest(table: str) -> str:
        return (
            f"first_event_time = {least}({table}.first_event_time, excluded.first_event_time), "
            f"last_event_time = {greatest}({table}.last_event_time, excluded.last_event_time)"
        )

    day = utc_day_sql(dialect_name)
    sensor = "COALESCE(sensor, '')"
    return [
        "INSERT INTO rollup_groups (group_key, shard, group_id, events, first_event_time, "
        f"last_event_time) SELECT group_key, {shard}, min(group_id), count(*), min(event_time), "
        f"max(event_time) {rows} AND group_key IS NOT NULL GROUP BY group_key"
        f"{order('group_key')} ON CONFLICT (group_key, shard) DO UPDATE SET "
        f"events = rollup_groups.events + excluded.events, {earliest_latest('rollup_groups')}",
        "INSERT INTO rollup_group_actors (group_key, actor_key, actor_id, is_person, events, "
        f"first_event_time, last_event_time) SELECT group_key, actor_key, min(actor_id), "
        f"{person}, count(*), min(event_time), max(event_time) {rows} "
        f"AND group_key IS NOT NULL GROUP BY group_key, actor_key{order('group_key, actor_key')} "
        "ON CONFLICT (group_key, actor_key) DO UPDATE SET "
        "is_person = rollup_group_actors.is_person OR excluded.is_person, "
        "events = rollup_group_actors.events + excluded.events, "
        f"{earliest_latest('rollup_group_actors')}",
        "INSERT INTO rollup_group_sources (group_key, shard, api_key_id, sensor, events) "
        f"SELECT group_key, {shard}, api_key_id, {sensor}, count(*) {rows} "
        f"AND group_key IS NOT NULL GROUP BY group_key, api_key_id, {sensor}"
        f"{order('1, 3, 4')} ON CONFLICT (group_key, shard, api_key_id, sensor) DO UPDATE SET "
        "events = rollup_group_sources.events + excluded.events",
        "INSERT INTO rollup_daily_keys (day, shard, api_key_id, events) "
        f"SELECT {day}, {shard}, api_key_id, count(*) {rows} GROUP BY {day}, api_key_id"
        f"{order('1, 3')} ON CONFLICT (day, shard, api_key_id) DO UPDATE SET "
        "events = rollup_daily_keys.events + excluded.events",
    ]


def segment_recount_sql(table: str, *, shard: int) -> list[str]:
    """SQLite: the upserts that add the events of ``table`` with seq between two marks.

    The writer's own rows of this commit; the names come apart (``named_groups``).
    """
    return _recount_upserts(
        f"FROM {table} WHERE seq BETWEEN ? AND ?",
        dialect_name="sqlite",
        shard=shard,
        person="max(CASE WHEN actor_type = 'Person' THEN 1 ELSE 0 END)",
    )


# PostgreSQL: the stored events of a commit, COPYed into a temporary table of the writer's
# connection and counted from there. Passing them as arrays instead cost 65 µs an event (the
# driver builds array literals in Python); row-by-row upserts from a Python tally, 16.
POSTGRES_STAGING_SQL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS rollup_stored (group_key bigint, actor_key bigint, "
    "group_id text, actor_id text, is_person bool, api_key_id int, sensor text, "
    "event_time timestamptz) ON COMMIT DELETE ROWS"
)
POSTGRES_STAGING_COPY = (
    "COPY rollup_stored (group_key, actor_key, group_id, actor_id, is_person, api_key_id, "
    "sensor, event_time) FROM STDIN"
)


def postgres_recount_sql(*, shard: int) -> str:
    """PostgreSQL: one statement that adds the commit's stored events held in ``rollup_stored``.

    Four upserts, three of them in WITH clauses, so a commit of one Canvas event pays one round
    trip for them. Each takes its rows in key order, so concurrent writers lock in one order.
    """
    upserts = _recount_upserts(
        "FROM rollup_stored WHERE true",
        dialect_name="postgresql",
        shard=shard,
        person="bool_or(is_person)",
    )
    clauses = ", ".join(f"counted_{n} AS ({sql})" for n, sql in enumerate(upserts[:-1]))
    return f"WITH {clauses} {upserts[-1]}"


def staged_rows(stored: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """The rows of ``rollup_stored`` for these events."""
    return [
        (
            iri_key(event.group_id),
            iri_key(event.actor_id),
            event.group_id,
            event.actor_id,
            event.actor_type == "Person",
            event.api_key_id,
            event.sensor or "",
            event.event_time,
        )
        for event in stored
    ]


def _key(iri: str) -> int:
    key = iri_key(iri)
    assert key is not None
    return key


def utc_day_sql(dialect_name: str, column: str = "event_time") -> str:
    """SQL for the UTC day (days since 1970, floored, also before 1970) of a time column.

    One spelling per backend for everything that counts by day: the rollups, their recount
    and the overview's count of events.
    """
    if dialect_name == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 86400) AS INTEGER)"
    return _floor_units_sql(column, MICROS_PER_DAY)


def _floor_units_sql(column: str, unit: int) -> str:
    """SQLite: whole ``unit``s of an integer column, floored (SQLite's ``/`` rounds to zero)."""
    return f"(({column} - ((({column} % {unit}) + {unit}) % {unit})) / {unit})"


def utc_hour_sql(dialect_name: str, column: str, *, is_micros: bool = False) -> str:
    """SQL for the UTC hour of a time column as text, ``2024-03-04T14`` (what reports group by).

    ``is_micros``: the column is integer microseconds on SQLite (``UtcMicros``), else text.
    """
    if dialect_name == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
    if not is_micros:
        return f"substr({column}, 1, 13)"
    whole_seconds = _floor_units_sql(column, MICROS_PER_SECOND)
    return f"strftime('%Y-%m-%dT%H', {whole_seconds}, 'unixepoch')"


def recount_sql(dialect_name: str) -> dict[str, str]:
    """For each rollup, the SELECT that counts from the stored events what it should hold.

    Its rows are in the order of the rollup's columns, without ``shard`` (sums over writers).
    The courses' names are not here: they need the raw JSON (``reports``).
    """
    is_person = (
        "COALESCE(bool_or(actor_type = 'Person'), false)"
        if dialect_name == "postgresql"
        else "max(CASE WHEN actor_type = 'Person' THEN 1 ELSE 0 END)"
    )
    day = utc_day_sql(dialect_name)
    return {
        "groups": "SELECT group_key, min(group_id), count(*), min(event_time), max(event_time) "
        "FROM events WHERE group_key IS NOT NULL GROUP BY group_key",
        "group_actors": f"SELECT group_key, actor_key, min(actor_id), {is_person}, count(*), "
        "min(event_time), max(event_time) FROM events WHERE group_key IS NOT NULL "
        "GROUP BY group_key, actor_key",
        "group_sources": "SELECT group_key, api_key_id, COALESCE(sensor, ''), count(*) "
        "FROM events WHERE group_key IS NOT NULL "
        "GROUP BY group_key, api_key_id, COALESCE(sensor, '')",
        "daily_keys": f"SELECT {day}, api_key_id, count(*) FROM events GROUP BY {day}, api_key_id",
    }


# What each rollup holds, its writers' shards added up, in the columns of recount_sql.
STORED_SQL = {
    "groups": "SELECT group_key, min(group_id), sum(events), min(first_event_time), "
    "max(last_event_time) FROM rollup_groups GROUP BY group_key",
    "group_actors": "SELECT group_key, actor_key, actor_id, is_person, events, first_event_time, "
    "last_event_time FROM rollup_group_actors",
    "group_sources": "SELECT group_key, api_key_id, sensor, sum(events) FROM rollup_group_sources "
    "GROUP BY group_key, api_key_id, sensor",
    "daily_keys": "SELECT day, api_key_id, sum(events) FROM rollup_daily_keys "
    "GROUP BY day, api_key_id",
}
# How many leading columns of each make its key.
KEY_COLUMNS = {"groups": 1, "group_actors": 2, "group_sources": 3, "daily_keys": 2}


def backfill_sql(dialect_name: str) -> list[str]:
    """INSERT ... SELECT statements that fill empty rollup tables from the stored events.

    All but the courses' names, which need the raw JSON (``reports.fill_group_names``).
    """
    counts = recount_sql(dialect_name)
    return [
        "INSERT INTO rollup_groups (group_key, group_id, events, first_event_time, "
        f"last_event_time, shard) SELECT *, 0 FROM ({counts['groups']}) AS counted",
        "INSERT INTO rollup_group_actors (group_key, actor_key, actor_id, is_person, events, "
        f"first_event_time, last_event_time) {counts['group_actors']}",
        "INSERT INTO rollup_group_sources (group_key, api_key_id, sensor, events, shard) "
        f"SELECT *, 0 FROM ({counts['group_sources']}) AS counted",
        "INSERT INTO rollup_daily_keys (day, api_key_id, events, shard) "
        f"SELECT *, 0 FROM ({counts['daily_keys']}) AS counted",
    ]
