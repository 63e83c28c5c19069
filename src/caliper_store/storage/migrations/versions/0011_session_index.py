"""Events found by session id through an index, on the id's 64-bit hash (``session_key``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Revision 0002 left the session index out: on the session id's text it cost 0.26 of the ingest
rate (1 million events, one table). Keyed on the id's 64-bit hash (``iri_key``, as the actor,
object and group indexes are), PostgreSQL keeps it with every commit; SQLite builds it on each
arrival segment when the segment is sealed (storage/segments.py), because kept by every commit
it cost Learn ingest 8% (docs/performance.md, 2026-12-07, issue 11). The stored events get
their keys here, in the revision's own transaction: a crash leaves the database at 0010, and
``caliper-store migrate`` starts again. They are keyed a segment or a month at a time, under a
progress bar (about 8 minutes for 2 million events on PostgreSQL).
"""

import sqlalchemy as sa
from alembic import op

from caliper_store.storage.migrate import revision_progress
from caliper_store.storage.schema import iri_key
from caliper_store.storage.segments import (
    remade_view_sql,
    seal_segment_sql,
    segment_index_name,
    segment_number,
    stored_segment_tables,
)

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

POSTGRES_INDEX = "events_session"
# Session ids hashed and sent to PostgreSQL in one statement.
KEYS_PER_STATEMENT = 5_000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _upgrade_postgres(bind)
    else:
        _upgrade_sqlite(bind)


def _upgrade_postgres(bind: sa.Connection) -> None:
    """One column on the partitioned table, keyed from a table of each distinct id's hash."""
    op.execute("ALTER TABLE events ADD COLUMN session_key bigint")
    op.execute(
        "CREATE TEMPORARY TABLE session_keys (session_id text PRIMARY KEY, session_key bigint) "
        "ON COMMIT DROP"
    )
    # Streamed through a server-side cursor: a store may hold millions of sessions.
    distinct = sa.text(
        "SELECT session_id, count(*) FROM events WHERE session_id IS NOT NULL GROUP BY session_id"
    ).execution_options(stream_results=True, yield_per=KEYS_PER_STATEMENT)
    insert = sa.text("INSERT INTO session_keys VALUES (:session_id, :session_key)")
    with_sessions = 0
    for chunk in bind.execute(distinct).partitions(KEYS_PER_STATEMENT):
        bind.execute(insert, [{"session_id": id_, "session_key": iri_key(id_)} for id_, _ in chunk])
        with_sessions += sum(count for _, count in chunk)
    months = bind.scalars(
        sa.text(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'events'::regclass ORDER BY 1"
        )
    ).all()
    with revision_progress("keying events by session id, month by month", with_sessions) as done:
        for month in months:
            keyed = bind.execute(
                sa.text(
                    f"UPDATE {month} AS e SET session_key = k.session_key FROM session_keys k "
                    "WHERE e.session_id = k.session_id"
                )
            )
            done(keyed.rowcount)
    op.execute(
        f"CREATE INDEX {POSTGRES_INDEX} ON events (session_key) WHERE session_key IS NOT NULL"
    )


def _upgrade_sqlite(bind: sa.Connection) -> None:
    """Each segment's column and keys (hashed by a function of this connection).

    Every segment but the newest gets its session index: the writer builds the newest's when
    it seals it.
    """
    bind.connection.driver_connection.create_function(  # type: ignore[union-attr]
        "caliper_iri_key", 1, iri_key, deterministic=True
    )
    tables = stored_segment_tables(bind)
    sizes = {table: int(bind.scalar(sa.text(f"SELECT count(*) FROM {table}"))) for table in tables}
    with revision_progress(
        "keying events by session id, segment by segment", sum(sizes.values())
    ) as done:
        for table in tables:
            op.execute(f"ALTER TABLE {table} ADD COLUMN session_key BIGINT")
            op.execute(
                f"UPDATE {table} SET session_key = caliper_iri_key(session_id) "
                "WHERE session_id IS NOT NULL"
            )
            if table != tables[-1]:
                for statement in seal_segment_sql(segment_number(table), ("session",)):
                    op.execute(statement)
            done(sizes[table])
    _remake_view(bind, tables)
    op.execute("ANALYZE sqlite_master")  # the planner rereads sqlite_stat1


def _remake_view(bind: sa.Connection, tables: list[str]) -> None:
    for statement in remade_view_sql(bind, tables):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX {POSTGRES_INDEX}")
        op.execute("ALTER TABLE events DROP COLUMN session_key")
        return
    tables = stored_segment_tables(bind)
    op.execute("DROP VIEW IF EXISTS events")
    for table in tables:
        index = segment_index_name(segment_number(table), "session")
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"DELETE FROM sqlite_stat1 WHERE idx = '{index}'")
        op.execute(f"ALTER TABLE {table} DROP COLUMN session_key")
    _remake_view(bind, tables)
