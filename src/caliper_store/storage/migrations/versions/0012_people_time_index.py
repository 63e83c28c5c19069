"""Who was active in a course over a period, read from an index (``people_time``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08

The course list's activeStudents7d with an ``at`` in the past counts each course's distinct
Person actors among the week's events. SQLite read each of those rows for three columns, a
page each where event times lie scattered. The index (event_time, group_key, actor_key,
actor_type) on each sealed arrival segment answers from the index alone; the writer builds it
when it seals a segment, as the session index (storage/segments.py). Here every segment but the
newest gets it, one segment at a time under a progress bar, in the revision's transaction: a
crash leaves the database at 0011.

PostgreSQL read the whole month's partition for a week (a sequential scan: the week's rows lie
scattered through it). Its index is on every partition, kept by every commit, with the other
three columns included, so the week is an index-only scan (2 million events: 161 ms to 34).
"""

import sqlalchemy as sa
from alembic import op

from caliper_store.storage.migrate import revision_progress
from caliper_store.storage.segments import (
    seal_segment_sql,
    segment_index_name,
    segment_number,
    stored_segment_tables,
)

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SUFFIX = "people_time"
POSTGRES_INDEX = "events_people_time"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {POSTGRES_INDEX} ON events (event_time) "
            "INCLUDE (group_key, actor_key, actor_type) WHERE group_key IS NOT NULL"
        )
        return
    tables = stored_segment_tables(bind)[:-1]  # the newest is indexed when the writer seals it
    sizes = {table: int(bind.scalar(sa.text(f"SELECT count(*) FROM {table}"))) for table in tables}
    with revision_progress(
        "indexing who was active when, segment by segment", sum(sizes.values())
    ) as done:
        for table in tables:
            for statement in seal_segment_sql(segment_number(table), (SUFFIX,)):
                op.execute(statement)
            done(sizes[table])
    op.execute("ANALYZE sqlite_master")  # the planner rereads sqlite_stat1


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX {POSTGRES_INDEX}")
        return
    for table in stored_segment_tables(bind):
        index = segment_index_name(segment_number(table), SUFFIX)
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"DELETE FROM sqlite_stat1 WHERE idx = '{index}'")
