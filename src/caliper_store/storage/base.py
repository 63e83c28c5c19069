"""The storage interface: a Store with shared SQLAlchemy Core reads, and backend write transactions.

A backend supplies only two things: how to open its engine, and a :class:`WriteTransaction`
that turns prepared rows into SQL inside one transaction. The rules for duplicates, conflicts
and receipts live once, in ``storage/writer.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from caliper_store.errors import ConfigurationError, SchemaOutOfDate
from caliper_store.storage import audit, migrate, retention
from caliper_store.storage.compression import (
    CompressionSettings,
    DictionaryTransaction,
    RawCodec,
)
from caliper_store.storage.forwarding import ForwardBook
from caliper_store.storage.keys import KeyRegistry
from caliper_store.storage.logins import LOGIN_FIELD, actor_login, newest_pairs
from caliper_store.storage.migrate import SchemaState
from caliper_store.storage.records import WriteRequest
from caliper_store.storage.removal import RemovalTotals, RemovedEvent, remove_in_batches
from caliper_store.storage.retention import Cutoffs, ExpiredCount
from caliper_store.storage.rollups import StoredEvent, group_name
from caliper_store.storage.schema import (
    actor_logins,
    api_keys,
    entities,
    events,
    iri_key,
    quarantine,
    receipts,
    rollup_groups,
    rule_sets,
    utc_text,
)
from caliper_store.storage.search import (
    Condition,
    EventReader,
    QuarantineDesk,
    matching_event_ids,
)
from caliper_store.storage.snapshot import Snapshot, read_snapshot
from caliper_store.storage.usage import RelationSize

# Values bound in one statement of the login pairs: under SQLite's 999 variables.
ROWS_PER_STATEMENT = 300


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

    # A removal (purge, erase) runs in write transactions too: storage/removal.py.
    def exclude_rollup_writers(self) -> None:
        """Keep every other transaction out of the rollups until this one ends.

        A removal then changes rollup rows that no writer holds, in any order.
        """

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
        self.forwarding = ForwardBook(engine, self.raw_codec)

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

    def snapshot(
        self, *, is_time_limited: bool = True, shares_reads: bool = False
    ) -> AbstractContextManager[Snapshot]:
        """One consistent read of events, receipts and quarantine (see ``storage.snapshot``).

        Reports run under query_timeout_ms; a verification of the rollups reads every event.
        ``shares_reads``: reports run together serve a read they repeat from memory.
        """
        return read_snapshot(
            self.engine,
            self.raw_codec,
            self.time_limit if is_time_limited else None,
            shares_reads=shares_reads,
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

    def use_rule_set(self, *, digest: str | None, path: str, text: str, now: str) -> int | None:
        """Record the rules file this server runs with; return its ``rule_sets`` id.

        A version not seen before is kept (its text, for anyone asking later what processed an
        event); a change from the version last taken into use is written to the audit log.
        ``digest`` None: the server runs without rules (also audited when it had some).
        """
        with self.engine.begin() as connection:
            rule_set_id = None
            if digest is not None:
                rule_set_id = connection.scalar(
                    select(rule_sets.c.id).where(rule_sets.c.digest == digest)
                )
                if rule_set_id is None:
                    rule_set_id = connection.execute(
                        insert(rule_sets).values(
                            digest=digest, path=path, text=text, created_at=now
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
            last = audit.entries(connection, limit=1, action="rules_changed")
            previous = last[0].detail.get("digest") if last and last[0].detail else None
            if previous != digest and (last or digest is not None):
                audit.record(
                    connection,
                    at=now,
                    actor="server",
                    action="rules_changed",
                    target=path or None,
                    detail={"digest": digest, "previous": previous, "rule_set_id": rule_set_id},
                )
        return None if rule_set_id is None else int(rule_set_id)

    def record_audit(
        self,
        *,
        at: str,
        actor: str,
        action: audit.AuditAction,
        target: str | None = None,
        rows: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Add one row to the audit log, in a transaction of its own."""
        with self.engine.begin() as connection:
            audit.record(
                connection,
                at=at,
                actor=actor,
                action=action,
                target=target,
                rows=rows,
                detail=detail,
            )

    def audit_entries(
        self, *, limit: int, before_id: int | None = None, action: str | None = None
    ) -> list[audit.AuditEntry]:
        """The audit log, newest first (``caliper-store audit``, ``GET /api/audit``)."""
        with self.engine.connect() as connection:
            return audit.entries(connection, limit=limit, before_id=before_id, action=action)

    def remove_events(
        self,
        seqs: Sequence[int],
        *,
        batch_events: int,
        batch_ms: int = 0,
        on_batch: Callable[[int], None] | None = None,
    ) -> RemovalTotals:
        """Delete these events, their ids and what the rollups counted of them, in batches.

        At most ``batch_events`` each, paced to ``batch_ms`` (``remove_in_batches``).
        """
        totals = remove_in_batches(
            self.write_transaction,
            seqs,
            batch_events=batch_events,
            batch_ms=batch_ms,
            on_batch=on_batch,
        )
        if totals.names_lost:
            self.rename_groups(totals.names_lost)
        return totals

    def rename_groups(self, names_lost: dict[str, Any]) -> None:
        """Name each course again from its newest remaining event that names it (or none).

        ``names_lost`` gives, per course, the time its name was given at by an event now
        removed; a name given meanwhile by a newer event is kept.
        """
        for group_id, lost_at in names_lost.items():
            found: tuple[str, str] | None = None
            with self.snapshot(is_time_limited=False) as snapshot:
                rows = snapshot.events(
                    [Condition("group_id", "in", (group_id,))],
                    ("event_time",),
                    with_raw=True,
                    is_newest_first=True,
                )
                for event_time, raw in rows:
                    document = orjson.loads(str(raw))
                    name = group_name(document.get("group")) if isinstance(document, dict) else None
                    if name is not None:
                        found = (name, str(event_time))
                        break
            with self.write_transaction() as transaction:
                transaction.exclude_rollup_writers()  # its rows, in an order writers may not take
                transaction.rows(
                    "UPDATE rollup_groups SET name = ?, name_event_time = ? "
                    "WHERE group_key = ? AND name_event_time = ?",
                    (
                        found[0] if found else None,
                        transaction.time_value(found[1]) if found else None,
                        iri_key(group_id),
                        lost_at,
                    ),
                )

    def expired(self, cutoffs: Cutoffs) -> list[ExpiredCount]:
        """What a purge with these cutoffs removes, by kind, month and key."""
        with self.engine.connect() as connection:
            return retention.expired_counts(connection, cutoffs)

    def expired_event_seqs(self, cutoff: str, limit: int) -> list[int]:
        """The oldest ``limit`` events whose eventTime is before ``cutoff``."""
        with self.engine.connect() as connection:
            return retention.expired_event_seqs(connection, cutoff, limit)

    def delete_expired(self, kind: retention.Kind, cutoff: str, batch_rows: int) -> int:
        """Delete quarantined items or receipts received before ``cutoff``, in batches."""
        return retention.delete_expired(self.engine, kind, cutoff, batch_rows)

    def delete_rows(
        self, kind: Literal["quarantine", "entities"], ids: Sequence[int], batch_rows: int
    ) -> int:
        """Delete quarantined items (by id) or entity descriptions (by seq), in batches."""
        column = quarantine.c.id if kind == "quarantine" else entities.c.seq
        return self._delete_where_in(column, ids, batch_rows)

    def _delete_where_in(self, column: Column[Any], values: Iterable[Any], batch_rows: int) -> int:
        """Delete the rows whose ``column`` is one of ``values``, ``batch_rows`` a transaction."""
        removed = 0
        ordered = sorted(set(values))
        for start in range(0, len(ordered), batch_rows):
            with self.engine.begin() as connection:
                chunk = ordered[start : start + batch_rows]
                statement = delete(column.table).where(column.in_(chunk))
                removed += connection.execute(statement).rowcount
        return removed

    def forget_logins(self, logins: Collection[str], actor_ids: Collection[str]) -> int:
        """Delete the login pairs of these logins or actors (an erase); how many went."""
        by_actor = self._delete_where_in(actor_logins.c.actor_id, actor_ids, ROWS_PER_STATEMENT)
        return by_actor + self._delete_where_in(actor_logins.c.login, logins, ROWS_PER_STATEMENT)

    def forget_logins_before(self, cutoff: str) -> int:
        """Delete the login pairs no event since ``cutoff`` (an eventTime) carried (a purge)."""
        with self.engine.begin() as connection:
            statement = delete(actor_logins).where(actor_logins.c.last_event_time < cutoff)
            return int(connection.execute(statement).rowcount)

    def fill_actor_logins(self, progress: Callable[[int], None] | None = None) -> int:
        """Keep the logins of every stored event (schema revision 0009); how many pairs."""
        with self.snapshot(is_time_limited=False) as snapshot:
            rows = snapshot.events([], ("actor_id", "event_time"), with_raw=True)
            pairs = newest_pairs(_logins_seen(rows, progress))
        for start in range(0, len(pairs), ROWS_PER_STATEMENT):
            with self.engine.begin() as connection:
                connection.execute(
                    insert(actor_logins),
                    [
                        {"login": login, "actor_id": actor_id, "last_event_time": time}
                        for login, actor_id, time in pairs[start : start + ROWS_PER_STATEMENT]
                    ],
                )
        return len(pairs)

    def drop_past_partitions(self, before: str) -> list[str]:
        """Drop the emptied monthly partitions that end by ``before`` (PostgreSQL only)."""
        return []

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    def migrate(self, progress: migrate.ProgressBar | None = None) -> None:
        """Bring the schema to the newest revision, with ``progress`` bars for long steps."""
        with self.engine.connect() as connection:
            migrate.upgrade(connection, progress=progress)

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

    def backup_to(self, target: Path) -> int:
        """Write a consistent copy of the store to ``target`` while it serves; its bytes.

        Raises:
            ConfigurationError: the backend has tools of its own for this (PostgreSQL).
        """
        raise ConfigurationError(
            f"caliper-store backup copies SQLite stores; back up {self.backend} with its own "
            "tools (pg_dump, or a base backup with WAL archiving): see docs/operations.md",
            field="database_url",
        )

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
            receipt_sums = {
                row.api_key_id: row
                for row in connection.execute(
                    select(
                        receipts.c.api_key_id,
                        func.sum(receipts.c.duplicate_count).label("duplicates"),
                        func.sum(receipts.c.dropped_count).label("dropped"),
                    ).group_by(receipts.c.api_key_id)
                )
            }
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
                "duplicates": int(receipt_sums[row.id].duplicates or 0)
                if row.id in receipt_sums
                else 0,
                "dropped": int(receipt_sums[row.id].dropped or 0) if row.id in receipt_sums else 0,
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
            "dropped": sum(key["dropped"] for key in per_key),
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


def _logins_seen(
    rows: Iterable[tuple[object, ...]], progress: Callable[[int], None] | None
) -> Iterator[tuple[str, str, str]]:
    """(login, actor id, eventTime) of each stored event (actor id, eventTime, raw) with one."""
    for number, (actor_id, event_time, raw) in enumerate(rows, 1):
        if progress is not None and number % 10_000 == 0:
            progress(10_000)
        if LOGIN_FIELD not in str(raw):  # most producers send none: no parse
            continue
        document = orjson.loads(str(raw))
        login = actor_login(document) if isinstance(document, dict) else None
        if login is not None:
            yield login, str(actor_id), str(event_time)
