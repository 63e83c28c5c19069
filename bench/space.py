"""Bytes on disk per stored event: the compressed layout beside the plain one, in the same run.

    python bench/space.py --database sqlite:////tmp/space/learn.db --scenario learn --events 200000
    python bench/space.py --database postgresql://localhost/space --scenario canvas

Each run ingests `--events` generated events into an empty store through the real write path
(`prepare_request`, then `commit_batch`, so the writer trains its dictionaries as a server
would). The events come from 4,096 templates per seed, a mix of users, courses, objects,
times and user agents (bench/workload.py) with a fresh random id each; the dictionary is
trained on events of other seeds than most of those it compresses (a new template set each
50,000 events), so it cannot simply have learnt the events it is measured on.

It then measures the store (`stats --storage`: table, indexes, dictionaries, after a
checkpoint), rewrites every row as plain JSON, as stores before revision 0005 kept them, and
measures again; then converts them back with the conversion `caliper-store migrate` runs, and
prints its time (with its own VACUUM). Before each measurement the tables are rewritten
compactly (SQLite VACUUM, PostgreSQL VACUUM FULL), so the layouts are compared alike. On
PostgreSQL it also prints what a bare `jsonb` table takes for the same events (no index), the
form many event stores use.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import text

from bench import workload
from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.storage import (
    Store,
    commit_batch,
    convert_plain_raw,
    open_store,
    plan_conversion,
    storage_usage,
)
from caliper_store.storage.schema import utc_text

EVENTS_PER_SEED = 50_000
EVENTS_PER_COMMIT = 1_000


def _ingest(store: Store, scenario_name: str, events: int) -> float:
    _, key = store.keys.create(label="space", now=utc_text(datetime.now(UTC)))
    limits = IngestLimits.from_settings(Settings())
    ids = workload.IdSource()
    started = time.perf_counter()
    done = 0
    source: workload.EnvelopeSource | None = None
    while done < events:
        if done % EVENTS_PER_SEED == 0 or source is None:
            scenario = workload.build_scenario(scenario_name, seed=1 + done // EVENTS_PER_SEED)
            source = workload.EnvelopeSource(scenario, ids)
        requests = []
        batch_done = 0
        while batch_done < EVENTS_PER_COMMIT and done + batch_done < events:
            pieces, _, count = source.next_body()
            prepared = prepare_request(
                b"".join(pieces),
                key=key,
                limits=limits,
                received_at=utc_text(datetime.now(UTC)),
            )
            requests.append(prepared.request)
            batch_done += count
        commit_batch(store, requests)
        done += batch_done
        print(f"\r  ingested {done:,} events", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - started


def _make_plain(store: Store) -> None:
    """Rewrite every row as stores before revision 0005 kept it: JSON as text in ``raw``."""
    table = store.plain_rows_table().name
    with store.engine.begin() as connection:
        rows = connection.execute(text(f"SELECT seq FROM {table} ORDER BY seq")).scalars().all()
    for start in range(0, len(rows), 5_000):
        chunk = rows[start : start + 5_000]
        with store.engine.begin() as connection:
            found = connection.execute(
                text(
                    f"SELECT seq, event_time, raw, raw_zstd, raw_dictionary FROM {table} "
                    "WHERE seq >= :low AND seq <= :high"
                ),
                {"low": chunk[0], "high": chunk[-1]},
            ).all()
            plain = [
                {
                    "seq": row.seq,
                    "raw": store.raw_codec.decode(
                        connection, row.raw, row.raw_zstd, row.raw_dictionary
                    ),
                }
                for row in found
            ]
            connection.execute(
                text(
                    f"UPDATE {table} SET raw = :raw, raw_zstd = NULL, raw_dictionary = NULL "
                    "WHERE seq = :seq"
                ),
                plain,
            )
    _compact(store)


def _autocommit(store: Store, statement: str) -> None:
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))


def _compact(store: Store) -> None:
    """Rewrite the tables compactly before measuring, so both layouts are measured alike.

    SQLite: ``reclaim_space`` (VACUUM rebuilds the file). PostgreSQL: VACUUM FULL, since the
    rewrite to plain rows leaves old row versions and index entries behind that plain VACUUM
    only marks reusable.
    """
    if store.backend != "postgresql":
        store.reclaim_space()
        return
    for table in ("events", "event_ids", "raw_dictionaries"):
        _autocommit(store, f"VACUUM (FULL, ANALYZE) {table}")


def _jsonb_bytes(store: Store) -> int:
    _autocommit(store, "DROP TABLE IF EXISTS bench_plain_jsonb")
    _autocommit(store, "CREATE TABLE bench_plain_jsonb (event jsonb NOT NULL)")
    _autocommit(store, "INSERT INTO bench_plain_jsonb SELECT raw::jsonb FROM events")
    _autocommit(store, "VACUUM bench_plain_jsonb")
    with store.engine.connect() as connection:
        size = connection.scalar(text("SELECT pg_total_relation_size('bench_plain_jsonb')"))
    _autocommit(store, "DROP TABLE bench_plain_jsonb")
    return int(size or 0)


def _show(label: str, usage: dict[str, Any]) -> float:
    per_event = usage["per_event"]
    print(
        f"  {label:<34} {per_event['everything']:>8} B/event  (events table "
        f"{per_event['events_table']}, indexes {per_event['event_indexes']}"
        + (
            f", event_ids {per_event['event_ids_table']}"
            if per_event["event_ids_table"] is not None
            else ""
        )
        + ")"
    )
    return float(per_event["everything"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True, help="an empty database (URL)")
    parser.add_argument("--scenario", choices=workload.SCENARIOS, default="learn")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    # One SQLite segment for them all: the plain rewrite, like the conversion, is of the first.
    store = open_store(Settings(database_url=args.database, sqlite_segment_events=args.events))
    store.require_current_schema(create_if_empty=True)
    try:
        if store.events.count(()) != 0:
            parser.error("the database must be empty")
        print(f"{args.scenario}: {args.events:,} events into {store.backend}")
        spent = _ingest(store, args.scenario, args.events)
        print(f"  ingested through commit_batch in {spent:.1f} s")
        _compact(store)
        compressed = storage_usage(store)
        new = _show("compressed (revision 0005)", compressed)
        ratio = compressed["compression"]["ratio"]
        versions = len(compressed["dictionaries"]) - 1
        print(f"  raw events at {ratio:.1%} of their size; {versions} dictionaries trained")
        _make_plain(store)
        old = _show("plain JSON (revisions 0001-0004)", storage_usage(store))
        if store.backend == "postgresql":
            jsonb = _jsonb_bytes(store) / args.events
            print(f"  {'bare jsonb table, no index':<34} {jsonb:>8.1f} B/event")
        plan = plan_conversion(store)
        began = time.perf_counter()
        converted = sum(convert_plain_raw(store, plan))
        converting = time.perf_counter() - began
        began = time.perf_counter()
        store.reclaim_space()
        vacuum = time.perf_counter() - began
        _compact(store)
        after = _show("plain, converted by migrate", storage_usage(store))
        print(
            f"  conversion: {converted:,} events in {converting:.1f} s "
            f"({converted / converting:,.0f}/s), VACUUM {vacuum:.1f} s"
        )
        print(f"  compressed / plain: {new / old:.3f}; converted / plain: {after / old:.3f}")
    finally:
        store.close()


if __name__ == "__main__":
    main()
