"""Durability: kill the server with SIGKILL mid-load; every acknowledged event survives, whole."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
from tests.conftest import Client, start_server
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.config import Settings
from caliper_store.reports import verify_rollups
from caliper_store.storage import Store, open_store

SENDERS = 8
KILL_AFTER_ACKS = 300
EVENTS_PER_ENVELOPE = (1, 10)
PROGRESS_TIMEOUT_S = 120


def test_sigkill_mid_load_loses_no_acknowledged_event_and_stores_no_partial_envelope(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    key, _ = store.keys.create(label="crash", now="2024-01-01T00:00:00.000000Z")
    running = start_server(tmp_path, database_url)
    acknowledged: list[list[str]] = []
    sent: list[list[str]] = []
    enough = threading.Event()
    lock = threading.Lock()

    def send(sender: int) -> None:
        size = EVENTS_PER_ENVELOPE[sender % 2]
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            sensor = Client(running, http, key)
            while True:
                events = [canvas_event(event_id=f"urn:uuid:{uuid.uuid4()}") for _ in range(size)]
                ids = [str(event["id"]) for event in events]
                with lock:
                    sent.append(ids)
                try:
                    response = sensor.post(envelope(events))
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(ids)
                        if len(acknowledged) >= KILL_AFTER_ACKS:
                            enough.set()

    senders = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    for sender in senders:
        sender.start()
    assert enough.wait(timeout=120), "the load never reached the kill point"
    running.kill()
    for sender in senders:
        sender.join()

    # Read as a fresh process would after the crash (SQLite's WAL recovery happens here).
    stored = set(store.iter_event_ids())
    acked_ids = {event_id for ids in acknowledged for event_id in ids}
    assert len(acked_ids) >= KILL_AFTER_ACKS
    assert acked_ids <= stored, f"{len(acked_ids - stored)} acknowledged events lost"
    for ids in sent:
        present = sum(event_id in stored for event_id in ids)
        assert present in (0, len(ids)), f"envelope half-stored: {present} of {len(ids)}"
    # The report rollups, written in the same transactions, count each stored event once.
    assert verify_rollups(store) == []

    # The server starts again on the recovered file and keeps taking events.
    restarted = start_server(tmp_path, database_url)
    with httpx.Client(base_url=restarted.base_url, timeout=30) as http:
        assert Client(restarted, http, key).post(envelope([canvas_event()])).status_code == 200
    assert restarted.stop(), restarted.log()


def writer_children(server_pid: int) -> list[int]:
    """The server's writer process (on SQLite), found among its children by command line."""
    found: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def test_a_killed_writer_process_loses_no_acknowledged_event_and_the_server_recovers(
    tmp_path: Path, sqlite_url: str
) -> None:
    store = open_store(Settings(database_url=sqlite_url))
    store.require_current_schema(create_if_empty=True)
    key, _ = store.keys.create(label="crash", now="2024-01-01T00:00:00.000000Z")
    running = start_server(tmp_path, sqlite_url)
    assert running.process is not None
    statuses: list[int] = []
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=running.base_url, timeout=30) as http:
            sensor = Client(running, http, key)
            while not stop.is_set():
                event = canvas_event(event_id=f"urn:uuid:{uuid.uuid4()}")
                response = sensor.post(envelope([event]))
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        acknowledged.add(str(event["id"]))

    def acknowledged_count() -> int:
        with lock:
            return len(acknowledged)

    senders = [threading.Thread(target=send) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()

    def wait_for_acks(count: int) -> None:
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while acknowledged_count() < count:
            assert time.monotonic() < deadline, f"stuck at {acknowledged_count()} of {count}"
            stop.wait(0.01)  # polling for progress, not timing

    try:
        wait_for_acks(KILL_AFTER_ACKS)
        (writer_pid,) = writer_children(running.process.pid)
        os.kill(writer_pid, signal.SIGKILL)
        wait_for_acks(acknowledged_count() + KILL_AFTER_ACKS)  # without a restart
    finally:
        stop.set()
        for sender in senders:
            sender.join()

    # The batch the dead writer held, and any sent to it meanwhile, got 503: retried, not lost.
    assert set(statuses) == {200, 503}, f"statuses {set(statuses)}"
    assert writer_children(running.process.pid) != [writer_pid]  # a new writer took over
    stored = set(store.iter_event_ids())
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events lost"
    assert running.stop(), running.log()
    store.close()
