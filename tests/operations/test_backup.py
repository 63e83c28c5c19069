"""caliper-store backup: a consistent copy of a live SQLite store, taken during ingest."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import orjson
import pytest

from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.polling import wait_for
from tests.fixtures.server import run_cli

NOW = "2024-01-01T00:00:00.000000Z"
SENDERS = 2


def test_a_backup_during_ingest_holds_every_event_acknowledged_before_it_began(
    tmp_path: Path, sqlite_url: str, sqlite_store: Store
) -> None:
    running = start_server(tmp_path, sqlite_url)
    key, _ = sqlite_store.keys.create(label="Canvas", now=NOW)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send() -> None:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=running.base_url, timeout=60) as http:
            while not stop.is_set():
                events = [canvas_event(user=n) for n in range(20)]
                answer = http.post(
                    "/caliper", content=orjson.dumps(envelope(events)), headers=headers
                )
                assert answer.status_code == 200, answer.text
                with lock:
                    acknowledged.extend(str(event["id"]) for event in events)

    senders = [threading.Thread(target=send) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    try:
        wait_for(lambda: len(acknowledged) >= 400, "400 acknowledged events")
        with lock:  # every event acknowledged before the backup begins
            before = set(acknowledged)
        copy = tmp_path / "backup.db"
        done = run_cli("backup", str(copy), "--database", sqlite_url)
        with lock:
            during = len(acknowledged) - len(before)
    finally:
        stop.set()
        for sender in senders:
            sender.join()
    assert done.returncode == 0, done.stderr
    assert during > 0, "ingest did not go on during the backup"

    with sqlite3.connect(copy) as restored:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = {row[0] for row in restored.execute("SELECT event_id FROM events")}
    assert before <= kept
    # The copy is a store the server can run on, as a restore would.
    (tmp_path / "restored").mkdir()
    restored_server = start_server(tmp_path / "restored", f"sqlite:///{copy}")
    assert restored_server.stop(), restored_server.log()
    assert running.stop(), running.log()


def test_backup_never_overwrites_a_file(tmp_path: Path, sqlite_url: str) -> None:
    existing = tmp_path / "there.db"
    existing.write_bytes(b"keep me")
    refused = run_cli("backup", str(existing), "--database", sqlite_url)
    assert refused.returncode == 1
    assert "never overwrites" in refused.stderr
    assert existing.read_bytes() == b"keep me"


def test_backup_of_postgresql_points_to_its_own_tools(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("about PostgreSQL only")
    refused = run_cli("backup", str(tmp_path / "copy.db"), "--database", database_url)
    assert refused.returncode == 1
    assert "pg_dump" in refused.stderr
    assert not (tmp_path / "copy.db").exists()
