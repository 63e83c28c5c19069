"""The group-commit writer alone, without HTTP: what one commit of each shape costs on SQLite.

    python bench/writer.py learn  [--prefill 100000] [--requests-per-commit 50]
    python bench/writer.py canvas [--busy] [--commits 150]

`learn` prepares 100-event envelopes (bench/workload.py), then times `commit_batch` over a copy of a
database pre-filled with `--prefill` events (bench/query.py fill; kept in --work-dir between runs),
and prints events/s with the time spent in each SQL statement. `canvas` commits 64 one-event
requests at a time into a new database; with `--busy` a second thread runs Python the whole time,
as the event loop does under load, so every statement that gives up the GIL must win it back.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import workload
from bench.query import fill
from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.storage import ApiKey, Store, WriteRequest, commit_batch, open_store
from caliper_store.storage import sqlite as sqlite_backend
from caliper_store.storage.schema import utc_text

STATEMENT_TIME: collections.defaultdict[str, float] = collections.defaultdict(float)


class _TimedConnection(sqlite3.Connection):
    """Adds up the time of each statement, by its first words."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        began = time.perf_counter()
        try:
            return super().execute(sql, *args)
        finally:
            STATEMENT_TIME[" ".join(sql.split()[:4])[:40]] += time.perf_counter() - began


def _timed_connect(self: sqlite_backend.SqliteStore) -> sqlite3.Connection:
    connection = sqlite3.connect(
        self.path, isolation_level=None, check_same_thread=False, factory=_TimedConnection
    )
    sqlite_backend._configure(
        connection, synchronous=self._synchronous, busy_timeout_ms=self._busy_timeout_ms
    )
    return connection


def _now() -> str:
    return utc_text(datetime.now(UTC))


def _requests(name: str, key: ApiKey, count: int) -> list[WriteRequest]:
    source = workload.EnvelopeSource(workload.build_scenario(name), workload.IdSource())
    limits = IngestLimits.from_settings(Settings())
    return [
        prepare_request(
            b"".join(source.next_body()[0]), key=key, limits=limits, received_at=_now()
        ).request
        for _ in range(count)
    ]


def _open(database: Path) -> tuple[Store, ApiKey]:
    store = open_store(Settings(database_url=f"sqlite:///{database}"))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="bench", now=_now())
    return store, key


def _fresh(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def learn(work_dir: Path, prefill: int, per_commit: int, events: int) -> None:
    """Learn envelopes committed `per_commit` requests at a time over a pre-filled database."""
    template = work_dir / f"learn-{prefill}.db"
    if not template.exists():
        fill(f"sqlite:///{template}", prefill, seed=7, in_arrival_order=False)
    database = work_dir / "learn-run.db"
    _fresh(database)
    shutil.copyfile(template, database)
    store, key = _open(database)
    requests = _requests("learn", key, events // 100)
    batches = [requests[i : i + per_commit] for i in range(0, len(requests), per_commit)]
    STATEMENT_TIME.clear()
    began = time.perf_counter()
    for batch in batches:
        commit_batch(store, batch)
    elapsed = time.perf_counter() - began
    store.close()
    print(
        f"learn: {len(requests) * 100:,} events over {prefill:,}, {per_commit * 100:,} a commit: "
        f"{len(requests) * 100 / elapsed:,.0f} events/s"
    )
    for statement, seconds in sorted(STATEMENT_TIME.items(), key=lambda item: -item[1])[:6]:
        print(f"  {seconds:7.3f} s  {statement}")


def canvas(work_dir: Path, commits: int, is_busy: bool) -> None:
    """Group commits of 64 one-event requests, optionally beside a thread that holds the GIL."""
    database = work_dir / "canvas-run.db"
    _fresh(database)
    store, key = _open(database)
    requests = _requests("canvas", key, commits * 64)
    stopping = threading.Event()

    def spin() -> None:
        total = 0
        while not stopping.is_set():
            for number in range(1_000):
                total += number

    spinner = threading.Thread(target=spin, daemon=True)
    if is_busy:
        spinner.start()
    touched: dict[int, str] = {}
    began = time.perf_counter()
    for start in range(0, len(requests), 64):
        commit_batch(store, requests[start : start + 64], touched=touched)
    elapsed = time.perf_counter() - began
    stopping.set()
    store.close()
    print(
        f"canvas: {commits} commits of 64 one-event requests, GIL switch interval "
        f"{sys.getswitchinterval() * 1000:g} ms, {'busy' if is_busy else 'idle'} other thread: "
        f"{elapsed / commits * 1000:.1f} ms a commit, {commits * 64 / elapsed:,.0f} events/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=["learn", "canvas"])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/caliper-bench-writer"))
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--requests-per-commit", type=int, default=50)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--busy", action="store_true", help="a thread runs Python meanwhile")
    parser.add_argument("--switch-interval-ms", type=float, default=5.0)
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    sys.setswitchinterval(args.switch_interval_ms / 1000)
    sqlite_backend.SqliteStore._connect = _timed_connect  # type: ignore[method-assign]
    if args.shape == "learn":
        learn(args.work_dir, args.prefill, args.requests_per_commit, args.events)
    else:
        canvas(args.work_dir, args.commits, args.busy)


if __name__ == "__main__":
    main()
