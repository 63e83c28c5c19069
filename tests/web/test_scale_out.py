"""Several ingest processes over one database: every event stored exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import orjson
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.storage import Store

EVENTS = 600


def send_all(
    base_url: str,
    key: str,
    events: list[dict[str, object]],
    size: int,
    results: list[dict[str, int]],
) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for start in range(0, len(events), size):
            response = http.post(
                "/caliper",
                params={"receipt": "1"},
                content=orjson.dumps(envelope(events[start : start + size])),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.text
            results.append(response.json())


def assert_stored_exactly_once(
    store: Store, events: list[dict[str, object]], results: list[dict[str, int]], copies: int
) -> None:
    assert sum(result["stored"] for result in results) == len(events)
    assert sum(result["duplicates"] for result in results) == len(events) * (copies - 1)
    assert sum(result["quarantined"] for result in results) == 0
    stored = list(store.iter_event_ids())
    assert len(stored) == len(set(stored)) == len(events)
    assert set(stored) == {str(event["id"]) for event in events}


def test_two_server_processes_receiving_the_same_events_store_them_once(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    first = start_server(tmp_path, database_url)
    second = start_server(tmp_path, database_url)
    key, _ = store.keys.create(label="lb", now="2024-01-01T00:00:00.000000Z")
    # Events spread over several months, so PostgreSQL creates partitions concurrently too.
    events = [canvas_event(user=n % 50, course=n % 9) for n in range(EVENTS)]
    for number, event in enumerate(events):
        event["eventTime"] = f"20{18 + number % 3}-{1 + number % 12:02d}-15T10:00:00.000Z"
    results: list[dict[str, int]] = []
    senders = [
        threading.Thread(target=send_all, args=(first.base_url, key, events, 10, results)),
        threading.Thread(
            target=send_all, args=(second.base_url, key, list(reversed(events)), 3, results)
        ),
        threading.Thread(
            target=send_all, args=(second.base_url, key, events[::2] + events[1::2], 25, results)
        ),
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert_stored_exactly_once(store, events, results, copies=3)
    assert first.stop(), first.log()
    assert second.stop(), second.log()


def test_workers_flag_runs_several_processes_that_store_exactly_once(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    running = start_server(tmp_path, database_url, "--workers", "2")
    key, _ = store.keys.create(label="workers", now="2024-01-01T00:00:00.000000Z")
    events = [canvas_event() for _ in range(300)]
    results: list[dict[str, int]] = []
    senders = [
        threading.Thread(target=send_all, args=(running.base_url, key, events, size, results))
        for size in (1, 4)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert_stored_exactly_once(store, events, results, copies=2)
    assert running.stop(), running.log()
