"""The rollups behind the reports, checked against the events: ``caliper-store reports verify``.

The rollups (storage/rollups.py) are written by the commits that store the events, so they
should never differ from what the events count; this is how an operator, or a test, knows.
The courses' names need the raw JSON, which is why they are filled and checked here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from caliper_store.storage import Snapshot, Store, group_name, iri_key

TABLE_NAMES = {
    "groups": "rollup_groups",
    "group_actors": "rollup_group_actors",
    "group_sources": "rollup_group_sources",
    "daily_keys": "rollup_daily_keys",
}
# Differences printed per rollup before the rest is only counted.
MAX_SHOWN_DIFFERENCES = 20


@dataclass(frozen=True, slots=True)
class Difference:
    """One row where a rollup and the events disagree."""

    table: str
    key: tuple[object, ...]
    stored: tuple[object, ...] | None
    counted: tuple[object, ...] | None

    def __str__(self) -> str:
        return f"{self.table} {self.key}: stored {self.stored}, events count {self.counted}"


def newest_group_names(
    snapshot: Snapshot, progress: Callable[[int], None] | None = None
) -> dict[str, tuple[str, str]]:
    """For each course, its name in its newest event (eventTime, then arrival) that has one.

    Reads the raw JSON of every event with a group: the one slow part of a verification.
    """
    names: dict[str, tuple[str, str]] = {}
    read = 0
    rows = snapshot.events([], ("group_id", "event_time"), with_raw=True)
    for group_id, event_time, raw in rows:
        read += 1
        if progress is not None and read % 10_000 == 0:
            progress(10_000)
        if group_id is None:
            continue
        document = orjson.loads(str(raw))
        name = group_name(document.get("group")) if isinstance(document, dict) else None
        if name is not None:
            names[str(group_id)] = (name, str(event_time))
    return names


def verify_rollups(store: Store, progress: Callable[[int], None] | None = None) -> list[Difference]:
    """Every difference between the rollups and a count of the events, in one snapshot."""
    differences: list[Difference] = []
    with store.snapshot(is_time_limited=False) as snapshot:
        stored = snapshot.rollup_tables(recounted=False)
        counted = snapshot.rollup_tables(recounted=True)
        for name, rows in counted.items():
            held = stored[name]
            for key in sorted(set(rows) | set(held), key=repr):
                if rows.get(key) != held.get(key):
                    differences.append(
                        Difference(TABLE_NAMES[name], key, held.get(key), rows.get(key))
                    )
        names = newest_group_names(snapshot, progress)
        for group in snapshot.group_rollups():
            expected = names.get(group.group_id, (None, None))
            found = (group.name, group.name_event_time)
            if found != expected:
                differences.append(
                    Difference("rollup_groups.name", (group.group_id,), found, expected)
                )
    return differences


def fill_group_names(store: Store, progress: Callable[[int], None] | None = None) -> int:
    """Name the courses of rollups filled from the events (schema revision 0007); how many."""
    with store.snapshot(is_time_limited=False) as snapshot:
        unnamed = {group.group_id for group in snapshot.group_rollups() if group.name is None}
        if not unnamed:
            return 0
        names = newest_group_names(snapshot, progress)
    given = []
    for group_id, (name, event_time) in names.items():
        key = iri_key(group_id)
        if group_id in unnamed and key is not None:
            given.append((key, name, event_time))
    if given:
        store.set_group_names(given)
    return len(given)
