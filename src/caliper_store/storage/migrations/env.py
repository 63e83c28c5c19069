"""Alembic environment: runs revisions on the connection that caliper_store.storage hands in.

Each revision runs in a transaction of its own, committed with its ``alembic_version`` row, so a
crash leaves the database at the revision before it and ``caliper-store migrate`` starts that
revision again. pysqlite opens a transaction only before a row is written, so on SQLite a
revision's first DDL (``ALTER TABLE ... ADD COLUMN``) used to commit on its own: killed halfway,
0011 left a column that its next run could not add again. There the transaction is opened
by hand, with the write lock (``BEGIN IMMEDIATE``), whenever SQLAlchemy begins one.
"""

import sqlite3

from alembic import context
from sqlalchemy import Connection, event

from caliper_store.storage.schema import metadata


def _begin_immediate(connection: Connection) -> None:
    raw = connection.connection.dbapi_connection
    if isinstance(raw, sqlite3.Connection) and not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


connection = context.config.attributes["connection"]
is_sqlite = connection.dialect.name == "sqlite"
if is_sqlite:
    event.listen(connection, "begin", _begin_immediate)
try:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        transactional_ddl=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
finally:
    if is_sqlite:
        event.remove(connection, "begin", _begin_immediate)
