"""Ceilings measured in the same run: what this machine can do with nothing else to do.

- Bare SQLite: the benchmark's own events straight into a fresh file beside the target database:
  WAL, `synchronous=FULL`, 8 KiB pages, a table of a text primary key and the raw JSON, stdlib
  sqlite3; 1,000-row transactions (events/s) and single-row transactions (txn/s).
- Bare PostgreSQL: COPY in 1,000-row transactions and single-row INSERT transactions into a
  scratch table of the same shape (logged, so commits wait for the WAL flush as the server's do).
- Bare HTTP: the trivial Starlette app of `trivial_app.py`, driven by the same load generator
  with the same bodies.

Only the database calls are timed for the database ceilings, not the building of rows.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import dbtarget, load, serverproc, workload

_TRIVIAL_APP = Path(__file__).with_name("trivial_app.py")


@dataclass(frozen=True)
class DbCeiling:
    """Rows written straight into the database, and the time spent in the database calls."""

    label: str
    unit: str  # "events/s" or "txn/s"
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def database_ceilings(
    target: dbtarget.DatabaseTarget,
    source: workload.EnvelopeSource,
    *,
    duration_s: float,
    with_single_row: bool,
) -> list[DbCeiling]:
    """The batched ceiling, and the single-row one when `with_single_row` (one-event envelopes)."""
    sizes = [1000, 1] if with_single_row else [1000]
    if target.sqlite_path is not None:
        directory = target.sqlite_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        return [sqlite_ceiling(source, directory, size, duration_s) for size in sizes]
    assert target.postgres_dsn is not None
    return [postgres_ceiling(target.postgres_dsn, source, size, duration_s) for size in sizes]


def sqlite_ceiling(
    source: workload.EnvelopeSource, directory: Path, rows_per_txn: int, duration_s: float
) -> DbCeiling:
    """Insert into a fresh WAL file in `directory` (the target's disk) for `duration_s`."""
    path = directory / f".bench-ceiling-{secrets.token_hex(4)}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size = 8192")  # before the first write fixes the page size
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE events (id TEXT PRIMARY KEY, raw TEXT NOT NULL)")
        insert = "INSERT INTO events (id, raw) VALUES (?, ?)"
        rows = 0
        spent_ns = 0
        limit_ns = int(duration_s * 1e9)
        while spent_ns < limit_ns:
            batch = source.next_rows(1000)
            if rows_per_txn == 1:
                start = time.perf_counter_ns()
                for row in batch:
                    conn.execute("BEGIN")
                    conn.execute(insert, row)
                    conn.execute("COMMIT")
            else:
                start = time.perf_counter_ns()
                conn.execute("BEGIN")
                conn.executemany(insert, batch)
                conn.execute("COMMIT")
            spent_ns += time.perf_counter_ns() - start
            rows += len(batch)
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return _db_ceiling("SQLite", rows_per_txn, rows, spent_ns)


def postgres_ceiling(
    dsn: str, source: workload.EnvelopeSource, rows_per_txn: int, duration_s: float
) -> DbCeiling:
    """COPY (or single-row INSERT) into a scratch table, dropped afterwards."""
    import psycopg  # only needed, and only installed, for the PostgreSQL backend

    table = f"bench_ceiling_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A regular table, not TEMP: temporary tables skip the WAL, so their commits would not
        # wait for a flush and the ceiling would not be one for durable writes.
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, raw json NOT NULL)")
        try:
            rows = 0
            spent_ns = 0
            limit_ns = int(duration_s * 1e9)
            insert = f"INSERT INTO {table} (id, raw) VALUES (%s, %s)"
            while spent_ns < limit_ns:
                batch = source.next_rows(1000)
                start = time.perf_counter_ns()
                if rows_per_txn == 1:
                    for row in batch:
                        with conn.transaction():
                            conn.execute(insert, row)
                else:
                    with (
                        conn.transaction(),
                        conn.cursor() as cur,
                        cur.copy(f"COPY {table} (id, raw) FROM STDIN") as copy,
                    ):
                        for row in batch:
                            copy.write_row(row)
                spent_ns += time.perf_counter_ns() - start
                rows += len(batch)
        finally:
            conn.execute(f"DROP TABLE {table}")
    return _db_ceiling("PostgreSQL", rows_per_txn, rows, spent_ns)


def _db_ceiling(backend: str, rows_per_txn: int, rows: int, spent_ns: int) -> DbCeiling:
    if rows_per_txn == 1:
        return DbCeiling(f"bare {backend}, single-row txns", "txn/s", rows, spent_ns / 1e9)
    how = "COPY, " if backend == "PostgreSQL" else ""
    return DbCeiling(f"bare {backend}, {how}1,000-row txns", "events/s", rows, spent_ns / 1e9)


def http_ceiling(
    config: load.LoadConfig, factory: load.RequestFactory, log_dir: Path
) -> tuple[load.LoadResult, serverproc.TreeUsage]:
    """Start the trivial Starlette server on `config.port`, drive it like the real one, stop it."""
    argv = [sys.executable, str(_TRIVIAL_APP), "--host", config.host, "--port", str(config.port)]
    server = serverproc.ServerProcess(
        "trivial Starlette server", argv, log_dir / "trivial-server.log", config.host, config.port
    )
    outcome = serverproc.drive(server, config, factory)
    if not serverproc.is_clean_exit(outcome.exit_code):
        print(f"  note: the trivial server exited with {outcome.exit_code}\n{server.log_tail()}")
    return outcome.result, outcome.usage
