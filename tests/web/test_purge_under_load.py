"""A purge while producers keep sending: nothing acknowledged is lost, on both backends."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from tests.conftest import start_server
from tests.fixtures.events import ingest
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.privacy import RetentionPolicy, purge
from caliper_store.reports import verify_rollups
from caliper_store.storage import Store, utc_text

OLD_EVENTS = 600
BATCH_EVENTS = 25  # 24 purge batches, each with a request committed between it and the next
EVENTS_PER_REQUEST = 10


def _events(at: str, count: int, user: int) -> list[dict[str, object]]:
    events = []
    for _ in range(count):
        event = canvas_event(user=user, event_id=f"urn:uuid:{uuid.uuid4()}")
        event["eventTime"] = at
        events.append(event)
    return events


def _stored_ids(store: Store) -> set[str]:
    with store.snapshot(is_time_limited=False) as snapshot:
        return {str(row[0]) for row in snapshot.events([], ("event_id",))}


def test_a_purge_under_ingest_load_loses_no_acknowledged_event(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    key, api_key = store.keys.create(label="Canvas", now="2024-01-01T00:00:00.000000Z")
    old_ids = set()
    for start in range(0, OLD_EVENTS, 100):
        batch = _events("2020-02-03T04:05:06.000Z", 100, user=start // 100)
        old_ids |= {str(event["id"]) for event in batch}
        ingest(store, api_key, orjson.dumps(envelope(batch)), "2020-02-03T04:05:07.000000Z")
    server = start_server(tmp_path, database_url)
    acknowledged: set[str] = set()
    failures: list[str] = []
    committed = threading.Semaphore(0)  # one release per acknowledged request
    purge_done = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            number = 0
            while not purge_done.is_set() or number < 5:
                number += 1
                now = utc_text(datetime.now(UTC))[:23] + "Z"
                batch = _events(now, EVENTS_PER_REQUEST, user=100 + number % 7)
                answer = http.post(
                    "/caliper",
                    content=orjson.dumps(envelope(batch)),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                    return
                acknowledged.update(str(event["id"]) for event in batch)
                committed.release()

    def between_batches(_removed: int) -> None:
        # A request is committed between every two purge batches: the purge never starves it.
        assert committed.acquire(timeout=60), f"no request was acknowledged: {failures}"

    sender = threading.Thread(target=send)
    try:
        sender.start()
        result = purge(
            store,
            RetentionPolicy(events_days=30, quarantine_days=0, receipts_days=0),
            datetime.now(UTC),
            batch_events=BATCH_EVENTS,
            actor="test",
            on_events=between_batches,
        )
        purge_done.set()
        sender.join(timeout=120)
    finally:
        purge_done.set()
        assert server.stop(), server.log()
    assert not failures, failures
    assert result.events == OLD_EVENTS
    stored = _stored_ids(store)
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events lost"
    assert stored == acknowledged  # and every old one went
    assert len(acknowledged) >= EVENTS_PER_REQUEST * OLD_EVENTS // BATCH_EVENTS
    assert verify_rollups(store) == []
