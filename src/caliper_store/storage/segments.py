"""SQLite's events in arrival segments: a table per ``sqlite_segment_events`` events, one view.

A group commit dirties about one leaf page of each random-keyed index per event once that index
outgrows the commit, so on one table the writer's cost grew with everything stored (2 million
events: 0.51-0.57 of the empty store's rate; docs/storage-layout.md). The writer appends to the
newest segment and starts another when it is full: the indexes it writes stay the size of one
segment, whatever the store holds. Readers keep one SQL through the ``events`` view, a UNION
ALL of the segments that SQLite merges lazily in index order (one index seek per segment).

Ids are deduplicated across segments by a 64-bit hash of each id, about 20 bytes an entry
instead of the 60 of an index on the id text. New events claim their hashes in
``recent_event_id_hashes``, small and hot; ``event_id_hashes`` holds the rest and ingest only
reads it, moving recent hashes into it one slice of the hash space at a time, in hash order
(storage/sqlite.py). Written event by event, that one table grew with the store and each
commit dirtied a random leaf of it per event: at 10 million events it was all the ingest rate
lost. Two ids with one hash (about one chance in 10^5 at 10^7 events) are told
apart by the id itself; the later one is found through ``event_id_collisions``.
PostgreSQL partitions ``events`` by month instead (storage/postgres.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Column, Connection, MetaData, Table, inspect
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateTable

from caliper_store.storage.schema import events, hash64

SEGMENT_PREFIX = "events_s"
# SQLite refuses a compound SELECT of more terms (SQLITE_MAX_COMPOUND_SELECT): past it the view
# is a UNION ALL of views of this many segments each.
MAX_COMPOUND_TERMS = 500

# (name suffix, columns, partial-index condition): revision 0002's filter indexes, measured
# there, each pairing its column with event_time so a filtered page reads in order. The id is
# indexed once for the whole store, in event_id_hashes.
SEGMENT_INDEXES: tuple[tuple[str, str, str | None], ...] = (
    ("event_time", "event_time", None),
    ("actor_time", "actor_key, event_time", None),
    ("group_time", "group_key, event_time", "group_key IS NOT NULL"),
    ("object_time", "object_key, event_time", None),
    ("external_id_time", "actor_external_id, event_time", "actor_external_id IS NOT NULL"),
    ("key_time", "api_key_id, event_time", None),
    ("type_time", "event_type, event_time", None),
    ("received_at", "received_at", None),
)
# Revision 0002's seeded planner statistics (see there for why), for each new segment's indexes.
SEGMENT_STATISTICS: dict[str, str] = {
    "event_time": "1000000 3",
    "actor_time": "1000000 200 2",
    "group_time": "1000000 2000 2",
    "object_time": "1000000 500 2",
    "external_id_time": "1000000 200 2",
    "key_time": "1000000 250000 3",
    "type_time": "1000000 100000 3",
    "received_at": "1000000 3",
}
# Indexes built when a segment is sealed (the writer starts the next one), in one sorted pass,
# instead of by each commit. Kept by every commit, the session index took Learn ingest to
# 0.92 of its rate (a random leaf written per event); built at once, it costs the writer one
# read of the sealed segment (docs/performance.md, 2026-12-07, issue 11). The newest segment
# is read without it: at most sqlite_segment_events events, whatever the store holds.
#
# ``people_time`` answers who was active in a course over a period (the course list's
# activeStudents7d with an ``at`` in the past) from the index alone: without it SQLite read
# each of the period's rows, a page each in a store whose event times are scattered.
SEALED_SEGMENT_INDEXES: tuple[tuple[str, str, str | None], ...] = (
    ("session", "session_key", "session_key IS NOT NULL"),
    ("people_time", "event_time, group_key, actor_key, actor_type", "group_key IS NOT NULL"),
)
SEALED_SEGMENT_STATISTICS: dict[str, str] = {
    "session": "1000000 20",
    "people_time": "1000000 3 2 2 2",
}

VIEW_COLUMNS: tuple[str, ...] = tuple(column.name for column in events.columns)


def event_id_hash(event_id: str) -> int:
    """The signed 64-bit hash an event id is found by in ``event_id_hashes``.

    Not cached as ``iri_key`` is: ids rarely recur, and they would push the IRIs out.
    """
    return hash64(event_id)


def segment_table(number: int) -> str:
    """The table of segment ``number`` (from 1)."""
    return f"{SEGMENT_PREFIX}{number:06d}"


def is_segment_table(name: str) -> bool:
    """Whether ``name`` is one of the segment tables."""
    return name.startswith(SEGMENT_PREFIX) and name[len(SEGMENT_PREFIX) :].isdigit()


def segment_number(name: str) -> int:
    """The number of segment table ``name``."""
    return int(name[len(SEGMENT_PREFIX) :])


def stored_segment_tables(connection: Connection) -> list[str]:
    """The segment tables a database holds, oldest first, as its catalog lists them.

    For schema revisions: they read the tables as they are, whatever ``event_segments`` says.
    """
    names = inspect(connection).get_table_names()
    return sorted(name for name in names if is_segment_table(name))


def remade_view_sql(connection: Connection, tables: Sequence[str]) -> list[str]:
    """The events view over ``tables`` again, with their columns as they are now."""
    columns = [column["name"] for column in inspect(connection).get_columns(tables[0])]
    return events_view_sql([segment_number(table) for table in tables], columns)


def segment(number: int) -> Table:
    """Segment ``number`` as a table of the columns of schema.events."""
    return Table(
        segment_table(number),
        MetaData(),
        *(
            Column(
                column.name, column.type, nullable=column.nullable, primary_key=column.primary_key
            )
            for column in events.columns
        ),
    )


def create_segment_sql(number: int) -> list[str]:
    """The statements that make segment ``number``: table, filter indexes, planner statistics."""
    name = segment_table(number)
    statements = [str(CreateTable(segment(number)).compile(dialect=sqlite.dialect())).strip()]
    for suffix, columns, condition in SEGMENT_INDEXES:
        where = f" WHERE {condition}" if condition else ""
        statements.append(f"CREATE INDEX {name}_{suffix} ON {name} ({columns}){where}")
    statements.extend(
        f"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('{name}', '{name}_{suffix}', '{stat}')"
        for suffix, stat in SEGMENT_STATISTICS.items()
    )
    return statements


def segment_index_name(number: int, suffix: str) -> str:
    """The name of a segment's index: the first segment's kept revision 0002's (events_...)."""
    return f"events_{suffix}" if number == 1 else f"{segment_table(number)}_{suffix}"


