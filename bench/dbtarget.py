"""The database under test, read directly: which backend a URL names, how many events it holds."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class DatabaseTarget:
    """A database URL as the server takes it, plus what the benchmark needs to read it itself."""

    url: str
    backend: str  # "sqlite" or "postgresql"
    sqlite_path: Path | None = None
    postgres_dsn: str | None = None

    @property
    def label(self) -> str:
        return "SQLite" if self.backend == "sqlite" else "PostgreSQL"


def parse_database_url(url: str) -> DatabaseTarget:
    """Accept `sqlite:///rel.db`, `sqlite:////abs.db` and `postgresql[+driver]://...` URLs."""
    scheme = url.partition(":")[0].lower()
    backend = scheme.partition("+")[0]
    if backend == "sqlite":
        if not url.startswith("sqlite:///"):
            raise ValueError(f"a SQLite URL names a file: sqlite:////abs/path.db, not {url!r}")
        raw_path = url.removeprefix("sqlite:///").partition("?")[0]
        if not raw_path or raw_path == ":memory:":
            raise ValueError("the benchmark needs a SQLite file it can read after the run")
        path = Path(raw_path).resolve()
        return DatabaseTarget(f"sqlite:///{path}", "sqlite", sqlite_path=path)
    if backend in ("postgresql", "postgres"):
        parts = urlsplit(url)
        dsn = urlunsplit(("postgresql", *parts[1:]))
        return DatabaseTarget(url, "postgresql", postgres_dsn=dsn)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def count_events(target: DatabaseTarget) -> int:
    """`SELECT count(*) FROM events`, read straight from the database; 0 before it exists.

    On SQLite from revision 0006 `events` is a view over the segments; before, a table.
    """
    if target.sqlite_path is not None:
        if not target.sqlite_path.exists():
            return 0
        conn = sqlite3.connect(target.sqlite_path)
        try:
            conn.execute("PRAGMA query_only = 1")
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = 'events'"
            ).fetchone()
            if not has_table:
                return 0
            count: int = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            return count
        finally:
            conn.close()
    import psycopg  # only needed, and only installed, for the PostgreSQL backend

    assert target.postgres_dsn is not None
    with psycopg.connect(target.postgres_dsn) as pg:
        row = pg.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        counted = pg.execute("SELECT count(*) FROM events").fetchone()
        return int(counted[0]) if counted else 0
