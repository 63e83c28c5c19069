"""SQLite events in arrival segments behind an ``events`` view; ids found by a 64-bit hash.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The events table becomes the first segment (a rename: its rows and indexes stay where they
are), the index on the id text gives way to ``event_id_hashes`` (filled here from the stored
ids) and ``recent_event_id_hashes``, and ``events`` becomes a view. The writer starts a new segment
every ``sqlite_segment_events`` events (storage/segments.py). Everything runs in one
transaction: a crash leaves the database at revision 0005, and the migration can run again.
PostgreSQL keeps its monthly partitions and is not changed.
"""

import sqlite3
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from alembic import op

from caliper_store.storage.schema import utc_text
from caliper_store.storage.segments import event_id_hash, events_view_sql, segment_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FIRST = segment_table(1)


def _raw(bind: sa.Connection) -> sqlite3.Connection:
    # The driver's connection, for its functions; env.py holds it in the revision's transaction.
    return cast(sqlite3.Connection, bind.connection.dbapi_connection)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw = _raw(bind)
    raw.create_function("caliper_event_id_hash", 1, event_id_hash, deterministic=True)
    op.create_table(
        "event_segments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    for table in ("event_id_hashes", "recent_event_id_hashes"):
        op.create_table(
            table,
            sa.Column("id_hash", sa.Integer, primary_key=True),
            sa.Column("seq", sa.Integer, nullable=False),
        )
    op.create_table(
        "event_id_collisions",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.execute(f"ALTER TABLE events RENAME TO {FIRST}")
    op.execute("DROP INDEX events_event_id")
    # Planner statistics name their table, which the rename does not follow.
    op.execute(f"UPDATE sqlite_stat1 SET tbl = '{FIRST}' WHERE tbl = 'events'")
    # In hash order, so the table is written page after page; the earlier id keeps a shared hash.
    op.execute(
        "INSERT OR IGNORE INTO event_id_hashes (id_hash, seq) "
        f"SELECT caliper_event_id_hash(event_id), seq FROM {FIRST} ORDER BY 1, 2"
    )
    op.execute(
        f"INSERT INTO event_id_collisions (event_id, seq) SELECT event_id, seq FROM {FIRST} "
        "WHERE seq NOT IN (SELECT seq FROM event_id_hashes)"
    )
    op.execute(
        sa.text(
            "INSERT INTO event_segments (id, first_seq, created_at) "
            f"VALUES (1, (SELECT coalesce(min(seq), 1) FROM {FIRST}), :now)"
        ).bindparams(now=utc_text(datetime.now(UTC)))
    )
    columns = [column["name"] for column in sa.inspect(bind).get_columns(FIRST)]
    for statement in events_view_sql([1], columns):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    segments = bind.scalar(sa.text("SELECT count(*) FROM event_segments"))
    if segments != 1:
        raise RuntimeError(
            f"events are stored in {segments} segments; only a store of one can go back to 0005"
        )
    op.execute("DROP VIEW events")
    op.execute(f"ALTER TABLE {FIRST} RENAME TO events")
    op.execute(f"UPDATE sqlite_stat1 SET tbl = 'events' WHERE tbl = '{FIRST}'")
    op.create_index("events_event_id", "events", ["event_id"], unique=True)
    op.execute("INSERT INTO sqlite_stat1 VALUES ('events', 'events_event_id', '1000000 1')")
    op.drop_table("event_id_collisions")
    op.drop_table("recent_event_id_hashes")
    op.drop_table("event_id_hashes")
    op.drop_table("event_segments")
