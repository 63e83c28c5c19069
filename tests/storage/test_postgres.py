"""PostgreSQL specifics: monthly partitions, exact dedup across them, surviving a server restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from tests.conftest import Client, start_server
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.postgres import PostgresCluster, create_database, postgres_bin

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("about PostgreSQL only")
    return database_url


def partitions(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
    return {row[0] for row in rows}


def test_late_and_future_events_land_in_their_month_and_dedupe_across_months(
    postgres_url: str, store: Store, tmp_path: Path
) -> None:
    running = start_server(tmp_path, postgres_url)
    key, _ = store.keys.create(label="learn", now="2024-01-01T00:00:00.000000Z")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    late = canvas_event()
    late["eventTime"] = "2009-02-28T23:59:59.999Z"
    future = canvas_event()
    future["eventTime"] = "2091-07-01T00:00:00+02:00"  # UTC: still June
    far = canvas_event()
    far["eventTime"] = "9999-12-31T23:00:00Z"
    body = orjson.dumps(envelope([late, future, far]))
    assert (
        httpx.post(running.base_url + "/caliper", content=body, headers=headers).status_code == 200
    )
    assert {"events_p2009_02", "events_p2091_06", "events_p9999_12"} <= partitions(postgres_url)
    # The same id again, now dated in another month with other content: a conflict, not a 2nd row.
    moved = dict(late, eventTime="2024-05-01T00:00:00Z")
    receipt = httpx.post(
        running.base_url + "/caliper",
        params={"receipt": "1"},
        content=orjson.dumps(envelope([late, moved])),
        headers=headers,
    ).json()
    assert [item["verdict"] for item in receipt["items"]] == ["duplicate", "quarantined"]
    assert sorted(store.iter_event_ids()) == sorted([late["id"], future["id"], far["id"]])
    assert running.stop(), running.log()


def test_server_creates_partitions_for_the_coming_months_at_start(
    postgres_url: str, tmp_path: Path
) -> None:
    running = start_server(tmp_path, postgres_url)
    assert len(partitions(postgres_url)) >= 3
    assert running.stop(), running.log()


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL server binaries to stop and start a server of its own")
    cluster = PostgresCluster.create(bin_dir)
    cluster.start()
    yield cluster
    try:
        cluster.stop()
    finally:
        cluster.remove()


def test_postgres_stopped_mid_load_loses_nothing_acknowledged_and_recovers_alone(
    own_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = create_database(own_cluster.admin_url)
    store = open_store(Settings(database_url=url))
    store.require_current_schema(create_if_empty=True)
    key, _ = store.keys.create(label="canvas", now="2024-01-01T00:00:00.000000Z")
    store.close()
    running = start_server(tmp_path, url, "--retry-after-s", "2")
    acknowledged: list[str] = []
    statuses: list[int] = []
    refused_with_retry_after: list[str] = []
    stop_sending = threading.Event()
    saw_refusal = threading.Event()
    saw_recovery = threading.Event()
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            sensor = Client(running, http, key)
            while not stop_sending.is_set():
                event = canvas_event()
                response = sensor.post(envelope([event]))
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        acknowledged.append(str(event["id"]))
                        if saw_refusal.is_set():
                            saw_recovery.set()
                    else:
                        assert response.status_code == 503, response.text
                        refused_with_retry_after.append(response.headers["retry-after"])
                        saw_refusal.set()

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    try:
        own_cluster.stop()
        assert saw_refusal.wait(timeout=60), "no 503 while PostgreSQL was down"
        assert httpx.get(running.base_url + "/readyz", timeout=30).status_code == 503
        own_cluster.start()
        assert saw_recovery.wait(timeout=60), "the server did not recover by itself"
        assert httpx.get(running.base_url + "/readyz", timeout=30).status_code == 200
    finally:
        stop_sending.set()
        for sender in senders:
            sender.join()
    assert set(refused_with_retry_after) == {"2"}
    store = open_store(Settings(database_url=url))
    stored = set(store.iter_event_ids())
    store.close()
    assert set(acknowledged) <= stored
    assert running.stop(), running.log()
