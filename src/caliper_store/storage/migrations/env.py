"""Alembic environment: runs revisions on the connection that caliper_store.storage hands in."""

from alembic import context

from caliper_store.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
