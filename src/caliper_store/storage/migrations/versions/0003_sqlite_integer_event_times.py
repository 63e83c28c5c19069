"""SQLite: an event's two times as integer microseconds instead of ISO text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Eight of the events indexes carry event_time or received_at. As 27-character text they made
each index entry about twice the size of its integer form, and a group commit rewrites every
index page it touches: with integers the Learn writer went from 25,800 to 35,400 events/s in
the same layout (README "Performance"). storage.schema.UtcMicros binds and reads them.

SQLite cannot change a column's type in place, so the table is rebuilt the documented way
(create, copy, drop, rename) and its indexes and planner statistics are made again. PostgreSQL
already keeps these columns as timestamptz: nothing to do there.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Fixed-width UTC text (2024-01-31T12:00:00.000000Z) to microseconds since 1970, and back.
_TEXT_TO_MICROS = (
    "(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) * 1000000 "
    "+ CAST(substr({column}, 21, 6) AS INTEGER))"
)
_MICROS_TO_TEXT = (
    "(strftime('%Y-%m-%dT%H:%M:%S', ({column} - (({column} % 1000000) + 1000000) % 1000000) "
    "/ 1000000, 'unixepoch') || '.' || printf('%06d', (({column} % 1000000) + 1000000) % 1000000)"
    " || 'Z')"
)

# The events table's indexes at revision 0002, made again after the rebuild.
EVENT_INDEXES: list[tuple[str, list[str], str | None, bool]] = [
    ("events_event_id", ["event_id"], None, True),
    ("events_event_time", ["event_time"], None, False),
    ("events_actor_time", ["actor_key", "event_time"], None, False),
    ("events_group_time", ["group_key", "event_time"], "group_key IS NOT NULL", False),
    ("events_object_time", ["object_key", "event_time"], None, False),
    (
        "events_external_id_time",
        ["actor_external_id", "event_time"],
        "actor_external_id IS NOT NULL",
        False,
    ),
    ("events_key_time", ["api_key_id", "event_time"], None, False),
    ("events_type_time", ["event_type", "event_time"], None, False),
    ("events_received_at", ["received_at"], None, False),
]

# Revision 0002's seeded planner statistics, dropped with the old table (see 0002 for why).
SQLITE_STATISTICS: dict[str, str] = {
    "events_event_id": "1000000 1",
    "events_event_time": "1000000 3",
    "events_actor_time": "1000000 200 2",
    "events_group_time": "1000000 2000 2",
    "events_object_time": "1000000 500 2",
    "events_external_id_time": "1000000 200 2",
    "events_key_time": "1000000 250000 3",
    "events_type_time": "1000000 100000 3",
    "events_received_at": "1000000 3",
}


def _events_table(name: str, time_type: sa.types.TypeEngine[Any]) -> None:
    op.create_table(
        name,
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
        sa.Column("event_time", time_type, nullable=False),
        sa.Column("received_at", time_type, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("actor_key", sa.BigInteger),
        sa.Column("object_key", sa.BigInteger),
        sa.Column("group_key", sa.BigInteger),
    )


_COLUMNS = (
    "seq, event_id, has_derived_id, content_hash, caliper_version, event_type, action, actor_id, "
    "actor_type, actor_external_id, object_id, object_type, group_id, membership_role, "
    "session_id, ed_app_id, sensor, api_key_id, receipt_id, is_extension, {event_time}, "
    "{received_at}, raw, actor_key, object_key, group_key"
)


def _rebuild(time_type: sa.types.TypeEngine[Any], convert: str) -> None:
    _events_table("events_rebuilt", time_type)
    plain = _COLUMNS.format(event_time="event_time", received_at="received_at")
    converted = _COLUMNS.format(
        event_time=convert.format(column="event_time"),
        received_at=convert.format(column="received_at"),
    )
    op.execute(f"INSERT INTO events_rebuilt ({plain}) SELECT {converted} FROM events")
    op.drop_table("events")
    op.rename_table("events_rebuilt", "events")
    for name, columns, where, is_unique in EVENT_INDEXES:
        condition = sa.text(where) if where else None
        op.create_index(name, "events", columns, unique=is_unique, sqlite_where=condition)
    op.execute("ANALYZE sqlite_master")
    op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'events'")
    for index, stat in SQLITE_STATISTICS.items():
        op.execute(
            sa.text(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events', :idx, :stat)"
            ).bindparams(idx=index, stat=stat)
        )
    op.execute("ANALYZE sqlite_master")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(sa.BigInteger(), _TEXT_TO_MICROS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(sa.Text(), _MICROS_TO_TEXT)
