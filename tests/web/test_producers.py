"""Producers' real habits: Moodle's re-sends, concurrent senders, keys switched off mid-stream."""

from __future__ import annotations

import threading

import httpx
import orjson
from tests.conftest import Client
from tests.fixtures.payloads import canvas_event, envelope, moodle_event
from tests.fixtures.server import run_cli

from caliper_store.storage import Store
from caliper_store.storage.search import QuarantineFilter


def test_moodle_resend_of_whole_queue_counts_duplicates(client: Client, store: Store) -> None:
    batch = envelope([moodle_event(user, 7, user % 60) for user in range(50)], data_version=None)
    moodle_headers = {"Authorization": client.key}  # Moodle sends the bare key
    first = client.post(batch, headers=moodle_headers, params={"receipt": "1"})
    again = client.post(batch, headers=moodle_headers, params={"receipt": "1"})
    assert first.status_code == again.status_code == 200
    assert (first.json()["stored"], first.json()["duplicates"]) == (50, 0)
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 50)
    assert store.stats()["events"] == 50
    # A plain re-send (no receipt asked) is still a 200 with an empty body, as Moodle needs.
    plain = client.post(batch, headers=moodle_headers)
    assert (plain.status_code, plain.content) == (200, b"")
    assert store.stats()["duplicates"] == 100


def test_two_concurrent_clients_sending_the_same_events_store_them_once(
    client: Client, store: Store
) -> None:
    events = [canvas_event(user=n % 40, course=n % 7) for n in range(400)]
    results: list[dict[str, int]] = []

    def send(order: list[dict[str, object]], size: int) -> None:
        with httpx.Client(base_url=client.server.base_url, timeout=60) as http:
            for start in range(0, len(order), size):
                response = http.post(
                    "/caliper",
                    params={"receipt": "1"},
                    content=orjson.dumps(envelope(order[start : start + size])),
                    headers={
                        "Authorization": f"Bearer {client.key}",
                        "Content-Type": "application/json",
                    },
                )
                assert response.status_code == 200
                results.append(response.json())

    senders = [
        threading.Thread(target=send, args=(events, 1)),
        threading.Thread(target=send, args=(list(reversed(events)), 7)),
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert sum(result["stored"] for result in results) == 400
    assert sum(result["duplicates"] for result in results) == 400
    assert store.stats()["events"] == 400
    assert sorted(store.iter_event_ids()) == sorted(str(event["id"]) for event in events)


def test_same_id_with_different_content_goes_to_quarantine(client: Client, store: Store) -> None:
    original = canvas_event()
    changed = dict(original, action="Viewed")
    assert client.post(envelope([original])).status_code == 200
    response = client.post(envelope([changed]), params={"receipt": "1"})
    assert response.status_code == 200
    assert response.json()["items"][0]["reasons"][0]["code"] == "id_conflict"
    held = store.quarantine.page(QuarantineFilter(), before_id=None, limit=10)
    assert [item.event_id for item in held] == [original["id"]]
    assert orjson.loads(held[0].raw)["action"] == "Viewed"
    assert store.stats()["events"] == 1


def test_key_lifecycle_through_the_cli(client: Client, database_url: str) -> None:
    created = run_cli("keys", "create", "--label", "Canvas", "--database", database_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert len(key) == 36
    assert key not in created.stderr
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post(envelope([canvas_event()]), headers=headers).status_code == 200

    listed = run_cli("keys", "list", "--json", "--database", database_url)
    canvas = next(row for row in orjson.loads(listed.stdout) if row["label"] == "Canvas")
    assert canvas["status"] == "active"
    assert canvas["last_used_at"] is not None
    assert key not in listed.stdout

    assert run_cli("keys", "deactivate", "Canvas", "--database", database_url).returncode == 0
    assert client.post(envelope([canvas_event()]), headers=headers).status_code == 401
    assert run_cli("keys", "activate", "Canvas", "--database", database_url).returncode == 0
    assert client.post(envelope([canvas_event()]), headers=headers).status_code == 200
    assert run_cli("keys", "revoke", canvas["prefix"], "--database", database_url).returncode == 0
    assert client.post(envelope([canvas_event()]), headers=headers).status_code == 401
    refused = run_cli("keys", "activate", "Canvas", "--database", database_url)
    assert refused.returncode != 0
    assert "revoked" in refused.stderr


def test_each_event_records_the_key_that_sent_it(client: Client, store: Store) -> None:
    other, record = store.keys.create(label="Open edX", now="2024-01-01T00:00:00.000000Z")
    client.post(envelope([canvas_event(), canvas_event()]))
    client.post(envelope([canvas_event()]), headers={"Authorization": f"Bearer {other}"})
    per_key = {row["label"]: row["events"] for row in store.stats()["by_key"]}
    assert per_key == {"test sensor": 2, "Open edX": 1}
    assert record.id in {row["key_id"] for row in store.stats()["by_key"]}


def test_stats_and_quarantine_cli(client: Client, database_url: str) -> None:
    broken = canvas_event()
    broken["eventTime"] = "not a time"
    client.post(envelope([canvas_event(), broken]))
    stats = run_cli("stats", "--json", "--database", database_url)
    assert stats.returncode == 0, stats.stderr
    figures = orjson.loads(stats.stdout)
    assert (figures["events"], figures["quarantined"]) == (1, 1)
    assert figures["by_type"] == [{"type": "NavigationEvent", "action": "NavigatedTo", "events": 1}]
    held = run_cli("quarantine", "list", "--json", "--database", database_url)
    items = orjson.loads(held.stdout)
    assert items[0]["reasons"][0]["code"] == "unparseable_event_time"
    assert items[0]["raw"]["eventTime"] == "not a time"
    human = run_cli("quarantine", "list", "--database", database_url)
    assert "unparseable_event_time" in human.stdout
