"""Initial schema: api keys, receipts, events, entities, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("last_used_at", sa.Text),
        sa.Column("status_changed_at", sa.Text),
    )
    op.create_index("api_keys_prefix", "api_keys", ["key_prefix"])
    op.create_table(
        "receipts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("sensor", sa.Text),
        sa.Column("send_time", sa.Text),
        sa.Column("data_version", sa.Text),
        sa.Column("is_envelope", sa.Boolean, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("body_bytes", sa.Integer, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("stored_count", sa.Integer, nullable=False),
        sa.Column("duplicate_count", sa.Integer, nullable=False),
        sa.Column("quarantined_count", sa.Integer, nullable=False),
    )
    op.create_index("receipts_received_at", "receipts", ["received_at"])
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
        sa.Column("event_time", sa.Text, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    # The database's unique key decides duplicates, so concurrent writers cannot race.
    op.create_index("events_event_id", "events", ["event_id"], unique=True)
    op.create_index("events_event_time", "events", ["event_time"])
    op.create_table(
        "entities",
        sa.Column("seq", BIG_ID, primary_key=True),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("caliper_version", sa.String(8), nullable=False),
        sa.Column("entity_type", sa.Text, nullable=False),
        sa.Column("api_key_id", sa.Integer, nullable=False),
        sa.Column("receipt_id", BIG_ID, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
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
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_index("quarantine_reason", "quarantine", ["reason"])
    op.create_index("quarantine_receipt", "quarantine", ["receipt_id"])


def downgrade() -> None:
    for table in ("quarantine", "entities", "events", "receipts", "api_keys"):
        op.drop_table(table)
