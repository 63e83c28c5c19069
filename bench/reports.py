"""Benchmark of reports: each report's time over a filled store, median and worst of repeats.

    python bench/query.py   fill --database sqlite:////tmp/q/10m.db --events 10000000
    python bench/reports.py      --database sqlite:////tmp/q/10m.db [--repeat 20]

Runs every report through the same code as the API (``run_report``, one snapshot each) for
typical courses, people and days of the filled events, and prints the median and worst time
of ``--repeat`` runs after one warm-up (a report slower than 2 s is run once). Printed beside:
the events the store holds and the events each report read, so the cost can be seen to grow
with what a report covers and not with what the store holds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.query import pick_typical
from caliper_store.config import Settings
from caliper_store.errors import QueryTimeout
from caliper_store.reports import Report, run_report
from caliper_store.storage import open_store

# A run this slow is a scan: one run tells enough.
SLOW_MS = 2_000


def _time(run: Callable[[], Report], repeat: int) -> tuple[float, float, int]:
    began = time.perf_counter()
    found = run()
    first = (time.perf_counter() - began) * 1000
    if first > SLOW_MS:
        return first, first, len(found.rows)
    spent = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent), max(spent), len(found.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--query-timeout-ms", type=int, default=600_000)
    parser.add_argument(
        "--server-url",
        default=None,
        help="also time every dashboard page on this running server (Server-Timing header)",
    )
    parser.add_argument("--read-key", default=None, help="a read key of that server's store")
    arguments = parser.parse_args()
    settings = Settings(
        database_url=arguments.database, query_timeout_ms=arguments.query_timeout_ms
    )
    store = open_store(settings)
    store.require_current_schema(create_if_empty=False)
    total = store.events.count([])
    course = pick_typical(store, "group_id", 100)
    actor = pick_typical(store, "actor_id", 100)
    day_start = "2024-06-03T00:00:00Z"
    day_end = "2024-06-04T00:00:00Z"
    at = "2024-06-10T00:00:00Z"
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("student-activity", "one course", {"groupId": course, "at": at}),
        ("course-activity", "one course", {"groupId": course}),
        ("grades", "one course", {"groupId": course}),
        ("at-risk", "one course", {"groupId": course, "at": at}),
        ("sessions", "one day", {"since": day_start, "until": day_end}),
        ("sessions", "one person", {"actorId": actor}),
        ("delivery", "one day", {"since": day_start, "until": day_end, "at": day_end}),
        ("courses", "one day", {"since": day_start, "until": day_end, "at": day_end}),
        ("courses", "whole store", {"at": at}),
    ]
    print(f"{total:,} events stored; {arguments.database.split(':')[0]}")
    print(f"{'report':18} {'covering':12} {'median ms':>10} {'worst ms':>10} {'rows':>7}")
    for name, covering, params in cases:
        values = {key: [value] for key, value in params.items()}

        def one(name: str = name, values: dict[str, list[str]] = values) -> Report:
            return run_report(store, name, values, settings)

        try:
            median, worst, rows = _time(one, arguments.repeat)
        except QueryTimeout:
            print(f"{name:18} {covering:12} {'timeout':>10}")
            continue
        print(f"{name:18} {covering:12} {median:10.1f} {worst:10.1f} {rows:7,}")
    store.close()
    if arguments.server_url and arguments.read_key:
        _pages(arguments.server_url, arguments.read_key, course, actor, arguments.repeat)


def _pages(base_url: str, key: str, course: str, actor: str, repeat: int) -> None:
    """Server time of each dashboard page (its Server-Timing header), median and worst."""
    import httpx

    pages = {
        "overview": ("/", {"at": "2024-06-10T00:00:00Z"}),
        "course": ("/course", {"groupId": course, "at": "2024-06-10T00:00:00Z"}),
        "student": ("/student", {"groupId": course, "actorId": actor}),
        "delivery": ("/delivery", {"at": "2024-06-04T00:00:00Z"}),
        "quarantine": ("/quarantine", {}),
    }
    print(f"\n{'page':18} {'median ms':>10} {'worst ms':>10}  (server time)")
    with httpx.Client(base_url=base_url, timeout=600) as http:
        answer = http.post("/login", data={"key": key})
        assert answer.status_code == 303, answer.text
        for name, (path, params) in pages.items():
            spent = []
            for _ in range(repeat + 1):
                page = http.get(path, params=params)
                assert page.status_code == 200, (name, page.status_code)
                timing = page.headers["server-timing"]
                spent.append(float(timing.split("dur=")[1]))
            spent = spent[1:]  # the first warmed the cache
            print(f"{name:18} {statistics.median(spent):10.1f} {max(spent):10.1f}")


if __name__ == "__main__":
    main()
