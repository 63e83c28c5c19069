"""PostgreSQL: compress the raw JSON of events, entities and quarantine with lz4, not pglz.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

A Learn event's raw JSON is about 2 KB, just over the size at which PostgreSQL compresses a
row, so every event went through pglz on the server (1,998 bytes down to 1,056 on average).
lz4 costs a fraction of that CPU for a similar ratio: Learn envelopes with two server
processes went from 17,760 to 20,620 events/s with both cores busy (README "Performance").

Only values written from now on use lz4; rows already stored keep pglz, and both read back
the same. A partitioned table passes the setting to its partitions, present and future.
A PostgreSQL built without lz4 keeps pglz (the server says so in pg_settings). SQLite does not
compress: nothing to do there.
"""

from alembic import op
from sqlalchemy import text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RAW_COLUMNS = [("events", "raw"), ("entities", "raw"), ("quarantine", "raw")]


def _has_lz4() -> bool:
    methods = op.get_bind().scalar(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    )
    return "lz4" in (methods or [])


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql" or not _has_lz4():
        return
    for table, column in RAW_COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
