"""What erasing one person costs on a filled store, and how long ingest waits meanwhile.

    python bench/query.py fill --database sqlite:////tmp/q/10m.db --events 10000000
    python bench/erase.py      --database sqlite:////tmp/q/10m.db [--people 3]

For the busiest person of the filled events and for typical ones, each given by their SIS id
as a data protection officer would, it finds every trace (``find_person``, as ``caliper-store
person erase`` does) and erases them in paced batches (``purge_batch_events``,
``purge_batch_ms``). Printed per person:
the time to find, the time to erase, the events removed, and the longest batch. Meanwhile a
second process commits a 10-event request after another through ``commit_batch``, as the
server's writer does, and times each commit: its worst and p99 while the erase runs are printed
beside the same figures just before it, in the same run. Target (issue 13): under 5 s for one
person of a 10-million-event store, and ingest never blocked more than 100 ms at a time.
The erased events are gone from the database afterwards: run it on a bench copy.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TypeAlias

import orjson

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.query import pick_typical
from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.privacy import erase_person, find_person
from caliper_store.storage import commit_batch, open_store, utc_text

# How long the probe's commits are watched before each erase, for the figures beside.
BASELINE_S = 3.0
# What the probe process sends back: (start, seconds) of each of its commits.
Commits: TypeAlias = "multiprocessing.Queue[list[tuple[float, float]]]"


def _probe_body() -> bytes:
    now = utc_text(datetime.now(UTC))[:23] + "Z"
    events = [
        {
            "@context": "http://purl.imsglobal.org/ctx/caliper/v1p1",
            "id": f"urn:uuid:{uuid.uuid4()}",
            "type": "NavigationEvent",
            "actor": {"id": "https://probe.example.edu/users/probe", "type": "Person"},
            "action": "NavigatedTo",
            "object": {"id": "https://probe.example.edu/page", "type": "WebPage"},
            "eventTime": now,
        }
        for _ in range(10)
    ]
    return orjson.dumps({"sensor": "probe", "sendTime": now, "data": events})


class BatchClock:
    """How long each batch of an erase took: the time since the batch before ended."""

    def __init__(self) -> None:
        self.spent: list[float] = []
        self._last = time.perf_counter()

    def __call__(self, _removed: int) -> None:
        now = time.perf_counter()
        self.spent.append(now - self._last)
        self._last = now


def _probe(url: str, stop: Event, results: Commits) -> None:
    """Commit small requests back to back until told to stop; (start, seconds) of each."""
    store = open_store(Settings(database_url=url))
    _, key = store.keys.create(label="erase bench probe", now=utc_text(datetime.now(UTC)))
    limits = IngestLimits.from_settings(Settings())
    spent = []
    while not stop.is_set():
        request = prepare_request(
            _probe_body(), key=key, limits=limits, received_at=utc_text(datetime.now(UTC))
        ).request
        began = time.time()
        commit_batch(store, [request])
        spent.append((began, time.time() - began))
    store.close()
    results.put(spent)


def _figures(spent: list[float]) -> str:
    if not spent:
        return "no commit"
    ordered = sorted(spent)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(spent)} commits, p99 {p99 * 1000:.1f} ms, worst {ordered[-1] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--people", type=int, default=3, help="the busiest, then typical ones")
    parser.add_argument("--batch-events", type=int, default=Settings().purge_batch_events)
    parser.add_argument("--batch-ms", type=int, default=Settings().purge_batch_ms)
    args = parser.parse_args()
    store = open_store(Settings(database_url=args.database))
    print(
        f"{store.stats()['events']:,} events in {args.database}; batches of at most "
        f"{args.batch_events}, paced to {args.batch_ms} ms"
    )
    ranks = range(0, 2000, 2000 // args.people)
    people = [pick_typical(store, "actor_external_id", rank) for rank in ranks]
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    results: Commits = context.Queue()
    probe = context.Process(target=_probe, args=(args.database, stop, results))
    probe.start()
    windows = []
    try:
        for given in people:
            window_start = time.time()
            time.sleep(BASELINE_S)
            find_began = time.time()
            began = time.perf_counter()
            with store.snapshot(is_time_limited=False) as snapshot:
                traces = find_person(snapshot, given, None)
            found_s = time.perf_counter() - began
            clock = BatchClock()
            result = erase_person(
                store,
                traces,
                pseudonymizer=None,
                is_dry_run=False,
                batch_events=args.batch_events,
                batch_ms=args.batch_ms,
                actor="bench",
                at=utc_text(datetime.now(UTC)),
                on_batch=clock,
            )
            batches = clock.spent
            erase_s = sum(batches)
            windows.append((window_start, find_began, time.time()))
            print(
                f"{given}: found {len(traces.event_seqs):,} events in {len(traces.groups)} "
                f"courses in {found_s:.2f} s; erased {result.events:,} in {erase_s:.2f} s "
                f"({len(batches)} batches, longest {max(batches, default=0) * 1000:.0f} ms, "
                f"median {statistics.median(batches or [0]) * 1000:.0f} ms); "
                f"find + erase {found_s + erase_s:.2f} s (target under 5 s)"
            )
    finally:
        stop.set()
        spent = results.get(timeout=60)
        probe.join(timeout=60)
        store.close()
    for (window_start, find_began, erase_ended), given in zip(windows, people, strict=False):
        before = [s for at, s in spent if window_start <= at < find_began]
        during = [s for at, s in spent if find_began <= at + s and at < erase_ended]
        print(
            f"{given}: ingest commits before the erase {_figures(before)}; "
            f"during the find and erase {_figures(during)} (target: worst under 100 ms)"
        )


if __name__ == "__main__":
    main()
