"""Counts kept with the events, in the transaction that stores them (``rollup_*`` tables).

Per course, per course and person, per course and source, per day and key.

A report over a whole store (the course list, the overview) reads these thousands of rows
instead of millions of events. They are exact because they are written by the commit that
stores the events they count, from the events that commit actually stored: a duplicate, a
conflict or a quarantined item never reaches them, a replayed item counts once it is stored,
a late event adds to the day and course of its eventTime, and a crash loses them together with
the events or not at all. ``reports verify`` recomputes them from the events.

Several PostgreSQL writers commit at once: the course, source and daily rows are kept per
writer ``shard`` (by process), so two writers never wait on each other's counter row, and
readers add the shards up. Rows are upserted in key order, so writers lock them in one order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from caliper_store.storage.records import EventRow
from caliper_store.storage.schema import iri_key, utc_micros

# Writers of one database whose counter rows never collide (PostgreSQL; SQLite has one writer).
ROLLUP_SHARDS = 16
MICROS_PER_DAY = 86_400_000_000


def writer_shard() -> int:
    """This process's shard of the counter rows."""
    return os.getpid() % ROLLUP_SHARDS


class GroupCount(NamedTuple):
    """``rollup_groups``: a course's events, first and last eventTime, newest name."""

    group_key: int
    shard: int
    group_id: str
    events: int
    first_event_time: str
    last_event_time: str
    name: str | None
    name_event_time: str | None


class GroupActorCount(NamedTuple):
    """``rollup_group_actors``: one actor's events in one course."""

    group_key: int
    actor_key: int
    actor_id: str
    is_person: bool
    events: int
    first_event_time: str
    last_event_time: str


class GroupSourceCount(NamedTuple):
    """``rollup_group_sources``: a course's events from one key and sensor."""

    group_key: int
    shard: int
    api_key_id: int
    sensor: str
    events: int


class DailyKeyCount(NamedTuple):
    """``rollup_daily_keys``: one key's events on one UTC day of eventTime."""

    day: int
    shard: int
    api_key_id: int
    events: int


@dataclass
class Rollups:
    """What one commit adds to the rollup tables, each list in key order."""

    groups: list[GroupCount] = field(default_factory=list)
    group_actors: list[GroupActorCount] = field(default_factory=list)
    group_sources: list[GroupSourceCount] = field(default_factory=list)
    daily_keys: list[DailyKeyCount] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.daily_keys)


class StoredEvent(NamedTuple):
    """What the rollups need of an event a commit stored, and of the request that brought it."""

    event_time: str
    group_id: str | None
    group_name: str | None
    actor_id: str
    actor_type: str | None
    api_key_id: int
    sensor: str | None

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
        )


@dataclass
class _Tally:
    """Events of one actor in one course from one key and sensor, within a commit."""

    is_person: bool
    events: int
    first: str
    last: str


def _day(event_time: str, days: dict[str, int]) -> int:
    """Days since 1970 of a fixed-width UTC time, memoized by its date (few per commit)."""
    found = days.get(event_time[:10])
    if found is None:
        found = days[event_time[:10]] = utc_micros(event_time[:10] + "T00:00:00Z") // MICROS_PER_DAY
    return found


