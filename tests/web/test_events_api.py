"""Reading events over HTTP: scopes, filters, one event as sent, stable pages, OpenAPI, CLI."""

from __future__ import annotations

import base64
import json
import re
import threading

import httpx
import orjson
import pytest
from tests.conftest import Client
from tests.fixtures.events import generated_envelopes
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.server import ServerProcess, run_cli

from caliper_store.storage import Store
from caliper_store.web.app import API_ROUTES

NOW = "2024-01-01T00:00:00.000000Z"
READ_ROUTES = [
    "/api/events",
    "/api/events/urn:uuid:00000000-0000-4000-8000-000000000000",
    "/api/export",
    "/api/quarantine",
    "/api/quarantine/1",
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    if field is not None:
        assert body["field"] == field


def test_a_read_key_cannot_ingest_an_ingest_key_cannot_read_no_key_reads_nothing(
    client: Client, store: Store
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    admin, _ = store.keys.create(label="admin", now=NOW, scopes=("admin",))
    assert client.post(envelope([canvas_event()])).status_code == 200
    body = orjson.dumps(envelope([canvas_event()]))
    for path in ("/caliper", "/caliper/validate"):
        refused = client.http.post(
            path, content=body, headers={**bearer(reader), "Content-Type": "application/json"}
        )
        assert_problem(refused, 403, "Authorization")
    for path in READ_ROUTES:
        assert_problem(client.http.get(path, headers=bearer(client.key)), 403, "Authorization")
        assert_problem(client.http.get(path), 401, "Authorization")
        assert_problem(client.http.get(path, headers=bearer("not-a-key")), 401)
        for key in (reader, admin):
            assert client.http.get(path, headers=bearer(key)).status_code in (200, 404)
    assert len(client.http.get("/api/events", headers=bearer(reader)).json()["events"]) == 1
    for action in ("replay", "discard"):
        refused = client.http.post(f"/api/quarantine/1/{action}", headers=bearer(reader))
        assert_problem(refused, 403, "Authorization")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("keyId=abc", "keyId"),
        ("limit=100000", "limit"),
        ("order=random", "order"),
        ("actor=someone", "actor"),
        ("cursor=%2F%2F%2F", "cursor"),
        ("version=9", "version"),
    ],
)
def test_bad_filter_values_are_400_problems_naming_the_field(
    client: Client, store: Store, query: str, field: str
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    assert_problem(client.http.get(f"/api/events?{query}", headers=bearer(reader)), 400, field)
    if field not in ("limit", "order", "cursor"):
        assert_problem(client.http.get(f"/api/export?{query}", headers=bearer(reader)), 400, field)


def test_one_event_comes_back_raw_exactly_as_sent_with_its_receipt(
    client: Client, store: Store
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    sent = canvas_event(event_id="2F0C5BC2-5D70-4E0D-9F6B-2C0C4D8A3E11")  # Learn: a bare UUID
    sent["extensions"]["com.instructure.canvas"]["job_id"] = 123456789012345678901234567890
    sent["object"]["name"] = "Cours d\u2019\u00e9t\u00e9 <b>1</b>"
    text = json.dumps(envelope([sent]))
    assert client.post(text.encode()).status_code == 200
    for asked in (
        "2F0C5BC2-5D70-4E0D-9F6B-2C0C4D8A3E11",
        "urn:uuid:2f0c5bc2-5d70-4e0d-9f6b-2c0c4d8a3e11",
    ):
        response = client.http.get(f"/api/events/{asked}", headers=bearer(reader))
        assert response.status_code == 200, response.text
        found = json.loads(response.text)
        assert found["event"]["raw"] == sent
        assert "123456789012345678901234567890" in response.text
        assert found["event"]["event_id"] == "urn:uuid:2f0c5bc2-5d70-4e0d-9f6b-2c0c4d8a3e11"
        assert found["event"]["actor_external_id"] == "SIS48"
        assert found["receipt"]["sensor"] == "http://oxana.instructure.com/"
        assert found["receipt"]["body_bytes"] == len(text.encode())
        assert found["receipt"]["stored_count"] == 1
    assert_problem(client.http.get("/api/events/urn:uuid:nope", headers=bearer(reader)), 404)


def test_pages_over_http_return_every_event_once_while_events_keep_arriving(
    client: Client, store: Store
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    for body in generated_envelopes(300, seed=3):
        assert client.post(body).status_code == 200
    stop = threading.Event()
    first_sent = threading.Event()
    sent = [0]

    def keep_sending() -> None:
        with httpx.Client(base_url=client.server.base_url, timeout=60) as http:
            for body in generated_envelopes(2000, seed=4):
                if stop.is_set():
                    return
                response = http.post(
                    "/caliper",
                    content=body,
                    headers={**bearer(client.key), "Content-Type": "application/json"},
                )
                assert response.status_code == 200
                sent[0] += 1
                first_sent.set()

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        seen: list[int] = []
        params: dict[str, str] = {"limit": "25", "order": "asc"}
        while True:
            page = client.http.get("/api/events", params=params, headers=bearer(reader)).json()
            seen.extend(event["seq"] for event in page["events"])
            if len(seen) == 25:
                # Every later page is read after at least one new event was stored.
                assert first_sent.wait(timeout=60), "the sender never stored an event"
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
    finally:
        stop.set()
        sender.join()
    assert sent[0] > 0, "no event arrived while paging"
    assert len(seen) == len(set(seen))
    assert set(range(1, 301)) <= set(seen)


def openapi_path(route_path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route_path)


def test_openapi_describes_every_route(client: Client) -> None:
    response = client.http.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    for route in API_ROUTES:
        path = openapi_path(route.path)
        assert path in document["paths"], path
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in document["paths"][path], (method, path)
    parameters = {p["name"] for p in document["paths"]["/api/events"]["get"]["parameters"]}
    assert {"actorId", "groupId", "externalId", "since", "cursor", "limit"} <= parameters


def test_cli_events_gives_the_pages_the_api_gives(
    client: Client, store: Store, database_url: str
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    for body in generated_envelopes(60, seed=9):
        assert client.post(body).status_code == 200
    group = "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/s1/courses/k1"
    api = client.http.get(
        "/api/events", params={"groupId": group, "limit": "7"}, headers=bearer(reader)
    ).json()
    shown = run_cli(
        "events", "--group-id", group, "--limit", "7", "--json", "--database", database_url
    )
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout) == api
    table = run_cli("events", "--group-id", group, "--limit", "7", "--database", database_url)
    assert len(table.stdout.splitlines()) == 7
    assert "more: --cursor" in table.stderr
    refused = run_cli("events", "--since", "soon", "--database", database_url)
    assert refused.returncode != 0
    assert "since must be an ISO 8601 time" in refused.stderr


def reissued(cursor: str, index: int, value: object) -> str:
    """A cursor the store issued, with one part of its JSON replaced, re-encoded the same way."""
    payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload[index] = value
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def assert_no_traceback(server: ServerProcess) -> None:
    log = server.log()
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log


@pytest.mark.parametrize(
    "key_id",
    [str(2**64), str(2**63), str(2**31), "-1"],
)
def test_key_id_beyond_its_column_answers_400_naming_it(
    client: Client, store: Store, key_id: str
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    assert client.post(envelope([canvas_event()])).status_code == 200
    for path in ("/api/events", "/api/export", "/api/quarantine"):
        for params in ({"keyId": key_id}, {"keyId": ["1", key_id]}):
            answer = client.http.get(path, params=params, headers=bearer(reader))
            assert_problem(answer, 400, "keyId")
    assert_no_traceback(client.server)


def test_malformed_cursors_answer_400_naming_cursor_and_never_500(
    client: Client, store: Store
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    assert client.post(envelope([canvas_event() for _ in range(3)])).status_code == 200
    issued = client.http.get("/api/events", params={"limit": "1"}, headers=bearer(reader)).json()
    cursor = issued["next_cursor"]
    assert cursor is not None
    malformed = [
        "!!!!",
        "a",
        "A" * 5_000,
        base64.urlsafe_b64encode(b"[1, not json").decode(),
        base64.urlsafe_b64encode(b'{"seq": 1}').decode(),
        reissued(cursor, 0, True),
        reissued(cursor, 1, "yesterday"),
        reissued(cursor, 1, "2024-02-30T00:00:00.000000Z"),
        reissued(cursor, 1, 1_700_000_000),
        reissued(cursor, 2, 2**63),
        reissued(cursor, 2, 2**64 - 1),
        reissued(cursor, 2, -1),
        reissued(cursor, 2, "1"),
        reissued(cursor, 2, 1.5),
        reissued(cursor, 3, None),
        reissued(cursor, 4, 7),
        cursor[:-4],
        cursor + "AAAA",
    ]
    for bad in malformed:
        answer = client.http.get(
            "/api/events", params={"limit": "1", "cursor": bad}, headers=bearer(reader)
        )
        assert_problem(answer, 400, "cursor")
    assert_no_traceback(client.server)


def test_a_nul_character_in_a_filter_answers_400_naming_it(client: Client, store: Store) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    for path, field in (
        ("/api/events?actorId=a%00b", "actorId"),
        ("/api/export?eventId=%00", "eventId"),
        ("/api/quarantine?reason=id%00", "reason"),
        ("/api/events/urn:uuid:a%00b", "event_id"),
    ):
        assert_problem(client.http.get(path, headers=bearer(reader)), 400, field)
    assert_no_traceback(client.server)


def test_openapi_declares_the_400_of_every_route_that_takes_parameters(client: Client) -> None:
    document = client.http.get("/api/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation.get("parameters"):
                assert "400" in operation["responses"], (method, path)
    item_id = document["paths"]["/api/quarantine/{item_id}"]["get"]["parameters"][0]
    assert item_id["schema"]["maximum"] == 2**63 - 1
    for path in ("/api/events", "/api/export", "/api/quarantine"):
        assert "503" in document["paths"][path]["get"]["responses"], path