def seal_segment_sql(number: int, suffixes: Collection[str] | None = None) -> list[str]:
    """The statements that build the sealed-segment indexes of segment ``number``.

    All of them, or those of ``suffixes`` (a revision builds the indexes it adds).
    """
    name = segment_table(number)
    statements = []
    for suffix, columns, condition in SEALED_SEGMENT_INDEXES:
        if suffixes is not None and suffix not in suffixes:
            continue
        index = segment_index_name(number, suffix)
        where = f" WHERE {condition}" if condition else ""
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {name} ({columns}){where}")
        statements.append(f"DELETE FROM sqlite_stat1 WHERE idx = '{index}'")
        statements.append(
            f"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES "
            f"('{name}', '{index}', '{SEALED_SEGMENT_STATISTICS[suffix]}')"
        )
    return statements


def _union(tables: Sequence[str], columns: Sequence[str]) -> str:
    listed = ", ".join(columns)
    return " UNION ALL ".join(f"SELECT {listed} FROM {table}" for table in tables)


def events_view_sql(numbers: Sequence[int], columns: Sequence[str] = VIEW_COLUMNS) -> list[str]:
    """The statements that (re)make the ``events`` view over the segments ``numbers``.

    A migration passes the columns its segments have at that revision.
    """
    tables = [segment_table(number) for number in numbers]
    part_count = -(-len(tables) // MAX_COMPOUND_TERMS)  # segments only grow: covers the old
    statements = ["DROP VIEW IF EXISTS events"]
    statements.extend(
        f"DROP VIEW IF EXISTS events_part{part:04d}" for part in range(1, part_count + 1)
    )
    if len(tables) <= MAX_COMPOUND_TERMS:
        statements.append(f"CREATE VIEW events AS {_union(tables, columns)}")
        return statements
    parts = []
    for start in range(0, len(tables), MAX_COMPOUND_TERMS):
        part = f"events_part{start // MAX_COMPOUND_TERMS + 1:04d}"
        parts.append(part)
        chunk = tables[start : start + MAX_COMPOUND_TERMS]
        statements.append(f"CREATE VIEW {part} AS {_union(chunk, columns)}")
    statements.append(f"CREATE VIEW events AS {_union(parts, columns)}")
    return statements