def rollups_of(stored: Iterable[StoredEvent], *, shard: int) -> Rollups:
    """The rollup rows that count ``stored`` (events of one commit, in arrival order).

    Each event is tallied once, by (course, actor, key, sensor) and by (day, key); the course
    and source rows are sums of those tallies, and IRIs are hashed once per distinct value.
    """
    tallies: dict[tuple[str, str, int, str], _Tally] = {}
    names: dict[str, tuple[str, str]] = {}  # group id: (name, eventTime of its event)
    days: dict[tuple[int, int], int] = {}
    dates: dict[str, int] = {}
    for event in stored:
        time = event.event_time
        day_key = (_day(time, dates), event.api_key_id)
        days[day_key] = days.get(day_key, 0) + 1
        group_id = event.group_id
        if group_id is None:
            continue
        key = (group_id, event.actor_id, event.api_key_id, event.sensor or "")
        tally = tallies.get(key)
        if tally is None:
            tallies[key] = _Tally(event.actor_type == "Person", 1, time, time)
        else:
            tally.events += 1
            if time < tally.first:
                tally.first = time
            elif time > tally.last:
                tally.last = time
            if not tally.is_person and event.actor_type == "Person":
                tally.is_person = True
        if event.group_name is not None:
            held = names.get(group_id)
            # A later arrival wins a tie of eventTime, as a later commit does in the upsert.
            if held is None or time >= held[1]:
                names[group_id] = (event.group_name, time)
    groups: dict[str, list[Any]] = {}
    actors: dict[tuple[str, str], list[Any]] = {}
    sources: dict[tuple[str, int, str], int] = {}
    for (group_id, actor_id, key_id, sensor), tally in tallies.items():
        group = groups.get(group_id)
        if group is None:
            groups[group_id] = [tally.events, tally.first, tally.last]
        else:
            group[0] += tally.events
            group[1] = min(group[1], tally.first)
            group[2] = max(group[2], tally.last)
        actor = actors.get((group_id, actor_id))
        if actor is None:
            actors[group_id, actor_id] = [tally.is_person, tally.events, tally.first, tally.last]
        else:
            actor[0] = actor[0] or tally.is_person
            actor[1] += tally.events
            actor[2] = min(actor[2], tally.first)
            actor[3] = max(actor[3], tally.last)
        sources[group_id, key_id, sensor] = (
            sources.get((group_id, key_id, sensor), 0) + tally.events
        )
    key_of = {group_id: _key(group_id) for group_id in groups}
    rollups = Rollups()
    for group_id, (events, first, last) in groups.items():
        name, name_time = names.get(group_id, (None, None))
        rollups.groups.append(
            GroupCount(key_of[group_id], shard, group_id, events, first, last, name, name_time)
        )
    for (group_id, actor_id), (is_person, events, first, last) in actors.items():
        rollups.group_actors.append(
            GroupActorCount(
                key_of[group_id], _key(actor_id), actor_id, is_person, events, first, last
            )
        )
    for (group_id, key_id, sensor), events in sources.items():
        rollups.group_sources.append(
            GroupSourceCount(key_of[group_id], shard, key_id, sensor, events)
        )
    for (day, key_id), events in days.items():
        rollups.daily_keys.append(DailyKeyCount(day, shard, key_id, events))
    # Key order, so that concurrent writers lock rows in one order.
    rollups.groups.sort()
    rollups.group_actors.sort()
    rollups.group_sources.sort()
    rollups.daily_keys.sort()
    return rollups


