"""The storage interface: a Store with shared SQLAlchemy Core reads, and backend write transactions.

A backend supplies only two things: how to open its engine, and a :class:`WriteTransaction`
that turns prepared rows into SQL inside one transaction. The rules for duplicates, conflicts
and receipts live once, in ``storage/writer.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, bindparam, func, or_, select, update

from caliper_store.errors import SchemaOutOfDate
from caliper_store.storage import migrate
from caliper_store.storage.compression import (
    CompressionSettings,
    DictionaryTransaction,
    RawCodec,
)
from caliper_store.storage.keys import KeyRegistry
from caliper_store.storage.migrate import SchemaState
from caliper_store.storage.records import WriteRequest
from caliper_store.storage.rollups import StoredEvent
from caliper_store.storage.schema import (
    api_keys,
    entities,
    events,
    quarantine,
    receipts,
    rollup_groups,
    utc_text,
)
from caliper_store.storage.search import EventReader, QuarantineDesk, matching_event_ids
from caliper_store.storage.snapshot import Snapshot, read_snapshot
from caliper_store.storage.usage import RelationSize


class WriteTransaction(DictionaryTransaction, Protocol):
    """The SQL primitives the group-commit writer runs inside one transaction.

    With those of :class:`DictionaryTransaction`, through which the raw codec stores the
    dictionaries it trains in the transaction of the first rows compressed with them.
    """

    def active_key_ids(self, key_ids: Collection[int]) -> set[int]:
        """The subset of ``key_ids`` whose key is active right now."""

    def allocate_receipt_ids(self, count: int) -> list[int]:
        """Reserve ``count`` new receipt ids."""

    def insert_events(self, rows: Sequence[tuple[Any, ...]]) -> dict[str, str]:
        """Insert rows (``EVENT_COLUMNS`` order) whose event id is new.

        Returns:
            For each row not inserted because its event id is already stored, that id and the
            stored content hash.
        """

    def event_hashes(self, event_ids: Collection[str]) -> dict[str, str]:
        """The stored content hash of each of these event ids that exists."""

    def insert_entities(self, rows: Sequence[tuple[Any, ...]]) -> set[tuple[str, str]]:
        """Insert entity rows; return the (entity id, content hash) pairs already stored."""

    def insert_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert quarantine rows."""

    def insert_receipts(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert receipt rows."""

    def add_rollups(self, stored: Sequence[StoredEvent], *, shard: int) -> None:
        """Add what this commit's stored events count to the rollups (storage/rollups.py).

        ``stored`` is every event this transaction inserted, in arrival order.
        """

    def touch_keys(self, key_ids: Collection[int], used_at: str, stale_before: str) -> None:
        """Record when each key was last used, skipping keys already marked since stale_before."""

    def held_quarantine(self, ids: Collection[int]) -> set[int]:
        """Lock these quarantine rows and return the ids still held (status ``held``).

        A replay takes its item this way before storing it, so two replays of one item cannot
        both store it: PostgreSQL needs ``SELECT ... FOR UPDATE``; SQLite's BEGIN IMMEDIATE
        already holds the whole database.
        """

    def resolve_quarantine(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Mark quarantine rows resolved and write one audit row each.

        Rows are ``(quarantine_id, status, actor, at, outcome, event_id, note)``.
        """


class Store(ABC):
    """A database holding events, entities, quarantine, receipts and keys."""

    backend: str

    def __init__(
        self,
        engine: Engine,
        *,
        retry_after_s: int,
        query_timeout_ms: int,
        compression: CompressionSettings,
    ) -> None:
        self.engine = engine
        self.query_timeout_ms = query_timeout_ms
        self.keys = KeyRegistry(engine, retry_after_s=retry_after_s)
        # Compresses the raw events this process writes; decodes every raw event it reads.
        self.raw_codec = RawCodec(compression, now=lambda: utc_text(datetime.now(UTC)))
        self.events = EventReader(engine, codec=self.raw_codec, time_limit=self.time_limit)
        self.quarantine = QuarantineDesk(engine, time_limit=self.time_limit)

    @abstractmethod
    def write_transaction(self) -> AbstractContextManager[WriteTransaction]:
        """Open the one write transaction of a group commit; commits on clean exit."""

    @abstractmethod
    def time_limit(self, connection: Connection) -> AbstractContextManager[None]:
        """Stop what runs on this read connection meanwhile once it passes query_timeout_ms.

        The readers (``events``, ``quarantine``) wrap each read in it; the writer's connection
        never gets it.

        Raises:
            QueryTimeout: a statement ran past the limit (built by ``search.query_timeout``).
        """

    def snapshot(self, *, is_time_limited: bool = True) -> AbstractContextManager[Snapshot]:
        """One consistent read of events, receipts and quarantine (see ``storage.snapshot``).

        Reports run under query_timeout_ms; a verification of the rollups reads every event.
        """
        return read_snapshot(
            self.engine, self.raw_codec, self.time_limit if is_time_limited else None
        )

    def set_group_names(self, names: Sequence[tuple[int, str, str]]) -> None:
        """Give courses their names, ``(group key, name, eventTime it was given at)``.

        For a store whose rollups were filled from its events (revision 0007), where the
        names need the raw JSON; a name given by a newer event since is kept.
        """
        newer_or_none = or_(
            rollup_groups.c.name_event_time.is_(None),
            rollup_groups.c.name_event_time <= bindparam("given_at"),
        )
        statement = (
            update(rollup_groups)
            .where(rollup_groups.c.group_key == bindparam("key"), rollup_groups.c.shard == 0)
            .where(newer_or_none)
            .values(name=bindparam("given_name"), name_event_time=bindparam("given_at"))
        )
        with self.engine.begin() as connection:
            connection.execute(
                statement,
                [{"key": key, "given_name": name, "given_at": at} for key, name, at in names],
            )

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def migrate(self) -> None:
        """Bring the schema to the newest revision."""
        with self.engine.connect() as connection:
            migrate.upgrade(connection)

    def schema_state(self) -> tuple[SchemaState, str | None]:
        """Where the database's schema stands against this code."""
        with self.engine.connect() as connection:
            return migrate.schema_state(connection)

    def require_current_schema(self, *, create_if_empty: bool) -> None:
        """Create an empty database's schema, or refuse one whose schema is not current.

        Raises:
            SchemaOutOfDate: naming the command that upgrades it.
        """
        state, revision = self.schema_state()
        if state is SchemaState.EMPTY and create_if_empty:
            self.migrate()
        elif state is SchemaState.OUTDATED:
            raise SchemaOutOfDate(
                f"the database schema is at revision {revision}, this version needs "
                f"{migrate.head_revision()}: run `caliper-store migrate` first"
            )
        elif state is SchemaState.NEWER:
            raise SchemaOutOfDate(
                f"the database schema is at revision {revision}, newer than this version of "
                "caliper-store knows: upgrade caliper-store"
            )
        elif state is SchemaState.EMPTY:
            raise SchemaOutOfDate("the database has no schema: run `caliper-store migrate` first")

    def plain_rows_table(self) -> Table:
        """The table that may hold rows from before revision 0005, with their raw JSON plain."""
        return events

    @abstractmethod
    def reclaim_space(self) -> None:
        """Give the space of rewritten rows back (after a conversion): VACUUM, in each's way."""

    @abstractmethod
    def relation_sizes(self) -> list[RelationSize]:
        """Bytes on disk of every table and index of the store (``stats --storage``)."""

    @abstractmethod
    def check_ready(self) -> None:
        """Raise unless the database answers and accepts a write transaction.

        Runs on its own connection: the writer's connection belongs to the writer thread.
        """

    def prepare_batch(self, requests: Sequence[WriteRequest]) -> None:
        """Backend work needed before a batch's transaction (PostgreSQL: partitions)."""
        del requests  # nothing to prepare by default

    def prepare_for_traffic(self, now: datetime) -> None:
        """Backend work at server start (PostgreSQL: partitions for the coming months)."""
        del now  # nothing to prepare by default

    def lookup_event_hashes(self, event_ids: Collection[str]) -> dict[str, str]:
        """Stored content hashes of these event ids (for dry-run validation)."""
        if not event_ids:
            return {}
        found: dict[str, str] = {}
        with self.engine.connect() as connection:
            ids = list(event_ids)
            for start in range(0, len(ids), 500):
                query = select(events.c.event_id, events.c.content_hash).where(
                    matching_event_ids(connection.dialect.name, ids[start : start + 500])
                )
                found.update({row.event_id: row.content_hash for row in connection.execute(query)})
        return found

    def stats(self) -> dict[str, Any]:
        """Counts people ask for first: events by type and action, quarantine by reason, per key.

        "Quarantined" counts the items still held; replayed and discarded ones are counted apart
        in ``quarantine_by_status``.
        """
        is_held = quarantine.c.status == "held"
        with self.engine.connect() as connection:
            event_total = connection.scalar(select(func.count()).select_from(events)) or 0
            quarantine_total = (
                connection.scalar(select(func.count()).select_from(quarantine).where(is_held)) or 0
            )
            by_status = connection.execute(
                select(quarantine.c.status, func.count()).group_by(quarantine.c.status)
            ).all()
            entity_total = connection.scalar(select(func.count()).select_from(entities)) or 0
            receipt_total = connection.scalar(select(func.count()).select_from(receipts)) or 0
            by_type = connection.execute(
                select(events.c.event_type, events.c.action, func.count().label("n"))
                .group_by(events.c.event_type, events.c.action)
                .order_by(func.count().desc())
            ).all()
            by_reason = connection.execute(
                select(quarantine.c.reason, func.count().label("n"))
                .where(is_held)
                .group_by(quarantine.c.reason)
                .order_by(func.count().desc())
            ).all()
            event_keys: dict[int, int] = dict(
                connection.execute(
                    select(events.c.api_key_id, func.count()).group_by(events.c.api_key_id)
                ).all()
            )
            quarantine_keys: dict[int, int] = dict(
                connection.execute(
                    select(quarantine.c.api_key_id, func.count())
                    .where(is_held)
                    .group_by(quarantine.c.api_key_id)
                ).all()
            )
            duplicate_keys: dict[int, int | None] = dict(
                connection.execute(
                    select(receipts.c.api_key_id, func.sum(receipts.c.duplicate_count)).group_by(
                        receipts.c.api_key_id
                    )
                ).all()
            )
            key_rows = connection.execute(
                select(api_keys.c.id, api_keys.c.label, api_keys.c.key_prefix).order_by(
                    api_keys.c.id
                )
            ).all()
        per_key = [
            {
                "key_id": row.id,
                "label": row.label,
                "prefix": row.key_prefix,
                "events": event_keys.get(row.id, 0),
                "duplicates": int(duplicate_keys.get(row.id) or 0),
                "quarantined": quarantine_keys.get(row.id, 0),
            }
            for row in key_rows
        ]
        return {
            "events": event_total,
            "entities": entity_total,
            "quarantined": quarantine_total,
            "receipts": receipt_total,
            "duplicates": sum(key["duplicates"] for key in per_key),
            "by_type": [
                {"type": row.event_type, "action": row.action, "events": row.n} for row in by_type
            ],
            "quarantine_by_reason": [{"reason": row.reason, "items": row.n} for row in by_reason],
            "quarantine_by_status": {status: count for status, count in by_status},
            "by_key": per_key,
        }

    def iter_event_ids(self) -> Iterator[str]:
        """Every stored event id (for tests and consistency checks)."""
        with self.engine.connect() as connection:
            yield from connection.execute(select(events.c.event_id)).scalars()
