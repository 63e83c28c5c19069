"""Rollups for reports over a whole store, kept in the transaction that stores the events.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Four small tables (storage/rollups.py): per course, per course and actor, per course and
source, per day and key. They are filled here from the stored events by INSERT ... SELECT, in
this revision's transaction; the courses' names, which need the raw JSON, are filled by
`caliper-store migrate` right after (reports.fill_group_names). About a minute for 10 million
events on SQLite (docs/reports.md).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from caliper_store.storage.rollups import backfill_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Times as events keeps them: integer microseconds on SQLite, timestamptz on PostgreSQL.
TIME = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rollup_groups",
        sa.Column("group_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("shard", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("group_id", sa.Text, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("first_event_time", TIME, nullable=False),
        sa.Column("last_event_time", TIME, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("name_event_time", TIME),
    )
    op.create_table(
        "rollup_group_actors",
        sa.Column("group_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("actor_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("is_person", sa.Boolean, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("first_event_time", TIME, nullable=False),
        sa.Column("last_event_time", TIME, nullable=False),
    )
    op.create_table(
        "rollup_group_sources",
        sa.Column("group_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("shard", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("api_key_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sensor", sa.Text, primary_key=True),
        sa.Column("events", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rollup_daily_keys",
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("shard", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("api_key_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("events", sa.BigInteger, nullable=False),
    )
    for statement in backfill_sql(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for table in ("rollup_daily_keys", "rollup_group_sources", "rollup_group_actors"):
        op.drop_table(table)
    op.drop_table("rollup_groups")
