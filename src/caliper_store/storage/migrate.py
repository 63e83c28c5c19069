"""Schema migrations: Alembic revisions applied on a connection we own, with the state reported.

Alembic loads in a tenth of a second, and every process (the server, each CLI command) checks
the schema when it opens the store: the check reads ``alembic_version`` and the revisions'
file names itself, and Alembic is imported only to migrate. Revision files are named after
their revision id (``0011_session_index.py`` is 0011), one after the other; a test holds the
names to what Alembic reads from the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"

# A progress bar for a long step of a revision: given a label and the events it will go over,
# the function that counts those done. ``caliper-store migrate`` draws one; the server, none.
ProgressBar = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


class SchemaState(Enum):
    """Where a database stands against this code's schema."""

    EMPTY = "empty"
    CURRENT = "current"
    OUTDATED = "outdated"
    NEWER = "newer"


def _config(connection: Connection, progress: ProgressBar | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["progress"] = progress
    return config


@contextmanager
def _no_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda done: None


def revision_progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    """Within a revision: the progress bar its caller asked for, or one that shows nothing."""
    from alembic import context

    progress: ProgressBar | None = context.config.attributes.get("progress")
    return (progress or _no_progress)(label, total)


def known_revisions() -> list[str]:
    """The revisions this code knows, oldest first, read from the revision files' names."""
    return sorted(path.name.split("_", 1)[0] for path in VERSIONS_DIR.glob("[0-9]*_*.py"))


def head_revision() -> str:
    """The newest revision this code knows."""
    revisions = known_revisions()
    assert revisions, "the migrations folder has no revision"
    return revisions[-1]


def schema_state(connection: Connection) -> tuple[SchemaState, str | None]:
    """Compare the database's revision with the code's head."""
    current = None
    if inspect(connection).has_table(VERSION_TABLE):
        current = connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    if current is None:
        return SchemaState.EMPTY, None
    known = known_revisions()
    if current == known[-1]:
        return SchemaState.CURRENT, current
    return (SchemaState.OUTDATED if current in known else SchemaState.NEWER), current


def upgrade(
    connection: Connection, revision: str = "head", progress: ProgressBar | None = None
) -> None:
    """Apply every revision up to ``revision`` on this connection, then commit.

    ``progress`` draws a bar for each long step of a revision (rewriting stored events).
    """
    from alembic import command

    command.upgrade(_config(connection, progress), revision)
    connection.commit()


def downgrade(connection: Connection, revision: str) -> None:
    """Undo revisions down to ``revision`` on this connection, then commit (tests, rollbacks)."""
    from alembic import command

    command.downgrade(_config(connection), revision)
    connection.commit()