def named_groups(stored: Iterable[StoredEvent], *, shard: int) -> list[GroupCount]:
    """Rows that carry only the courses' newest names of ``stored``, adding no events.

    For a backend that counts the events in SQL (SQLite): upserted after those counts, each
    row's eventTime is one the counts already took, so first and last stay as they are.
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


def segment_recount_sql(table: str, *, shard: int) -> list[str]:
    """SQLite: the upserts that add the events of ``table`` with seq between two marks.

    The writer's own rows of this commit, counted by the database instead of row by row in
    Python (4.7 against 16 µs an event, `bench/limits.py`); the names come apart
    (``named_groups``).
    """
    day = utc_day_sql("sqlite")
    rows = f"FROM {table} WHERE seq BETWEEN ? AND ?"
    return [
        "INSERT INTO rollup_groups (group_key, shard, group_id, events, first_event_time, "
        f"last_event_time) SELECT group_key, {shard}, min(group_id), count(*), min(event_time), "
        f"max(event_time) {rows} AND group_key IS NOT NULL GROUP BY group_key "
        "ON CONFLICT (group_key, shard) DO UPDATE SET "
        "events = rollup_groups.events + excluded.events, "
        "first_event_time = min(rollup_groups.first_event_time, excluded.first_event_time), "
        "last_event_time = max(rollup_groups.last_event_time, excluded.last_event_time)",
        "INSERT INTO rollup_group_actors (group_key, actor_key, actor_id, is_person, events, "
        "first_event_time, last_event_time) SELECT group_key, actor_key, min(actor_id), "
        "max(CASE WHEN actor_type = 'Person' THEN 1 ELSE 0 END), count(*), min(event_time), "
        f"max(event_time) {rows} AND group_key IS NOT NULL GROUP BY group_key, actor_key "
        "ON CONFLICT (group_key, actor_key) DO UPDATE SET "
        "is_person = rollup_group_actors.is_person OR excluded.is_person, "
        "events = rollup_group_actors.events + excluded.events, "
        "first_event_time = min(rollup_group_actors.first_event_time, "
        "excluded.first_event_time), "
        "last_event_time = max(rollup_group_actors.last_event_time, excluded.last_event_time)",
        "INSERT INTO rollup_group_sources (group_key, shard, api_key_id, sensor, events) "
        f"SELECT group_key, {shard}, api_key_id, COALESCE(sensor, ''), count(*) {rows} "
        "AND group_key IS NOT NULL GROUP BY group_key, api_key_id, COALESCE(sensor, '') "
        "ON CONFLICT (group_key, shard, api_key_id, sensor) DO UPDATE SET "
        "events = rollup_group_sources.events + excluded.events",
        "INSERT INTO rollup_daily_keys (day, shard, api_key_id, events) "
        f"SELECT {day}, {shard}, api_key_id, count(*) {rows} GROUP BY {day}, api_key_id "
        "ON CONFLICT (day, shard, api_key_id) DO UPDATE SET "
        "events = rollup_daily_keys.events + excluded.events",
    ]


def _key(iri: str) -> int:
    key = iri_key(iri)
    assert key is not None
    return key


# The upsert of each rollup table: {least}/{greatest} and {mark} are the backend's spelling.
_NEWER_NAME = (
    "excluded.name IS NOT NULL AND (rollup_groups.name_event_time IS NULL "
    "OR excluded.name_event_time >= rollup_groups.name_event_time)"
)
_UPSERTS = {
    "groups": (
        "INSERT INTO rollup_groups (group_key, shard, group_id, events, first_event_time, "
        "last_event_time, name, name_event_time) VALUES ({marks8}) "
        "ON CONFLICT (group_key, shard) DO UPDATE SET "
        "events = rollup_groups.events + excluded.events, "
        "first_event_time = {least}(rollup_groups.first_event_time, excluded.first_event_time), "
        "last_event_time = {greatest}(rollup_groups.last_event_time, excluded.last_event_time), "
        f"name = CASE WHEN {_NEWER_NAME} THEN excluded.name ELSE rollup_groups.name END, "
        f"name_event_time = CASE WHEN {_NEWER_NAME} THEN excluded.name_event_time "
        "ELSE rollup_groups.name_event_time END"
    ),
    "group_actors": (
        "INSERT INTO rollup_group_actors (group_key, actor_key, actor_id, is_person, events, "
        "first_event_time, last_event_time) VALUES ({marks7}) "
        "ON CONFLICT (group_key, actor_key) DO UPDATE SET "
        "is_person = rollup_group_actors.is_person OR excluded.is_person, "
        "events = rollup_group_actors.events + excluded.events, "
        "first_event_time = {least}(rollup_group_actors.first_event_time, "
        "excluded.first_event_time), "
        "last_event_time = {greatest}(rollup_group_actors.last_event_time, "
        "excluded.last_event_time)"
    ),
    "group_sources": (
        "INSERT INTO rollup_group_sources (group_key, shard, api_key_id, sensor, events) "
        "VALUES ({marks5}) ON CONFLICT (group_key, shard, api_key_id, sensor) DO UPDATE SET "
        "events = rollup_group_sources.events + excluded.events"
    ),
    "daily_keys": (
        "INSERT INTO rollup_daily_keys (day, shard, api_key_id, events) VALUES ({marks4}) "
        "ON CONFLICT (day, shard, api_key_id) DO UPDATE SET "
        "events = rollup_daily_keys.events + excluded.events"
    ),
}


def upsert_statements(*, mark: str, least: str, greatest: str) -> dict[str, str]:
    """Each rollup's upsert in one backend's spelling (its parameter mark, LEAST, GREATEST)."""
    spelled = {f"marks{count}": ", ".join([mark] * count) for count in (4, 5, 7, 8)}
    return {
        name: template.format(least=least, greatest=greatest, **spelled)
        for name, template in _UPSERTS.items()
    }


# Positions of the times in each rollup's rows, which SQLite binds as integer microseconds.
_TIME_POSITIONS = {"groups": (4, 5, 7), "group_actors": (5, 6)}


def bound_rows(rollups: Rollups, *, times_as_micros: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Each rollup's rows as parameter tuples for its upsert (see ``upsert_statements``)."""
    tables: dict[str, list[Any]] = {
        "groups": rollups.groups,
        "group_actors": rollups.group_actors,
        "group_sources": rollups.group_sources,
        "daily_keys": rollups.daily_keys,
    }
    bound: dict[str, list[tuple[Any, ...]]] = {}
    for name, rows in tables.items():
        positions = _TIME_POSITIONS.get(name, ()) if times_as_micros else ()
        if not positions:
            bound[name] = [tuple(row) for row in rows]
            continue
        converted = []
        for row in rows:
            values = list(row)
            for position in positions:
                if values[position] is not None:
                    values[position] = utc_micros(values[position])
            converted.append(tuple(values))
        bound[name] = converted
    return bound


def utc_day_sql(dialect_name: str, column: str = "event_time") -> str:
    """SQL for the UTC day (days since 1970, floored) of an events time column.

    The same day ``rollups_of`` gives (Python's floor division), also before 1970.
    """
    if dialect_name == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 86400) AS INTEGER)"
    day = MICROS_PER_DAY
    return f"(({column} - ((({column} % {day}) + {day}) % {day})) / {day})"


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
