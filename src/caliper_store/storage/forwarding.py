"""Forwarding's state in the database: destinations and their cursors, dead letters, the lease.

A cursor is a place in the events table itself, so ingest writes nothing more for forwarding.
SQLite commits one write transaction at a time, so there the cursor is a seq. On PostgreSQL
transactions commit out of seq order (seqs are taken at insert): a cursor "above the last seq
seen" would skip a row whose transaction took a lower seq but committed later. So there events
are read in (commit_xid, seq) order, only from transactions older than every one still running
(``pg_snapshot_xmin``): every row that can still appear has a higher commit_xid than any read
(revision 0010). Rows from before revision 0010 have no commit_xid and are read first, by seq.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Select, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from caliper_store.errors import InvalidQuery, NotFound
from caliper_store.storage.compression import RawCodec
from caliper_store.storage.schema import (
    events,
    forward_dead_letters,
    forward_destinations,
    forward_leases,
    utc_micros,
)
from caliper_store.storage.search import EventRecord, record_from_row, record_query

_COMMIT_XID = text("commit_xid")
_BELOW_HORIZON = text("commit_xid < pg_snapshot_xmin(pg_current_snapshot())")
LEASE_NAME = "forwarder"


class Cursor(NamedTuple):
    """Everything up to here is delivered: (commit_xid or None, seq)."""

    xid: int | None
    seq: int

    def as_text(self) -> str:
        """The stored form: ``seq``, or ``xid:seq`` on PostgreSQL."""
        return str(self.seq) if self.xid is None else f"{self.xid}:{self.seq}"

    @classmethod
    def from_text(cls, value: str) -> Cursor:
        """Read the stored form back."""
        xid, _, seq = value.rpartition(":")
        return cls(int(xid) if xid else None, int(seq))


START = Cursor(None, 0)


@dataclass(frozen=True, slots=True)
class ForwardedEvent:
    """A stored event as a destination gets it, and the cursor just past it."""

    record: EventRecord
    cursor: Cursor

    @property
    def raw(self) -> str:
        """The raw JSON as stored (after the ingest rules)."""
        assert self.record.raw is not None
        return self.record.raw


@dataclass(frozen=True, slots=True)
class Destination:
    """Where events go, which ones, and how far delivery has got."""

    id: int
    name: str
    url: str
    api_key: str | None
    event_types: tuple[str, ...] | None
    key_ids: tuple[int, ...] | None
    batch_events: int
    is_paused: bool
    cursor: Cursor
    cursor_received_at: str | None
    delivered_events: int
    last_delivered_at: str | None
    last_error: str | None
    last_error_at: str | None
    created_at: str

    def wants(self, record: EventRecord) -> bool:
        """Whether this destination takes the event (its types and keys filters)."""
        if self.event_types is not None and record.event_type not in self.event_types:
            return False
        return self.key_ids is None or record.api_key_id in self.key_ids


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a destination refused for good, with the answer it gave."""

    id: int
    destination_id: int
    seq: int
    event_id: str
    status: int
    answer: str
    failed_at: str
    replayed_at: str | None


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a destination is behind: events stored after its cursor, and their age."""

    events: int
    seconds: float


def _destination(row: Any) -> Destination:
    types = json.loads(row.event_types) if row.event_types else None
    keys = json.loads(row.key_ids) if row.key_ids else None
    return Destination(
        id=row.id,
        name=row.name,
        url=row.url,
        api_key=row.api_key,
        event_types=tuple(types) if types is not None else None,
        key_ids=tuple(keys) if keys is not None else None,
        batch_events=row.batch_events,
        is_paused=bool(row.is_paused),
        cursor=Cursor.from_text(row.cursor),
        cursor_received_at=row.cursor_received_at,
        delivered_events=row.delivered_events,
        last_delivered_at=row.last_delivered_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        created_at=row.created_at,
    )


class ForwardBook:
    """Destinations, the events after their cursors, dead letters and the forwarder's lease."""

    def __init__(self, engine: Engine, codec: RawCodec) -> None:
        self._engine = engine
        self._codec = codec
        self._is_postgres = engine.dialect.name == "postgresql"

    def add(
        self,
        *,
        name: str,
        url: str,
        api_key: str | None,
        event_types: Sequence[str] | None,
        key_ids: Sequence[int] | None,
        batch_events: int,
        is_from_start: bool,
        now: str,
    ) -> Destination:
        """Add a destination; it gets events stored from now on, or every one from the start.

        Raises:
            InvalidQuery: a destination of that name exists.
        """
        with self._engine.begin() as connection:
            cursor = START if is_from_start else self._now_cursor(connection)
            try:
                connection.execute(
                    insert(forward_destinations).values(
                        name=name,
                        url=url,
                        api_key=api_key,
                        event_types=json.dumps(list(event_types)) if event_types else None,
                        key_ids=json.dumps(list(key_ids)) if key_ids else None,
                        batch_events=batch_events,
                        is_paused=False,
                        cursor=cursor.as_text(),
                        delivered_events=0,
                        created_at=now,
                    )
                )
            except IntegrityError as error:
                raise InvalidQuery(
                    f"a destination named {name!r} exists already", field="name"
                ) from error
        return self.get(name)

    def get(self, name: str) -> Destination:
        """The destination of this name.

        Raises:
            NotFound: there is none.
        """
        with self._engine.connect() as connection:
            row = connection.execute(
                select(forward_destinations).where(forward_destinations.c.name == name)
            ).one_or_none()
        if row is None:
            raise NotFound(f"no forwarding destination is named {name!r}", field="name")
        return _destination(row)

    def all(self) -> list[Destination]:
        """Every destination, by name."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(forward_destinations).order_by(forward_destinations.c.name)
            ).all()
        return [_destination(row) for row in rows]

    def set_paused(self, name: str, *, is_paused: bool) -> Destination:
        """Pause or resume a destination (its cursor stays where it is)."""
        self._update(name, is_paused=is_paused)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Forget a destination and its dead letters."""
        destination = self.get(name)
        with self._engine.begin() as connection:
            connection.execute(
                delete(forward_dead_letters).where(
                    forward_dead_letters.c.destination_id == destination.id
                )
            )
            connection.execute(
                delete(forward_destinations).where(forward_destinations.c.id == destination.id)
            )

    def events_after(self, cursor: Cursor, limit: int) -> list[ForwardedEvent]:
        """The next stored events after ``cursor``, in the order they committed."""
        with self._engine.connect() as connection:
            if not self._is_postgres:
                query = (
                    record_query(with_raw=True)
                    .where(events.c.seq > cursor.seq)
                    .order_by(events.c.seq)
                    .limit(limit)
                )
                return self._by_seq(connection, query)
            found: list[ForwardedEvent] = []
            if cursor.xid is None:
                found = self._before_commit_xids(connection, cursor.seq, limit)
                if found:
                    return found
            return self._by_commit_xid(connection, cursor.xid or 0, cursor.seq, limit)

    def events_by_seq(self, seqs: Collection[int]) -> dict[int, EventRecord]:
        """The stored events of these seqs (for a dead letter's replay); missing ones left out."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                record_query(with_raw=True).where(events.c.seq.in_(list(seqs)))
            ).all()
            records = [record_from_row(row, self._codec, connection) for row in rows]
        return {record.seq: record for record in records}

    def advance(
        self,
        destination_id: int,
        cursor: Cursor,
        *,
        received_at: str | None,
        delivered: int,
        now: str,
    ) -> None:
        """Move a destination's cursor after the destination confirmed what lies before it."""
        with self._engine.begin() as connection:
            values: dict[str, Any] = {
                "cursor": cursor.as_text(),
                "delivered_events": forward_destinations.c.delivered_events + delivered,
                "last_error": None,
            }
            if received_at is not None:
                values["cursor_received_at"] = received_at
            if delivered:
                values["last_delivered_at"] = now
            connection.execute(
                update(forward_destinations)
                .where(forward_destinations.c.id == destination_id)
                .values(**values)
            )

    def record_error(self, destination_id: int, message: str, now: str) -> None:
        """Say why a destination is not getting events (it will be tried again)."""
        with self._engine.begin() as connection:
            connection.execute(
                update(forward_destinations)
                .where(forward_destinations.c.id == destination_id)
                .values(last_error=message[:1000], last_error_at=now)
            )

    def add_dead_letter(
        self, destination_id: int, record: EventRecord, status: int, answer: str, now: str
    ) -> None:
        """Keep an event the destination refused for good, with its answer."""
        with self._engine.begin() as connection:
            connection.execute(
                insert(forward_dead_letters).values(
                    destination_id=destination_id,
                    seq=record.seq,
                    event_id=record.event_id,
                    status=status,
                    answer=answer[:2000],
                    failed_at=now,
                )
            )

    def dead_letters(self, name: str, *, with_replayed: bool = False) -> list[DeadLetter]:
        """A destination's dead letters, oldest first."""
        destination = self.get(name)
        query = select(forward_dead_letters).where(
            forward_dead_letters.c.destination_id == destination.id
        )
        if not with_replayed:
            query = query.where(forward_dead_letters.c.replayed_at.is_(None))
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(forward_dead_letters.c.id)).all()
        return [DeadLetter(*row) for row in rows]

    def mark_replayed(self, letter_ids: Collection[int], now: str) -> None:
        """Note that these dead letters were delivered after all."""
        with self._engine.begin() as connection:
            connection.execute(
                update(forward_dead_letters)
                .where(forward_dead_letters.c.id.in_(list(letter_ids)))
                .values(replayed_at=now)
            )

    def lag(self, destination: Destination) -> Lag:
        """Events stored after the destination's cursor (matching or not), and how old."""
        cursor = destination.cursor
        with self._engine.connect() as connection:
            if not self._is_postgres:
                behind = connection.execute(
                    select(func.count()).select_from(events).where(events.c.seq > cursor.seq)
                ).scalar_one()
            elif cursor.xid is None:
                behind = connection.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE commit_xid IS NULL AND seq > :s) "
                        "+ count(*) FILTER (WHERE commit_xid IS NOT NULL) FROM events"
                    ),
                    {"s": cursor.seq},
                ).scalar_one()
            else:
                behind = connection.execute(
                    text(
                        "SELECT count(*) FROM events "
                        "WHERE (commit_xid, seq) > (CAST(:xid AS xid8), :s)"
                    ),
                    {"xid": str(cursor.xid), "s": cursor.seq},
                ).scalar_one()
            newest = connection.execute(select(func.max(events.c.received_at))).scalar_one()
        # How long the oldest undelivered event has waited for the newest to arrive: for a
        # destination that never got one, from the first event after its cursor.
        since = destination.cursor_received_at
        if behind and since is None:
            first = self.events_after(cursor, 1)
            since = first[0].record.received_at if first else None
        seconds = 0.0
        if behind and newest is not None and since is not None:
            seconds = max(0.0, (utc_micros(newest) - utc_micros(since)) / 1e6)
        return Lag(int(behind), seconds)

    def take_lease(self, holder: str, *, now: str, expires_at: str) -> bool:
        """Hold the forwarder's lease until ``expires_at``, if it is free, expired or ours.

        Two processes that both see it free race on the primary key; one insert wins.
        """
        with self._engine.begin() as connection:
            taken = connection.execute(
                update(forward_leases)
                .where(forward_leases.c.name == LEASE_NAME)
                .where((forward_leases.c.holder == holder) | (forward_leases.c.expires_at < now))
                .values(holder=holder, expires_at=expires_at)
            ).rowcount
            if taken:
                return True
            exists = connection.execute(
                select(forward_leases.c.holder).where(forward_leases.c.name == LEASE_NAME)
            ).one_or_none()
            if exists is not None:
                return False
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(forward_leases).values(
                        name=LEASE_NAME, holder=holder, expires_at=expires_at
                    )
                )
        except IntegrityError:
            return False
        return True

    def release_lease(self, holder: str) -> None:
        """Give the lease up (on a clean stop), so another process can take it at once."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(forward_leases).where(
                    forward_leases.c.name == LEASE_NAME, forward_leases.c.holder == holder
                )
            )

    def _update(self, name: str, **values: Any) -> None:
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(forward_destinations)
                .where(forward_destinations.c.name == name)
                .values(**values)
            ).rowcount
        if not changed:
            raise NotFound(f"no forwarding destination is named {name!r}", field="name")

    def _now_cursor(self, connection: Connection) -> Cursor:
        """Just past everything committed now: a new destination starts here."""
        if not self._is_postgres:
            newest = connection.execute(select(func.max(events.c.seq))).scalar_one()
            return Cursor(None, newest or 0)
        horizon = connection.execute(
            text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        ).scalar_one()
        # Every transaction below the horizon is finished: all its rows are "before now".
        return Cursor(int(horizon) - 1, 2**63 - 1)

    def _before_commit_xids(
        self, connection: Connection, after_seq: int, limit: int
    ) -> list[ForwardedEvent]:
        query = (
            record_query(with_raw=True)
            .where(text("commit_xid IS NULL"), events.c.seq > after_seq)
            .order_by(events.c.seq)
            .limit(limit)
        )
        return self._by_seq(connection, query)

    def _by_seq(self, connection: Connection, query: Select[Any]) -> list[ForwardedEvent]:
        """The events of a query ordered by seq, each with the seq as its cursor."""
        rows = connection.execute(query).all()
        return [
            ForwardedEvent(record, Cursor(None, record.seq))
            for record in (record_from_row(row, self._codec, connection) for row in rows)
        ]

    def _by_commit_xid(
        self, connection: Connection, after_xid: int, after_seq: int, limit: int
    ) -> list[ForwardedEvent]:
        query = (
            record_query(with_raw=True)
            .add_columns(text("commit_xid::text"))
            .where(
                text("(commit_xid, seq) > (CAST(:xid AS xid8), :seq)").bindparams(
                    xid=str(after_xid), seq=after_seq
                ),
                _BELOW_HORIZON,
            )
            .order_by(_COMMIT_XID, events.c.seq)
            .limit(limit)
        )
        found = []
        for row in connection.execute(query).all():
            record = record_from_row(row[:-1], self._codec, connection)
            found.append(ForwardedEvent(record, Cursor(int(row[-1]), record.seq)))
        return found
