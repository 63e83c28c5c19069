"""Privacy: the rule sets that processed each receipt's events, dropped counts, an audit log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

`rule_sets` keeps every version of the ingest rules file the server ran with (its SHA-256 and
text; the pseudonym secret is never in it); each receipt names the one that processed its
events, and counts the events a rule dropped. `audit_log` records administrative actions:
keys, rules, purges, erasures, quarantine decisions (privacy/audit.py).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from caliper_store.storage.segments import remade_view_sql, stored_segment_tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    with op.batch_alter_table("receipts") as receipts:
        receipts.add_column(
            sa.Column("dropped_count", sa.Integer, nullable=False, server_default="0")
        )
        receipts.add_column(sa.Column("rule_set_id", sa.Integer))
    _add_event_rule_sets()
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("rows", sa.BigInteger),
        sa.Column("detail", sa.Text),
    )
    op.create_index("audit_log_at", "audit_log", ["at"])


def _add_event_rule_sets() -> None:
    """events.rule_set_id: on PostgreSQL once (partitions follow); on SQLite per segment.

    Adding a column that may be NULL rewrites no row on either backend.
    """
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE events ADD COLUMN rule_set_id integer")
        return
    tables = stored_segment_tables(bind)
    for table in tables:
        op.execute(f"ALTER TABLE {table} ADD COLUMN rule_set_id INTEGER")
    _remake_view(bind, tables)


def _remake_view(bind: sa.Connection, tables: list[str]) -> None:
    for statement in remade_view_sql(bind, tables):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE events DROP COLUMN rule_set_id")
    else:
        tables = stored_segment_tables(bind)
        op.execute("DROP VIEW IF EXISTS events")
        for table in tables:
            op.execute(f"ALTER TABLE {table} DROP COLUMN rule_set_id")
        _remake_view(bind, tables)
    op.drop_index("audit_log_at", "audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("receipts") as receipts:
        receipts.drop_column("rule_set_id")
        receipts.drop_column("dropped_count")
    op.drop_table("rule_sets")
