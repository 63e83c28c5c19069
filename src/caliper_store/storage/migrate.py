"""Schema migrations: Alembic revisions applied on a connection we own, with the state reported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import Enum
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# A progress bar for a long step of a revision: given a label and the events it will go over,
# the function that counts those done. ``caliper-store migrate`` draws one; the server, none.
ProgressBar = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


class SchemaState(Enum):
    """Where a database stands against this code's schema."""

    EMPTY = "empty"
    CURRENT = "current"
    OUTDATED = "outdated"
    NEWER = "newer"


def _config(connection: Connection | None = None, progress: ProgressBar | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    config.attributes["progress"] = progress
    return config


@contextmanager
def _no_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


def revision_progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    """Within a revision: the progress bar its caller asked for, or one that shows nothing."""
    progress: ProgressBar | None = context.config.attributes.get("progress")
    return (progress or _no_progress)(label, total)


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def schema_state(connection: Connection) -> tuple[SchemaState, str | None]:
    """Compare the database's revision with the code's head."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return SchemaState.EMPTY, None
    if current == head_revision():
        return SchemaState.CURRENT, current
    script = ScriptDirectory.from_config(_config())
    known = {revision.revision for revision in script.walk_revisions()}
    return (SchemaState.OUTDATED if current in known else SchemaState.NEWER), current


def upgrade(
    connection: Connection, revision: str = "head", progress: ProgressBar | None = None
) -> None:
    """Apply every revision up to ``revision`` on this connection, then commit.

    ``progress`` draws a bar for each long step of a revision (rewriting stored events).
    """
    command.upgrade(_config(connection, progress), revision)
    connection.commit()


def downgrade(connection: Connection, revision: str) -> None:
    """Undo revisions down to ``revision`` on this connection, then commit (tests, rollbacks)."""
    command.downgrade(_config(connection), revision)
    connection.commit()
