"""Forwarding: destinations with their cursors, dead letters, the forwarder's lease.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

A destination's cursor is a place in the events table itself (no outbox row per event). On
SQLite, write transactions run one at a time, so ``seq`` order is commit order and the cursor
is a seq. On PostgreSQL, sequence values are taken at insert and transactions commit out of
order, so each event also records the id of the transaction that wrote it (``commit_xid``,
``pg_current_xact_id()``): the forwarder reads in (commit_xid, seq) order and only below the
oldest running transaction (``pg_snapshot_xmin``), where nothing can still appear. Adding the
column with no default and then setting one is instant: rows from before it have NULL, and
are read first, by seq.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIME = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forward_destinations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("api_key", sa.Text),
        sa.Column("event_types", sa.Text),
        sa.Column("key_ids", sa.Text),
        sa.Column("batch_events", sa.Integer, nullable=False),
        sa.Column("is_paused", sa.Boolean, nullable=False),
        sa.Column("cursor", sa.Text, nullable=False),
        sa.Column("cursor_received_at", TIME),
        sa.Column("delivered_events", sa.BigInteger, nullable=False),
        sa.Column("last_delivered_at", TIME),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", TIME),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "forward_dead_letters",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("failed_at", TIME, nullable=False),
        sa.Column("replayed_at", TIME),
    )
    op.create_index(
        "forward_dead_letters_destination", "forward_dead_letters", ["destination_id", "id"]
    )
    op.create_table(
        "forward_leases",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ADD COLUMN commit_xid xid8")
        op.execute("ALTER TABLE events ALTER COLUMN commit_xid SET DEFAULT pg_current_xact_id()")
        op.execute("CREATE INDEX events_commit_order ON events (commit_xid, seq)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX events_commit_order")
        op.execute("ALTER TABLE events DROP COLUMN commit_xid")
    op.drop_table("forward_leases")
    op.drop_index("forward_dead_letters_destination", "forward_dead_letters")
    op.drop_table("forward_dead_letters")
    op.drop_table("forward_destinations")
