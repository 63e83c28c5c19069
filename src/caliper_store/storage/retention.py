"""What a retention policy removes: events by eventTime, quarantine and receipts by arrival.

Counting (a dry run) and removing share one definition of "expired" per table. Events are
removed through ``storage/removal.py`` (their ids and rollups go with them), oldest first, in
batches; quarantined items and receipts, which nothing else counts, by bounded DELETEs. A
PostgreSQL month whose partition a purge emptied is dropped (``PostgresStore``).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, Engine, delete, func, literal_column, select

from caliper_store.storage.schema import events, quarantine, receipts

Kind = Literal["events", "quarantine", "receipts"]
KINDS: tuple[Kind, ...] = ("events", "quarantine", "receipts")


class Cutoffs(NamedTuple):
    """The UTC time before which each kind of row is expired (None: kept forever)."""

    events: str | None
    quarantine: str | None
    receipts: str | None


class ExpiredCount(NamedTuple):
    """How many rows of one kind, month and key a purge removes."""

    kind: Kind
    month: str
    api_key_id: int
    rows: int


def _month_sql(dialect_name: str, column: str, *, is_micros: bool) -> str:
    if dialect_name == "postgresql":
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"
    if is_micros:
        return f"strftime('%Y-%m', {column} / 1000000, 'unixepoch')"
    return f"substr({column}, 1, 7)"


def _table_of(kind: Kind) -> tuple[Any, Any]:
    if kind == "events":
        return events, events.c.event_time
    if kind == "quarantine":
        return quarantine, quarantine.c.received_at
    return receipts, receipts.c.received_at


def expired_counts(connection: Connection, cutoffs: Cutoffs) -> list[ExpiredCount]:
    """Rows each cutoff expires, by kind, month and key (what ``purge`` shows before --yes)."""
    found: list[ExpiredCount] = []
    dialect_name = connection.dialect.name
    for kind in KINDS:
        cutoff = getattr(cutoffs, kind)
        if cutoff is None:
            continue
        table, time = _table_of(kind)
        month: Any = literal_column(
            _month_sql(dialect_name, time.name, is_micros=kind == "events")
        ).label("month")
        query = (
            select(month, table.c.api_key_id, func.count())
            .where(time < cutoff)
            .group_by(month, table.c.api_key_id)
            .order_by(month, table.c.api_key_id)
        )
        found.extend(
            ExpiredCount(kind, str(row[0]), int(row[1]), int(row[2]))
            for row in connection.execute(query)
        )
    return found


def expired_event_seqs(connection: Connection, cutoff: str, limit: int) -> list[int]:
    """The seqs of the oldest ``limit`` events whose eventTime is before ``cutoff``."""
    query = (
        select(events.c.seq)
        .where(events.c.event_time < cutoff)
        .order_by(events.c.event_time)
        .limit(limit)
    )
    return [int(seq) for seq in connection.execute(query).scalars()]


def delete_expired(engine: Engine, kind: Kind, cutoff: str, batch_rows: int) -> int:
    """Delete expired quarantine items or receipts, ``batch_rows`` per transaction."""
    table, time = _table_of(kind)
    removed = 0
    while True:
        with engine.begin() as connection:
            ids = select(table.c.id).where(time < cutoff).limit(batch_rows).scalar_subquery()
            count = connection.execute(delete(table).where(table.c.id.in_(ids))).rowcount
        removed += count
        if count < batch_rows:
            return removed
