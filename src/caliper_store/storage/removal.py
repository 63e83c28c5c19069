"""Removing stored events (purge, erase) and taking them out of the rollups in one transaction.

Each batch is one write transaction: the backend deletes the rows and their ids
(``WriteTransaction.remove_events``) and this module subtracts them from the rollups, so the
rollups never count an event that is gone, whatever crashes when. A batch is small (at most
``purge_batch_events``, sized to take about ``purge_batch_ms``): it holds the write lock, which
ingest waits for, only that long.

Counts are subtracted (they add up across writers' shards, so concurrent PostgreSQL writers
adding to the same course stay exact). A first or last eventTime cannot be subtracted: when the
removed events held one, it is read again from the remaining events through the course's (and
person's) time index. A row whose count reaches zero is deleted. While a batch changes the
rollups it keeps every writer out of them (``exclude_rollup_writers``; SQLite's write lock
does that already), so its row changes never wait on a writer's, whatever their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class RemovedEvent(NamedTuple):
    """What the rollups counted of an event that a removal deleted.

    Times as the backend keeps them: integer microseconds on SQLite, datetimes on PostgreSQL.
    """

    seq: int
    event_id: str
    event_time: Any
    group_id: str | None
    group_key: int | None
    actor_key: int | None
    api_key_id: int
    sensor: str | None


class RemovalTransaction(Protocol):
    """The SQL a removal needs of a backend's write transaction."""

    def remove_events(self, seqs: Sequence[int]) -> list[RemovedEvent]:
        """Delete these events and their ids; return what each deleted row held."""

    def rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement written with ``?`` marks; its rows (none for a change)."""

    def rows_many(self, sql: str, parameters: Sequence[Sequence[Any]]) -> None:
        """Run one changing statement written with ``?`` marks once per parameter row."""

    def day_of(self, event_time: Any) -> int:
        """The UTC day (days since 1970) of an event time as this backend keeps it."""

    def time_value(self, moment: str) -> Any:
        """A UTC text time as this backend binds it in a rollup column."""

    def exclude_rollup_writers(self) -> None:
        """Keep writers out of the rollups until the transaction ends."""


# The size of a paced removal's first batch, before its pace is known.
FIRST_PACED_BATCH = 100


@dataclass
class _Tally:
    events: int = 0
    first: Any = None
    last: Any = None
    times: set[Any] = field(default_factory=set)

    def add(self, moment: Any) -> None:
        self.events += 1
        self.times.add(moment)
        self.first = moment if self.first is None or moment < self.first else self.first
        self.last = moment if self.last is None or moment > self.last else self.last


@dataclass
class RemovalTotals:
    """What a removal took away, for its audit row and its caller."""

    events: int = 0
    by_key: dict[int, int] = field(default_factory=dict)
    # Courses whose name came from a removed event: (group id, that event's time, as kept).
    names_lost: dict[str, Any] = field(default_factory=dict)

    def add(self, removed: Sequence[RemovedEvent]) -> None:
        """Count a batch."""
        self.events += len(removed)
        for event in removed:
            self.by_key[event.api_key_id] = self.by_key.get(event.api_key_id, 0) + 1


def subtract_rollups(
    transaction: RemovalTransaction, removed: Sequence[RemovedEvent]
) -> dict[str, Any]:
    """Take the removed events out of every rollup, in the removal's transaction.

    Returns the courses that kept a name given by a removed event, with that event's time: the
    name must come from the remaining events (``Store.rename_groups``), which needs raw JSON.
    """
    groups: dict[int, _Tally] = {}
    group_ids: dict[int, str] = {}
    actors: dict[tuple[int, int], _Tally] = {}
    sources: dict[tuple[int, int, str], int] = {}
    days: dict[tuple[int, int], int] = {}
    for event in removed:
        day = transaction.day_of(event.event_time)
        days[(day, event.api_key_id)] = days.get((day, event.api_key_id), 0) + 1
        if event.group_key is None:
            continue
        groups.setdefault(event.group_key, _Tally()).add(event.event_time)
        group_ids[event.group_key] = str(event.group_id)
        if event.actor_key is not None:
            actors.setdefault((event.group_key, event.actor_key), _Tally()).add(event.event_time)
        source = (event.group_key, event.api_key_id, event.sensor or "")
        sources[source] = sources.get(source, 0) + 1
    transaction.exclude_rollup_writers()
    names_lost: dict[str, Any] = {}
    for group_key in sorted(groups):
        named_at = transaction.rows(
            "SELECT DISTINCT name_event_time FROM rollup_groups WHERE group_key = ? "
            "AND name_event_time IS NOT NULL",
            (group_key,),
        )
        for (moment,) in named_at:
            if moment in groups[group_key].times:
                names_lost[group_ids[group_key]] = moment
        _subtract_group(transaction, group_key, groups[group_key])
    for pair in sorted(actors):
        _subtract_actor(transaction, pair, actors[pair])
    _subtract_counts(transaction, "rollup_group_sources", SOURCE_KEY, sources)
    _subtract_counts(transaction, "rollup_daily_keys", DAY_KEY, days)
    return names_lost


SOURCE_KEY = ("group_key", "api_key_id", "sensor")
DAY_KEY = ("day", "api_key_id")
# Keys one statement names: a scattered removal touches a day row for most of its events.
KEYS_PER_STATEMENT = 100


def _subtract_counts(
    transaction: RemovalTransaction,
    table: str,
    key_columns: Sequence[str],
    tallies: dict[Any, int],
) -> None:
    """Subtract many counters kept in writers' shards, a few statements for all of them.

    As ``_subtract_group`` for each key (the sum over shards is what counts: a key whose sum
    reaches zero loses every shard, any other one is subtracted from its lowest shard), with
    its reads and deletes for up to KEYS_PER_STATEMENT keys in one statement each.
    """
    one = "(" + " AND ".join(f"{column} = ?" for column in key_columns) + ")"
    columns = ", ".join(key_columns)
    keys = sorted(tallies)
    held: dict[Any, list[tuple[int, int]]] = {}
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        chunk = keys[start : start + KEYS_PER_STATEMENT]
        found = transaction.rows(
            f"SELECT {columns}, shard, events FROM {table} WHERE "
            + " OR ".join([one] * len(chunk))
            + f" ORDER BY {columns}, shard",
            [value for key in chunk for value in key],
        )
        for row in found:
            held.setdefault(tuple(row[: len(key_columns)]), []).append((row[-2], row[-1]))
    emptied = [key for key in keys if key in held and sum(n for _, n in held[key]) <= tallies[key]]
    for start in range(0, len(emptied), KEYS_PER_STATEMENT):
        chunk = emptied[start : start + KEYS_PER_STATEMENT]
        transaction.rows(
            f"DELETE FROM {table} WHERE " + " OR ".join([one] * len(chunk)),
            [value for key in chunk for value in key],
        )
    gone = set(emptied)
    kept = [key for key in keys if key in held and key not in gone]
    if kept:
        transaction.rows_many(
            f"UPDATE {table} SET events = events - ? WHERE {one[1:-1]} AND shard = ?",
            [(tallies[key], *key, held[key][0][0]) for key in kept],
        )


def _subtract_group(transaction: RemovalTransaction, group_key: int, tally: _Tally) -> None:
    """Subtract from a course's counter kept in writers' shards (the sum is what counts).

    Its first and last eventTime are read again when the removed events held one.
    """
    where = "group_key = ?"
    held = transaction.rows(
        "SELECT shard, events, first_event_time, last_event_time FROM rollup_groups "
        f"WHERE {where} ORDER BY shard",
        (group_key,),
    )
    if not held:
        return
    shards = [row[0] for row in held]
    marks = ", ".join("?" for _ in shards)
    if sum(row[1] for row in held) <= tally.events:
        transaction.rows(
            f"DELETE FROM rollup_groups WHERE {where} AND shard IN ({marks})",
            (group_key, *shards),
        )
        return
    transaction.rows(
        f"UPDATE rollup_groups SET events = events - ? WHERE {where} AND shard = ?",
        (tally.events, group_key, shards[0]),
    )
    first = min(row[2] for row in held)
    last = max(row[3] for row in held)
    if tally.first > first and tally.last < last:
        return
    new_first, new_last = _bounds(transaction, where, (group_key,))
    if new_first is None:
        return
    transaction.rows(
        "UPDATE rollup_groups SET first_event_time = ?, last_event_time = ? "
        f"WHERE {where} AND shard IN ({marks})",
        (new_first, new_last, group_key, *shards),
    )


def _subtract_actor(transaction: RemovalTransaction, key: tuple[int, int], tally: _Tally) -> None:
    where = "group_key = ? AND actor_key = ?"
    held = transaction.rows(
        f"SELECT events, first_event_time, last_event_time FROM rollup_group_actors WHERE {where}",
        key,
    )
    if not held:
        return
    events, first, last = held[0]
    if events <= tally.events:
        transaction.rows(f"DELETE FROM rollup_group_actors WHERE {where}", key)
        return
    transaction.rows(
        f"UPDATE rollup_group_actors SET events = events - ? WHERE {where}", (tally.events, *key)
    )
    if tally.first > first and tally.last < last:
        return
    new_first, new_last = _bounds(transaction, where, key)
    if new_first is not None:
        transaction.rows(
            "UPDATE rollup_group_actors SET first_event_time = ?, last_event_time = ? "
            f"WHERE {where}",
            (new_first, new_last, *key),
        )


def _bounds(transaction: RemovalTransaction, where: str, key: Sequence[Any]) -> tuple[Any, Any]:
    found = transaction.rows(
        f"SELECT min(event_time), max(event_time) FROM events WHERE {where}", key
    )
    return found[0][0], found[0][1]


def remove_in_batches(
    write_transaction: Callable[[], Any],
    seqs: Sequence[int],
    *,
    batch_events: int,
    batch_ms: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> RemovalTotals:
    """Remove the events ``seqs`` in transactions of at most ``batch_events``; what was removed.

    ``write_transaction`` is the store's: each batch commits on its own, so a crash leaves the
    events of the batches committed removed and every other one whole, rollups included. With
    ``batch_ms``, each batch is sized from the last one's pace to hold the write lock about
    that long: a purge's oldest events lie together and go by thousands, while a person's
    events lie scattered through the store and cost a page write of every index each.
    """
    totals = RemovalTotals()
    ordered = sorted(set(seqs))
    size = min(batch_events, FIRST_PACED_BATCH) if batch_ms else batch_events
    start = 0
    while start < len(ordered):
        chunk = ordered[start : start + size]
        start += len(chunk)
        with write_transaction() as transaction:
            began = time.perf_counter()  # once the write lock is held: only the batch's own time
            removed = transaction.remove_events(chunk)
            totals.names_lost.update(subtract_rollups(transaction, removed))
        took_ms = (time.perf_counter() - began) * 1000
        totals.add(removed)
        if batch_ms:
            paced = int(len(chunk) * batch_ms / max(took_ms, 0.1))
            size = max(1, min(batch_events, 2 * len(chunk), paced))
        if on_batch is not None:
            on_batch(len(chunk))
    return totals
