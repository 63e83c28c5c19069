"""Benchmark of getting data out: filtered pages over millions of events, export throughput.

    python bench/query.py fill   --database sqlite:////tmp/q/10m.db --events 10000000
    python bench/query.py pages  --database sqlite:////tmp/q/10m.db
    python bench/query.py export --database sqlite:////tmp/q/10m.db --events 1000000

`fill` writes generated Learn-like events (50,000 actors, 2,000 courses, a year of event
times) through the store's own write transactions, 5,000 a commit, on either backend; in random
time order by default (the worst case for reads by time), or with `--in-arrival-order` as a
store receives them (what `delivery`, which reads by received time, meets in use).
`pages` times a page of 100 events for each filter through the real query code (median and
worst of repeated runs, warm cache). `export` times each format over a filtered set.
(The `index-cost` command that chose revision 0002's indexes measured them on the single
events table that revision 0006 split into segments; it is in the history before 0006.)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from caliper_store.config import Settings
from caliper_store.errors import QueryTimeout
from caliper_store.query import (
    ExportOptions,
    QueryLimits,
    build_filter,
    export_to_stream,
    parse_event_query,
    parse_format,
    search_page,
)
from caliper_store.storage import Store, open_store
from caliper_store.storage.rollups import StoredEvent
from caliper_store.storage.schema import EVENT_COLUMNS, iri_key

SITE = (
    "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/54b54b42-dd02-42f8-88ed-07bd719bfb7c"
)
ACTORS = 50_000
COURSES = 2_000
OBJECTS = 200_000
START_S = 1_704_067_200  # 2024-01-01T00:00:00Z
YEAR_S = 365 * 86_400
KINDS = (
    ("NavigationEvent", "NavigatedTo", "WebPage", 50),
    ("ViewEvent", "Viewed", "DigitalResource", 30),
    ("GradeEvent", "Graded", "Attempt", 10),
    ("AssessmentEvent", "Submitted", "Assessment", 6),
    ("ForumEvent", "Subscribed", "Forum", 3),
    ("SessionEvent", "LoggedIn", "SoftwareApplication", 1),
)


def _utc(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"
    )


def _rows(count: int, seed: int, *, in_arrival_order: bool) -> Iterator[tuple[Any, ...]]:
    """Learn-like event rows in EVENT_COLUMNS order, event times spread over 2024.

    Each received up to an hour after its eventTime. By default both times are drawn at random
    for each row, so a period's events lie all over the tables, as if a year arrived shuffled:
    the worst case for a read by time. ``in_arrival_order``: received times rise with each
    row, as a store receives them, so a period of received times is one run of rows.
    """
    rng = random.Random(seed)
    weights = [kind[3] for kind in KINDS]
    for number in range(count):
        actor = int(ACTORS * rng.random() ** 1.5)  # skewed: some actors far busier
        course = (actor * 7 + rng.randrange(5)) % COURSES
        event_type, action, object_type, _ = rng.choices(KINDS, weights)[0]
        event_id = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        if in_arrival_order:  # from 01:00, so that every eventTime is in 2024's partitions
            received = START_S + 3600 + (YEAR_S - 3600) * number / count
            moment = received - rng.random() * 3600
        else:
            moment = START_S + rng.random() * YEAR_S
            received = moment + rng.random() * 3600
        actor_id = f"{SITE}/users/{actor:032x}"
        object_id = f"{SITE}/content/_{rng.randrange(OBJECTS)}_1"
        group_id = f"{SITE}/courses/{course:032x}"
        session_id = f"{SITE}/sessions/{rng.getrandbits(64):016X}"
        event_time = _utc(moment)
        raw = orjson.dumps(
            {
                "@context": "http://purl.imsglobal.org/ctx/caliper/v1p1",
                "id": event_id,
                "type": event_type,
                "actor": {
                    "id": actor_id,
                    "type": "Person",
                    "extensions": {"bb:user.externalId": f"s{1000000 + actor * 37}"},
                },
                "action": action,
                "object": {"id": object_id, "type": object_type, "name": "Week 3 Readings"},
                "eventTime": event_time,
                "edApp": {"id": f"{SITE}/applications/learn", "type": "SoftwareApplication"},
                "group": {"id": group_id, "type": "CourseOffering"},
                "session": {"id": session_id, "type": "Session"},
                "extensions": {"bb:request.headers.ipAddress": "93.184.216.34"},
            }
        ).decode()
        row = {
            "event_id": event_id,
            "has_derived_id": False,
            "content_hash": f"{rng.getrandbits(256):064x}",
            "caliper_version": "1.1",
            "event_type": event_type,
            "action": action,
            "actor_id": actor_id,
            "actor_type": "Person",
            "actor_external_id": f"s{1000000 + actor * 37}",
            "object_id": object_id,
            "object_type": object_type,
            "group_id": group_id,
            "membership_role": "Learner",
            "session_id": session_id,
            "ed_app_id": f"{SITE}/applications/learn",
            "sensor": "54b54b42-dd02-42f8-88ed-07bd719bfb7c",
            "api_key_id": 1 + actor % 3,
            "receipt_id": 1 + actor % 1000,
            "is_extension": False,
            "event_time": event_time,
            "received_at": _utc(received),
            "raw": raw,
            "actor_key": iri_key(actor_id),
            "object_key": iri_key(object_id),
            "group_key": iri_key(group_id),
            "session_key": iri_key(session_id),
            # Compressed by fill() with the store's codec.
            "raw_zstd": None,
            "raw_dictionary": None,
            "rule_set_id": None,
        }
        yield tuple(row[name] for name in EVENT_COLUMNS)


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _open(url: str) -> Store:
    store = open_store(Settings(database_url=url))
    store.require_current_schema(create_if_empty=True)
    return store


def fill(
    url: str, events: int, seed: int, *, in_arrival_order: bool, commit_events: int = 5_000
) -> None:
    """Append generated events through the store's own write transactions.

    The rows land as the writer lays them out (SQLite segments and id hashes, PostgreSQL
    partitions and event_ids) with their raw JSON compressed by the store's codec, which
    trains its dictionary on them; only parsing the requests is skipped.
    """
    store = _open(url)
    ensure_partitions = getattr(store, "ensure_partitions", None)  # PostgreSQL's months of 2024
    if ensure_partitions is not None:
        ensure_partitions({(2024, month) for month in range(1, 13)})
    raw_at = EVENT_COLUMNS.index("raw")
    frame_at = EVENT_COLUMNS.index("raw_zstd")
    dictionary_at = EVENT_COLUMNS.index("raw_dictionary")
    rows = _rows(events, seed, in_arrival_order=in_arrival_order)
    started = time.perf_counter()
    done = 0
    while done < events:
        chunk = [row for _, row in zip(range(commit_events), rows, strict=False)]
        with store.write_transaction() as transaction:
            encoder = store.raw_codec.begin(transaction)
            values = []
            for row in chunk:
                value = list(row)
                value[frame_at] = encoder.encode(value[raw_at])
                value[dictionary_at] = encoder.dictionary_id
                value[raw_at] = ""
                values.append(tuple(value))
            transaction.insert_events(values)
            # Every row is new (fresh ids): the report rollups count them all, as commits do.
            transaction.add_rollups([_stored(row) for row in chunk], shard=0)
        store.raw_codec.committed(encoder)
        done += len(chunk)
        print(f"\r{done:,} events ({done / (time.perf_counter() - started):,.0f}/s)", end="")
    print(f"\nfilled {done:,} events in {time.perf_counter() - started:,.0f} s")
    store.raw_codec.join_training(timeout_s=60)
    store.close()


_POSITIONS = {name: EVENT_COLUMNS.index(name) for name in EVENT_COLUMNS}


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    """What the rollups count of a generated row."""
    at = _POSITIONS
    return StoredEvent(
        row[at["event_time"]],
        row[at["group_id"]],
        None,
        row[at["actor_id"]],
        row[at["actor_type"]],
        row[at["api_key_id"]],
        row[at["sensor"]],
    )


def pick_typical(store: Store, column: str, rank: int) -> str:
    """A value of ``column`` that is typical (rank in the middle of its frequency order).

    Taken from the oldest events, which fill() wrote: ingest benchmarks run on a filled store
    append events of other shapes.
    """
    with store.engine.connect() as connection:
        row = connection.exec_driver_sql(
            f"SELECT {column} FROM (SELECT {column} FROM events ORDER BY seq LIMIT 200000) "
            f"AS oldest GROUP BY {column} ORDER BY count(*) DESC LIMIT 1 OFFSET {rank}"
        ).first()
    assert row is not None
    return str(row[0])


def _time(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    began = time.perf_counter()
    run()  # warm the cache
    first = (time.perf_counter() - began) * 1000
    if first > 2000:  # a scan: one run tells enough
        return first, first
    spent = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent), max(spent)


# The page of a course that `pages` reads by cursor, when the course has that many.
DEEP_PAGE = 50


def pages(url: str, repeat: int) -> None:
    """Time one page of 100 events for each filter, alone and combined."""
    store = _open(url)
    limits = QueryLimits.from_settings(Settings())
    total = store.events.count(())
    actor = pick_typical(store, "actor_id", 50)
    rare_actor = pick_typical(store, "actor_id", 5000)
    group = pick_typical(store, "group_id", 20)
    obj = pick_typical(store, "object_id", 100)
    external = pick_typical(store, "actor_external_id", 50)
    session = pick_typical(store, "session_id", 0)
    cases: list[tuple[str, dict[str, list[str]]]] = [
        ("no filter, newest first", {}),
        ("no filter, oldest first", {"order": ["asc"]}),
        ("actorId (typical actor)", {"actorId": [actor]}),
        ("actorId (rare actor)", {"actorId": [rare_actor]}),
        ("groupId (course)", {"groupId": [group]}),
        ("objectId", {"objectId": [obj]}),
        ("externalId (SIS id)", {"externalId": [external]}),
        ("sessionId", {"sessionId": [session]}),
        ("eventId", {"eventId": [pick_typical(store, "event_id", 0)]}),
        ("type=NavigationEvent (50%)", {"type": ["NavigationEvent"]}),
        ("type=SessionEvent (1%)", {"type": ["SessionEvent"]}),
        ("action=Graded", {"action": ["Graded"]}),
        ("objectType=Forum", {"objectType": ["Forum"]}),
        ("edAppId", {"edAppId": [f"{SITE}/applications/learn"]}),
        ("sensor", {"sensor": ["54b54b42-dd02-42f8-88ed-07bd719bfb7c"]}),
        ("keyId", {"keyId": ["2"]}),
        ("version=1.1", {"version": ["1.1"]}),
        ("since/until one week", {"since": ["2024-06-01"], "until": ["2024-06-08"]}),
        ("receivedSince last day", {"receivedSince": ["2024-12-30"]}),
        (
            "groupId + one week",
            {"groupId": [group], "since": ["2024-06-01"], "until": ["2024-06-08"]},
        ),
        ("actorId + type", {"actorId": [actor], "type": ["ViewEvent"]}),
        ("groupId + action=Graded", {"groupId": [group], "action": ["Graded"]}),
        ("groupId + raw", {"groupId": [group], "raw": ["true"]}),
    ]
    print(f"{total:,} events in {url}; one page of 100, {repeat} runs after one warm-up")
    print(f"  {'filter':<30} {'median ms':>10} {'max ms':>9} {'events':>7}")
    for name, params in cases:
        query = parse_event_query({**params, "limit": ["100"]}, limits)
        try:
            median, worst = _time(lambda query=query: search_page(store, query), repeat)  # type: ignore[misc]
        except QueryTimeout:
            print(f"  {name:<30} stopped at query_timeout_ms ({store.query_timeout_ms:,})")
            continue
        shown = len(search_page(store, query).events) if median < 2000 else "-"
        print(f"  {name:<30} {median:>10.2f} {worst:>9.2f} {shown:>7}", flush=True)
    # A deep page of a course, by cursor (keyset pages cost the same however deep): page 50,
    # or the course's last page when it has fewer (a course holds ~1,000 of 2 million events).
    query = parse_event_query({"groupId": [group], "limit": ["100"]}, limits)
    depth = 1
    while depth < DEEP_PAGE and (cursor := search_page(store, query).next_cursor) is not None:
        query = parse_event_query(
            {"groupId": [group], "limit": ["100"], "cursor": [cursor]}, limits
        )
        depth += 1
    median, worst = _time(lambda: search_page(store, query), repeat)
    print(f"  {f'groupId, page {depth} by cursor':<30} {median:>10.2f} {worst:>9.2f}")
    store.close()


def export(url: str, events: int) -> None:
    """Export throughput per format over the oldest ``events`` events (by a time filter)."""
    store = _open(url)
    settings = Settings()
    with store.engine.connect() as connection:
        row = connection.exec_driver_sql(
            f"SELECT event_time FROM events ORDER BY event_time LIMIT 1 OFFSET {events}"
        ).first()
    until = str(row[0]) if row is not None else "9999-12-31"
    event_filter = build_filter({"until": [until]}, max_values=100)
    for name in ("ndjson", "csv", "parquet"):
        for with_raw in (True, False):
            options = ExportOptions.from_settings(settings, parse_format(name), with_raw=with_raw)
            sink = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-export.{name}"
            began = time.perf_counter()
            with sink.open("wb") as output:
                total = export_to_stream(store, event_filter, options, output)
            spent = time.perf_counter() - began
            size = sink.stat().st_size
            sink.unlink()
            print(
                f"  {name:<8} raw={'yes' if with_raw else 'no ':<3} {total:>10,} events "
                f"{spent:>7.1f} s {total / spent:>10,.0f} events/s {size / 2**20:>8.0f} MiB"
            )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fill_parser = commands.add_parser("fill")
    fill_parser.add_argument("--database", required=True)
    fill_parser.add_argument("--events", type=int, default=10_000_000)
    fill_parser.add_argument("--seed", type=int, default=1)
    fill_parser.add_argument(
        "--in-arrival-order",
        action="store_true",
        help="received times rise with each event, as a store receives them (default: a year "
        "of events in random order, the worst case for reads by time)",
    )
    pages_parser = commands.add_parser("pages")
    pages_parser.add_argument("--database", required=True)
    pages_parser.add_argument("--repeat", type=int, default=20)
    export_parser = commands.add_parser("export")
    export_parser.add_argument("--database", required=True)
    export_parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.database, args.events, args.seed, in_arrival_order=args.in_arrival_order)
    elif args.command == "pages":
        pages(args.database, args.repeat)
    else:
        export(args.database, args.events)


if __name__ == "__main__":
    main()
