"""Initial schema: api keys, receipts, events, entities, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Times: fixed-width UTC text on SQLite, timestamptz on PostgreSQL (see storage.schema.UtcTime).
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_strict", sa.Boolean, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_used_at", TIME),
        sa.Column("status_changed_at", TIME),
    )
    op.create_index("api_keys_prefix", "api_keys", ["key_prefix"])
    op.create_table(
        "receipts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("sensor", sa.Text),
        sa.Column("send_time", TIME),
        sa.Column("data_version", sa.Text),
        sa.Column("is_envelope", sa.Boolean, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("body_bytes", sa.Integer, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("stored_count", sa.Integer, nullable=False),
        sa.Column("duplicate_count", sa.Integer, nullable=False),
        sa.Column("quarantined_count", sa.Integer, nullable=False),
    )
    op.create_index("receipts_received_at", "receipts", ["received_at"])
    if op.get_bind().dialect.name == "postgresql":
        _create_postgres_events()
    else:
        _create_sqlite_events()
    op.create_table(
        "entities",
        sa.Column("seq", BIG_ID, primary_key=True),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("caliper_version", sa.String(8), nullable=False),
        sa.Column("entity_type", sa.Text, nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("receipt_id", BIG_ID, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("entities_id_content", "entities", ["entity_id", "content_hash"], unique=True)
    op.create_table(
        "quarantine",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("receipt_id", BIG_ID, nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Text),
        sa.Column("caliper_version", sa.String(8)),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("quarantine_reason", "quarantine", ["reason"])
    op.create_index("quarantine_receipt", "quarantine", ["receipt_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("event_ids")
    for table in ("quarantine", "entities", "events", "receipts", "api_keys"):
        op.drop_table(table)


def _create_sqlite_events() -> None:
    op.create_table(
        "events",
        sa.Column("seq", BIG_ID, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("has_derived_id", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("caliper_version", sa.String(8), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("actor_type", sa.Text),
        sa.Column("actor_external_id", sa.Text),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("object_type", sa.Text),
        sa.Column("group_id", sa.Text),
        sa.Column("membership_role", sa.Text),
        sa.Column("session_id", sa.Text),
        sa.Column("ed_app_id", sa.Text),
        sa.Column("sensor", sa.Text),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("receipt_id", BIG_ID, nullable=False),
        sa.Column("is_extension", sa.Boolean, nullable=False),
        sa.Column("event_time", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("actor_key", sa.BigInteger),
        sa.Column("object_key", sa.BigInteger),
        sa.Column("group_key", sa.BigInteger),
    )
    # The database's unique key decides duplicates, so concurrent writers cannot race.
    op.create_index("events_event_id", "events", ["event_id"], unique=True)
    op.create_index("events_event_time", "events", ["event_time"])


# On PostgreSQL, events are partitioned by month of event_time. A unique index on a partitioned
# table must contain the partition key, so "one event id, once, across all months" lives in
# event_ids, written in the same transaction. Partitions are created on demand by the writer.
POSTGRES_EVENTS = """
CREATE SEQUENCE events_seq;
CREATE TABLE events (
    seq bigint NOT NULL DEFAULT nextval('events_seq'),
    event_id text NOT NULL,
    has_derived_id boolean NOT NULL,
    content_hash varchar(64) NOT NULL,
    caliper_version varchar(8) NOT NULL,
    event_type text NOT NULL,
    action text NOT NULL,
    actor_id text NOT NULL,
    actor_type text,
    actor_external_id text,
    object_id text NOT NULL,
    object_type text,
    group_id text,
    membership_role text,
    session_id text,
    ed_app_id text,
    sensor text,
    api_key_id integer NOT NULL,
    receipt_id bigint NOT NULL,
    is_extension boolean NOT NULL,
    event_time timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    raw text NOT NULL,
    actor_key bigint,
    object_key bigint,
    group_key bigint,
    PRIMARY KEY (seq, event_time)
) PARTITION BY RANGE (event_time);
ALTER SEQUENCE events_seq OWNED BY events.seq;
CREATE INDEX events_event_time ON events USING brin (event_time);
CREATE INDEX events_event_id ON events (event_id);
CREATE TABLE event_ids (
    event_id text PRIMARY KEY,
    content_hash varchar(64) NOT NULL,
    event_time timestamptz NOT NULL
);
"""


def _create_postgres_events() -> None:
    for statement in POSTGRES_EVENTS.split(";"):
        if statement.strip():
            op.execute(statement)
