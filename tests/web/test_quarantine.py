"""Quarantine: list with filters, replay under today's rules exactly once, discard with a trace."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import httpx
import orjson
from tests.conftest import Client, start_server
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.server import run_cli

from caliper_store.storage import Store

NOW = "2024-01-01T00:00:00.000000Z"
LONG_OBJECT = "urn:instructure:canvas:attachment:" + "7" * 80


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(base_url: str, key: str, body: object) -> httpx.Response:
    return httpx.post(
        base_url + "/caliper",
        content=orjson.dumps(body),
        headers={**bearer(key), "Content-Type": "application/json"},
        params={"receipt": "1"},
        timeout=60,
    )


def quarantine_under_strict_limits(
    tmp_path: Path, database_url: str, store: Store, count: int
) -> tuple[str, list[dict[str, object]]]:
    """Send events whose object id breaks a low max_id_chars; return the ingest key and them."""
    key, _ = store.keys.create(label="canvas", now=NOW)
    strict = start_server(tmp_path, database_url, "--max-id-chars", "64")
    try:
        events = []
        for _ in range(count):
            event = canvas_event()
            event["object"]["id"] = LONG_OBJECT
            events.append(event)
        receipt = post(strict.base_url, key, envelope(events)).json()
        assert receipt["quarantined"] == count
        assert {item["reasons"][0]["code"] for item in receipt["items"]} == {"id_too_long"}
    finally:
        assert strict.stop()
    return key, events


def test_replay_moves_a_fixed_item_into_events_exactly_once(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    _, events = quarantine_under_strict_limits(tmp_path, database_url, store, 1)
    admin, _ = store.keys.create(label="admin", now=NOW, scopes=("admin",))
    # The fix: the server now runs with the default max_id_chars.
    fixed = start_server(tmp_path, database_url)
    try:
        with httpx.Client(base_url=fixed.base_url, headers=bearer(admin), timeout=60) as http:
            held = http.get("/api/quarantine").json()["items"]
            assert [item["reason"] for item in held] == ["id_too_long"]
            item_id = held[0]["id"]
            answers: list[httpx.Response] = []

            def replay() -> None:
                with httpx.Client(base_url=fixed.base_url, headers=bearer(admin), timeout=60) as h:
                    answers.append(h.post(f"/api/quarantine/{item_id}/replay"))

            racers = [threading.Thread(target=replay) for _ in range(6)]
            for racer in racers:
                racer.start()
            cli = run_cli(
                "quarantine", "replay", str(item_id), "--json", "--database", database_url
            )
            for racer in racers:
                racer.join()
            assert cli.returncode == 0, cli.stderr
            results = [a.json()["result"] for a in answers if a.status_code == 200]
            results += [o["result"] for o in orjson.loads(cli.stdout)]
            assert results.count("stored") == 1, results
            assert sorted(a.status_code for a in answers if a.status_code != 200) in (
                [409] * 5,
                [409] * 6,
            )

            stored = http.get("/api/events", params={"objectId": LONG_OBJECT, "raw": "1"}).json()
            assert [event["raw"] for event in stored["events"]] == events
            assert stored["events"][0]["received_at"] == held[0]["received_at"]
            shown = http.get(f"/api/quarantine/{item_id}").json()
            assert shown["status"] == "replayed"
            assert [entry["action"] for entry in shown["audit"]] == ["replayed"]
            assert shown["audit"][0]["outcome"] == "stored"
            assert shown["audit"][0]["event_id"] == events[0]["id"]
            assert http.get("/api/quarantine").json()["items"] == []
            again = http.post(f"/api/quarantine/{item_id}/replay")
            assert again.status_code == 409
    finally:
        assert fixed.stop(), fixed.log()
    figures = store.stats()
    assert figures["events"] == 1
    # stats counts what is still held; the replayed item is counted by its status.
    assert figures["quarantined"] == 0
    assert figures["quarantine_by_reason"] == []
    assert figures["quarantine_by_status"] == {"replayed": 1}


def test_replay_of_an_item_that_still_fails_leaves_it_held(client: Client, store: Store) -> None:
    admin, _ = store.keys.create(label="admin", now=NOW, scopes=("admin",))
    broken = canvas_event()
    del broken["actor"]
    original = canvas_event()
    changed = dict(original, action="Viewed")
    client.post(envelope([broken, original]))
    client.post(envelope([changed]))  # the same id with other content: a conflict
    held = client.http.get("/api/quarantine", headers=bearer(admin)).json()["items"]
    by_reason = {item["reason"]: item["id"] for item in held}
    assert set(by_reason) == {"missing_actor", "id_conflict"}
    still = client.http.post(
        f"/api/quarantine/{by_reason['missing_actor']}/replay", headers=bearer(admin)
    )
    assert still.json()["result"] == "still_invalid"
    assert still.json()["reasons"][0]["code"] == "missing_actor"
    conflict = client.http.post(
        f"/api/quarantine/{by_reason['id_conflict']}/replay", headers=bearer(admin)
    )
    assert conflict.json()["result"] == "conflict"
    after = client.http.get("/api/quarantine", headers=bearer(admin)).json()["items"]
    assert sorted(item["id"] for item in after) == sorted(by_reason.values())
    assert all(item["status"] == "held" for item in after)
    assert store.stats()["quarantined"] == 2
    assert store.stats()["events"] == 1


def test_discard_needs_the_admin_scope_and_leaves_an_audit_row(
    client: Client, store: Store, database_url: str
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    admin, _ = store.keys.create(label="ops", now=NOW, scopes=("admin",))
    broken = canvas_event()
    broken["eventTime"] = "not a time"
    client.post(envelope([broken, dict(canvas_event(), eventTime="later")]))
    first, second = sorted(
        item["id"]
        for item in client.http.get("/api/quarantine", headers=bearer(reader)).json()["items"]
    )
    refused = client.http.post(f"/api/quarantine/{first}/discard", headers=bearer(reader))
    assert refused.status_code == 403
    done = client.http.post(
        f"/api/quarantine/{first}/discard", headers=bearer(admin), content=b'{"note": "test event"}'
    )
    assert done.status_code == 200, done.text
    shown = client.http.get(f"/api/quarantine/{first}", headers=bearer(reader)).json()
    assert shown["status"] == "discarded"
    assert shown["raw"]["eventTime"] == "not a time"
    assert shown["audit"] == [
        {
            "action": "discarded",
            "actor": "key 3 (ops)",
            "at": shown["resolved_at"],
            "outcome": None,
            "event_id": None,
            "note": "test event",
        }
    ]
    assert (
        client.http.post(f"/api/quarantine/{first}/discard", headers=bearer(admin)).status_code
        == 409
    )
    assert (
        client.http.post(f"/api/quarantine/{first}/replay", headers=bearer(admin)).status_code
        == 409
    )
    listed = client.http.get("/api/quarantine", headers=bearer(reader)).json()["items"]
    assert [item["id"] for item in listed] == [second]
    discarded = client.http.get(
        "/api/quarantine", params={"status": "discarded"}, headers=bearer(reader)
    )
    assert [item["id"] for item in discarded.json()["items"]] == [first]

    cli = run_cli(
        "quarantine",
        "discard",
        str(second),
        "--note",
        "junk",
        "--by",
        "alice",
        "--database",
        database_url,
    )
    assert cli.returncode == 0, cli.stderr
    trail = orjson.loads(
        run_cli("quarantine", "show", str(second), "--database", database_url).stdout
    )
    assert (trail["status"], trail["audit"][0]["actor"], trail["audit"][0]["note"]) == (
        "discarded",
        "alice",
        "junk",
    )
    missing = run_cli("quarantine", "discard", "999", "--database", database_url)
    assert missing.returncode != 0
    assert "no quarantined item with id 999" in missing.stderr


def test_quarantine_list_filters_by_reason_key_time_and_pages(client: Client, store: Store) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    other, record = store.keys.create(label="moodle", now=NOW)
    for n in range(7):
        broken = canvas_event()
        del broken["object"]
        client.post(envelope([broken]))
        late = canvas_event()
        late["eventTime"] = f"day {n}"
        client.post(envelope([late]), headers=bearer(other))
    everything = client.http.get(
        "/api/quarantine", params={"status": "any"}, headers=bearer(reader)
    ).json()
    assert len(everything["items"]) == 14
    by_reason = client.http.get(
        "/api/quarantine", params={"reason": "missing_object"}, headers=bearer(reader)
    )
    assert {item["reason"] for item in by_reason.json()["items"]} == {"missing_object"}
    by_key = client.http.get(
        "/api/quarantine", params={"keyId": str(record.id)}, headers=bearer(reader)
    )
    assert {item["api_key_id"] for item in by_key.json()["items"]} == {record.id}
    assert len(by_key.json()["items"]) == 7
    times = sorted(item["received_at"] for item in everything["items"])
    window = client.http.get(
        "/api/quarantine",
        params={"receivedSince": times[3], "receivedUntil": times[10]},
        headers=bearer(reader),
    ).json()["items"]
    assert sorted(item["received_at"] for item in window) == times[3:10]
    seen: list[int] = []
    params = {"limit": "4"}
    while True:
        page = client.http.get("/api/quarantine", params=params, headers=bearer(reader)).json()
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 14
    bad = client.http.get("/api/quarantine", params={"status": "lost"}, headers=bearer(reader))
    assert (bad.status_code, bad.json()["field"]) == (400, "status")


def test_cli_replays_every_held_item_of_a_reason_after_the_fix(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    quarantine_under_strict_limits(tmp_path, database_url, store, 3)
    done = run_cli("quarantine", "replay", "--reason", "id_too_long", "--database", database_url)
    assert done.returncode == 0, done.stderr
    assert "3 of 3 items left quarantine" in done.stderr
    assert store.stats()["events"] == 3
    again = run_cli("quarantine", "replay", "--reason", "id_too_long", "--database", database_url)
    assert "0 of 0 items left quarantine" in again.stderr
    assert run_cli("quarantine", "replay", "--database", database_url).returncode != 0


def assert_problem(response: httpx.Response, status: int, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json().get("field") == field


def test_item_id_beyond_64_bits_answers_400_naming_it_and_an_unknown_id_404(
    client: Client, store: Store
) -> None:
    admin, _ = store.keys.create(label="ops", now=NOW, scopes=("admin",))
    for item_id, status, field in (
        (2**64, 400, "item_id"),
        (10**40, 400, "item_id"),
        (2**63, 400, "item_id"),
        (2**63 - 1, 404, None),
        ("9" * 5_000, 400, "item_id"),  # past the 4,300 digits Python reads as an int
        ("12abc", 400, "item_id"),
        ("-1", 400, "item_id"),
    ):
        shown = client.http.get(f"/api/quarantine/{item_id}", headers=bearer(admin))
        assert_problem(shown, status, field)
        for action in ("replay", "discard"):
            done = client.http.post(f"/api/quarantine/{item_id}/{action}", headers=bearer(admin))
            assert_problem(done, status, field)
    log = client.server.log()
    assert "Traceback" not in log, log


def test_a_quarantine_cursor_naming_an_id_beyond_64_bits_answers_400(
    client: Client, store: Store
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    for _ in range(3):
        broken = canvas_event()
        del broken["object"]
        client.post(envelope([broken]))
    cursor = client.http.get(
        "/api/quarantine", params={"limit": "1"}, headers=bearer(reader)
    ).json()["next_cursor"]
    payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for last_id in (2**63, 2**64 - 1, -1):
        payload[2] = last_id
        tampered = base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")
        answer = client.http.get(
            "/api/quarantine", params={"cursor": tampered}, headers=bearer(reader)
        )
        assert_problem(answer, 400, "cursor")
    log = client.server.log()
    assert "Traceback" not in log, log
