"""The tables of the store as SQLAlchemy Core objects, used for queries on every backend.

The tables are created and changed only by the Alembic revisions in ``storage/migrations``;
these objects describe the current head so that SQL can be written once for all backends.
Times are ``timestamptz`` on PostgreSQL; on SQLite they are ISO 8601 UTC text, except the two
indexed times of an event, which are integer microseconds (see :class:`UtcMicros`).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()


@functools.lru_cache(maxsize=65_536)  # actors, courses and objects recur: 0.07 µs against 0.64
def iri_key(iri: str | None) -> int | None:
    """A stable signed 64-bit hash of an IRI, the indexed stand-in for the IRI itself.

    Indexes on 90-character IRIs were the largest cost of an insert (ARCHITECTURE.md section 6);
    on these integers they cost a third as much. A query filters on the key and the IRI
    together, so a hash collision can never return a wrong row.
    """
    return None if iri is None else hash64(iri)


def hash64(text: str) -> int:
    """A stable signed 64-bit hash of ``text`` (blake2b): an integer index key for long text."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def utc_text(moment: datetime) -> str:
    """Fixed-width UTC text (``2024-01-31T12:00:00.000000Z``): the store's one form of a time."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utc_micros(moment: str) -> int:
    """Microseconds since 1970-01-01 UTC of an ISO 8601 time (``utc_text`` form, or any offset).

    Naive times are taken as UTC. Subtracting an aware epoch costs 0.36 µs against 1.3 µs for
    converting to naive UTC first, twice per event in the SQLite writer.
    """
    parsed = datetime.fromisoformat(moment)
    return (parsed - (_EPOCH if parsed.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND


def micros_text(micros: int) -> str:
    """The ``utc_text`` form of a count of microseconds since 1970-01-01 UTC.

    Every event row read on SQLite pays it twice (event and received times); the rows of one
    page or batch share few seconds, so the second's text is kept: 0.45 µs against 2.0.
    """
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second_text(seconds)}.{fraction:06d}Z"


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds")


class UtcTime(TypeDecorator[str]):
    """A UTC instant: ``timestamptz`` on PostgreSQL, fixed-width ISO text on SQLite.

    Python code on both sides sees and binds the same fixed-width UTC text, so one query
    serves both backends and text comparisons on SQLite order like times.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The column type each backend stores."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """UTC text or a datetime in, the backend's value out."""
        if value is None:
            return None
        if dialect.name == "postgresql":
            return datetime.fromisoformat(value) if isinstance(value, str) else value
        return utc_text(value) if isinstance(value, datetime) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Always UTC text out, whatever the backend returned."""
        if value is None:
            return None
        return utc_text(value) if isinstance(value, datetime) else str(value)


class UtcMicros(UtcTime):
    """A UTC instant kept as integer microseconds on SQLite (``timestamptz`` on PostgreSQL).

    For the event times that eight indexes carry: 8 bytes instead of 27 characters an entry
    made a group commit dirty fewer index pages (bare SQLite with the same indexes, 5,000-row
    commits: 25,800 against 35,400 events/s; the writer alone 18,400 against 20,900; revision
    0003). Code still binds and reads the same fixed-width UTC text.
    """

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``timestamptz`` on PostgreSQL, an integer elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """UTC text or a datetime in, microseconds out (SQLite)."""
        if value is None or dialect.name == "postgresql":
            return super().process_bind_param(value, dialect)
        if isinstance(value, datetime):
            return utc_micros(utc_text(value))
        return value if isinstance(value, int) else utc_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Always UTC text out."""
        if isinstance(value, int):
            return micros_text(value)
        return super().process_result_value(value, dialect)


BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("label", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("is_strict", Boolean, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("last_used_at", UtcTime),
    Column("status_changed_at", UtcTime),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("api_key_id", Integer, nullable=False),
    Column("sensor", Text),
    Column("send_time", UtcTime),
    Column("data_version", Text),
    Column("is_envelope", Boolean, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("body_bytes", Integer, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("stored_count", Integer, nullable=False),
    Column("duplicate_count", Integer, nullable=False),
    Column("quarantined_count", Integer, nullable=False),
    # Events an ingest rule dropped, and the rule set that processed the receipt's items
    # (revision 0008; NULL: no rules file).
    Column("dropped_count", Integer, nullable=False, server_default="0"),
    Column("rule_set_id", Integer),
)

# Every version of the ingest rules file a server ran with (privacy/rules.py).
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)

# Administrative actions: who did what, when, to how many rows (privacy/audit.py). A person
# erased is named only by an HMAC of their id.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("at", UtcTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text),
    Column("rows", BigInteger),
    Column("detail", Text),
)

events = Table(
    "events",
    metadata,
    Column("seq", BIG_ID, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("has_derived_id", Boolean, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("caliper_version", String(8), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("actor_type", Text),
    Column("actor_external_id", Text),
    Column("object_id", Text, nullable=False),
    Column("object_type", Text),
    Column("group_id", Text),
    Column("membership_role", Text),
    Column("session_id", Text),
    Column("ed_app_id", Text),
    Column("sensor", Text),
    Column("api_key_id", Integer, nullable=False),
    Column("receipt_id", BIG_ID, nullable=False),
    Column("is_extension", Boolean, nullable=False),
    Column("event_time", UtcMicros, nullable=False),
    Column("received_at", UtcMicros, nullable=False),
    # The JSON as sent, for rows from before revision 0005 not yet converted; '' once it is
    # kept compressed in raw_zstd (the column stays NOT NULL: SQLite cannot relax that in place).
    Column("raw", Text, nullable=False),
    # 64-bit hashes of the long IRIs: the filter indexes are built on these (see iri_key).
    Column("actor_key", BigInteger),
    Column("object_key", BigInteger),
    Column("group_key", BigInteger),
    # The raw JSON as a zstd frame, and the raw_dictionaries row it was compressed with
    # (0: zstd without a dictionary; NULL: the JSON is still plain text in raw). See
    # storage/compression.py.
    Column("raw_zstd", LargeBinary),
    Column("raw_dictionary", Integer),
    # The rule_sets row of the ingest rules that processed the event (NULL: none; 0008).
    Column("rule_set_id", Integer),
    # The session id's 64-bit hash, indexed as the other IRIs are (revision 0011).
    Column("session_key", BigInteger),
)

# SQLite only (storage/segments.py): the arrival segments the events view unites, each from
# the seq of its first event; and how an id is found across them, by its 64-bit hash (the
# newest segment's in recent_event_id_hashes, merged into event_id_hashes when it is full) or,
# for the rare id whose hash an earlier id already has, by the id itself.
event_segments = Table(
    "event_segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("first_seq", BIG_ID, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)


def _id_hash_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id_hash", BIG_ID, primary_key=True),
        Column("seq", BIG_ID, nullable=False),
    )


event_id_hashes = _id_hash_table("event_id_hashes")
recent_event_id_hashes = _id_hash_table("recent_event_id_hashes")

event_id_collisions = Table(
    "event_id_collisions",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("seq", BIG_ID, nullable=False),
)

# zstd dictionaries trained on the store's own events; never deleted while a row names one.
raw_dictionaries = Table(
    "raw_dictionaries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", UtcTime, nullable=False),
    Column("level", Integer, nullable=False),
    Column("sample_events", Integer, nullable=False),
    Column("sample_bytes", BigInteger, nullable=False),
    Column("compressed_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

entities = Table(
    "entities",
    metadata,
    Column("seq", BIG_ID, primary_key=True),
    Column("entity_id", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("caliper_version", String(8), nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("api_key_id", Integer, nullable=False),
    Column("receipt_id", BIG_ID, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("raw", Text, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("receipt_id", BIG_ID, nullable=False),
    Column("api_key_id", Integer, nullable=False),
    Column("item_index", Integer, nullable=False),
    Column("event_id", Text),
    Column("caliper_version", String(8)),
    Column("reason", String(64), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("received_at", UtcTime, nullable=False),
    Column("raw", Text, nullable=False),
    # held, replayed or discarded; only held items wait for a decision (revision 0002).
    Column("status", String(16), nullable=False, server_default="held"),
    Column("resolved_at", UtcTime),
)

# One row per decision taken on a quarantined item: nothing leaves quarantine without a trace.
quarantine_audit = Table(
    "quarantine_audit",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("quarantine_id", BIG_ID, nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UtcTime, nullable=False),
    Column("outcome", String(16)),
    Column("event_id", Text),
    Column("note", Text),
)

# Rollups kept in the transaction that stores the events they count (storage/rollups.py), so
# reports over a whole store read thousands of rows, not millions. Only stored events count:
# duplicates, conflicts and quarantined items never reach them. `caliper-store reports verify`
# recomputes them from the events. Times are integer microseconds on SQLite, as in events.
# shard: the writer process's share of a counter row, summed on reading, so concurrent
# PostgreSQL writers never wait on one row.
rollup_groups = Table(
    "rollup_groups",
    metadata,
    Column("group_key", BigInteger, primary_key=True, autoincrement=False),
    Column("shard", SmallInteger, primary_key=True, autoincrement=False),
    Column("group_id", Text, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("first_event_time", UtcMicros, nullable=False),
    Column("last_event_time", UtcMicros, nullable=False),
    # The name in the group's newest event (by eventTime, then arrival) that carries one.
    Column("name", Text),
    Column("name_event_time", UtcMicros),
)

rollup_group_actors = Table(
    "rollup_group_actors",
    metadata,
    Column("group_key", BigInteger, primary_key=True, autoincrement=False),
    Column("actor_key", BigInteger, primary_key=True, autoincrement=False),
    Column("actor_id", Text, nullable=False),
    Column("is_person", Boolean, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("first_event_time", UtcMicros, nullable=False),
    Column("last_event_time", UtcMicros, nullable=False),
)

# sensor is '' for requests that named none (a key column cannot be NULL).
rollup_group_sources = Table(
    "rollup_group_sources",
    metadata,
    Column("group_key", BigInteger, primary_key=True, autoincrement=False),
    Column("shard", SmallInteger, primary_key=True, autoincrement=False),
    Column("api_key_id", Integer, primary_key=True, autoincrement=False),
    Column("sensor", Text, primary_key=True),
    Column("events", BigInteger, nullable=False),
)

# day: days since 1970-01-01 of the events' eventTime, in UTC.
rollup_daily_keys = Table(
    "rollup_daily_keys",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("shard", SmallInteger, primary_key=True, autoincrement=False),
    Column("api_key_id", Integer, primary_key=True, autoincrement=False),
    Column("events", BigInteger, nullable=False),
)

# The logins (Canvas's user_login) actors were seen with, so that a person can be found by one;
# kept by every commit beside the rollups. last_event_time, the newest eventTime that carried
# the pair, lets retention remove it with the last such event.
actor_logins = Table(
    "actor_logins",
    metadata,
    Column("login", Text, primary_key=True),
    Column("actor_id", Text, primary_key=True),
    Column("last_event_time", UtcMicros, nullable=False),
)

# Forwarding (forward/): each destination with its place in the events table, the events a
# destination refused for good, and the lease that lets one forwarder run per database. On
# PostgreSQL, events also has commit_xid (revision 0010), which this table does not declare:
# only the forwarder's queries name it.
forward_destinations = Table(
    "forward_destinations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("api_key", Text),
    Column("event_types", Text),
    Column("key_ids", Text),
    Column("batch_events", Integer, nullable=False),
    Column("is_paused", Boolean, nullable=False),
    Column("cursor", Text, nullable=False),
    Column("cursor_received_at", UtcMicros),
    Column("delivered_events", BigInteger, nullable=False),
    Column("last_delivered_at", UtcMicros),
    Column("last_error", Text),
    Column("last_error_at", UtcMicros),
    Column("created_at", UtcMicros, nullable=False),
)

forward_dead_letters = Table(
    "forward_dead_letters",
    metadata,
    Column("id", BIG_ID, primary_key=True),
    Column("destination_id", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("answer", Text, nullable=False),
    Column("failed_at", UtcMicros, nullable=False),
    Column("replayed_at", UtcMicros),
)

forward_leases = Table(
    "forward_leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", UtcMicros, nullable=False),
)

# Column order of an events INSERT on the hot path (both backends bind rows in this order).
EVENT_COLUMNS: tuple[str, ...] = tuple(
    column.name for column in events.columns if column.name != "seq"
)
