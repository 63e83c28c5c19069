"""Reading events back: indexes for the query filters, quarantine status and its audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Each events index below was measured at ingest (`python bench/query.py index-cost`, README "Getting
data out"); the ones that cost much and serve rare questions were left out. Each filter index
pairs its column with event_time, so a filtered page is read in order straight from the index
instead of sorting every match (on SQLite the rowid, that is seq, follows as the tie-breaker).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")

# (name, columns, partial-index condition or None). The actor and group indexes are on the
# 64-bit hashes of those IRIs (revision 0001's *_key columns); a query matches the hash and the
# IRI together. Measured with `python bench/query.py index-cost` (Learn-style envelopes through
# prepare_request + commit_batch, 1,000-event commits, 1M events stored, SQLite), as a fraction
# of the ingest rate without any query index (medians of 3-4 rounds, noise about 10%):
#   actor 0.84, group 0.96, actor + group 0.65; external id, key, type, received_at about 1.0
#   each, 0.93 together; all six 0.59.
#   Left out: object 0.80 and session 0.74 (random ids, rarer questions): those filters are
#   fast combined with actor, group, key or a time range, and scan by time alone.
EVENT_INDEXES: list[tuple[str, list[str], str | None]] = [
    ("events_actor_time", ["actor_key", "event_time"], None),
    ("events_group_time", ["group_key", "event_time"], "group_key IS NOT NULL"),
    # Without it, "the events of this assignment" scanned all 10 million rows (400-490 s).
    ("events_object_time", ["object_key", "event_time"], None),
    (
        "events_external_id_time",
        ["actor_external_id", "event_time"],
        "actor_external_id IS NOT NULL",
    ),
    ("events_key_time", ["api_key_id", "event_time"], None),
    ("events_type_time", ["event_type", "event_time"], None),
    ("events_received_at", ["received_at"], None),
]


# SQLite's planner has no statistics until someone runs ANALYZE, and without them it takes two
# filter indexes as equally selective: for "this course's GradeEvents" it could walk every
# GradeEvent of the store in time order instead of the course's events. Seeding sqlite_stat1
# with typical proportions (rows, rows per value, rows per (value, time)), a documented way to
# steer the planner, makes it prefer the selective index; a later ANALYZE replaces the figures.
# PostgreSQL gathers its statistics by itself (autovacuum).
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


def _seed_sqlite_statistics() -> None:
    op.execute("ANALYZE sqlite_master")  # creates sqlite_stat1 without analyzing any table
    op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'events'")
    for index, stat in SQLITE_STATISTICS.items():
        op.execute(
            sa.text(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('events', :idx, :stat)"
            ).bindparams(idx=index, stat=stat)
        )
    op.execute("ANALYZE sqlite_master")  # the planner reads sqlite_stat1 when it loads the schema


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Keyset pages and exports read in (event_time, seq) order. SQLite's events_event_time
        # already ends in the rowid, which is seq; PostgreSQL's is BRIN, which cannot return
        # rows in order, so without this every export batch would sort all the rows after it.
        op.create_index("events_time_seq", "events", ["event_time", "seq"])
    for name, columns, where in EVENT_INDEXES:
        condition = sa.text(where) if where else None
        op.create_index(name, "events", columns, sqlite_where=condition, postgresql_where=condition)
    op.add_column(
        "quarantine", sa.Column("status", sa.String(16), nullable=False, server_default="held")
    )
    op.add_column("quarantine", sa.Column("resolved_at", TIME))
    op.create_index("quarantine_status_id", "quarantine", ["status", "id"])
    op.create_index("quarantine_received_at", "quarantine", ["received_at"])
    op.create_table(
        "quarantine_audit",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("quarantine_id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("event_id", sa.Text),
        sa.Column("note", sa.Text),
    )
    op.create_index("quarantine_audit_item", "quarantine_audit", ["quarantine_id"])
    if op.get_bind().dialect.name == "sqlite":
        _seed_sqlite_statistics()


def downgrade() -> None:
    op.drop_table("quarantine_audit")
    op.drop_index("quarantine_received_at", "quarantine")
    op.drop_index("quarantine_status_id", "quarantine")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("status")
    for name, _, _ in reversed(EVENT_INDEXES):
        op.drop_index(name, "events")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("events_time_seq", "events")
