"""The Sensor API wire contract: every failure status with its RFC 7807 body, and success shapes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import Client, start_server
from tests.fixtures.databases import hold_write_lock
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.server import ServerProcess

from caliper_store.storage import Store

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:caliper-store:problem:")
    if field is not None:
        assert body["field"] == field
    return body


def event_count(store: Store) -> int:
    return int(store.stats()["events"])


def test_bearer_and_bare_key_both_work(client: Client, store: Store) -> None:
    assert client.post(envelope([canvas_event()])).status_code == 200
    bare = client.post(envelope([canvas_event()]), headers={"Authorization": client.key})
    assert bare.status_code == 200
    assert bare.content == b""
    assert event_count(store) == 2


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer not-a-key", "Basic dXNlcjpwYXNz"]
)
def test_missing_or_unknown_key_is_401(
    client: Client, store: Store, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = client.http.post(
        "/caliper", content=orjson.dumps(envelope([canvas_event()])), headers=headers
    )
    assert_problem(response, 401, "Authorization")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert event_count(store) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(client: Client, content_type: str | None) -> None:
    headers = {"Authorization": f"Bearer {client.key}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.http.post(
        "/caliper", content=orjson.dumps(envelope([canvas_event()])), headers=headers
    )
    assert_problem(response, 415, "Content-Type")


def test_json_with_charset_and_ld_json_are_accepted(client: Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/ld+json"):
        response = client.post(envelope([canvas_event()]), headers={"Content-Type": content_type})
        assert response.status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"a": NaN}', b"[1, 2"])
def test_body_that_is_not_json_is_400(client: Client, body: bytes) -> None:
    assert_problem(client.post(body), 400, "body")


@pytest.mark.parametrize("body", [b'"just a string"', b"42", b"null"])
def test_json_that_is_no_envelope_is_400(client: Client, body: bytes) -> None:
    assert_problem(client.post(body), 400, "body")


def test_unsupported_data_version_is_422(client: Client, store: Store) -> None:
    body = envelope([canvas_event()], data_version="http://purl.imsglobal.org/ctx/caliper/v2p0")
    assert_problem(client.post(body), 422, "dataVersion")
    assert event_count(store) == 0


def test_get_endpoint_answers_configuration(client: Client) -> None:
    response = client.http.get("/caliper", headers={"Authorization": f"Bearer {client.key}"})
    assert response.status_code == 200
    config = response.json()
    assert "http://purl.imsglobal.org/ctx/caliper/v1p2" in config["caliperSupportedVersions"]
    assert config["caliperMaximumPayloadSize"] == 16 * 1024
    assert_problem(client.http.get("/caliper"), 401)


def test_message_alias_ingests(client: Client, store: Store) -> None:
    assert client.post(envelope([canvas_event()]), path="/caliper/message").status_code == 200
    assert event_count(store) == 1


def test_receipt_on_request(client: Client) -> None:
    event = canvas_event()
    broken = canvas_event()
    del broken["actor"]
    for ask in ({"params": {"receipt": "1"}}, {"headers": {"Prefer": "return=representation"}}):
        event = canvas_event()
        response = client.post(envelope([event, event, broken]), **ask)  # type: ignore[arg-type]
        receipt = response.json()
        assert (receipt["stored"], receipt["duplicates"], receipt["quarantined"]) == (1, 1, 1)
        assert [item["verdict"] for item in receipt["items"]] == [
            "stored",
            "duplicate",
            "quarantined",
        ]
        assert receipt["items"][0]["id"] == event["id"]
        assert receipt["items"][2]["reasons"][0]["code"] == "missing_actor"
        assert receipt["items"][2]["reasons"][0]["field"] == "data[2].actor"


def test_unknown_route_and_method_get_problem_bodies(client: Client) -> None:
    assert_problem(client.http.get("/nowhere"), 404)
    refused = client.http.delete("/caliper")
    assert_problem(refused, 405)
    assert set(refused.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert client.http.request("TRACE", "/api/export").headers["allow"] in (
        "GET, HEAD",
        "HEAD, GET",
    )


@pytest.fixture
def small_server(
    tmp_path: Path, database_url: str, store: Store
) -> Iterator[tuple[ServerProcess, str]]:
    running = start_server(
        tmp_path, database_url, "--max-body-bytes", "4000", "--max-items-per-envelope", "3"
    )
    key, _ = store.keys.create(label="small", now="2024-01-01T00:00:00.000000Z")
    yield running, key
    assert running.stop(), running.log()


def test_limits_answer_413_and_store_nothing(
    small_server: tuple[ServerProcess, str], store: Store
) -> None:
    running, key = small_server
    with httpx.Client(base_url=running.base_url) as http:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        big = envelope([canvas_event() for _ in range(3)])
        big["data"][0]["object"]["name"] = "x" * 5000
        assert_problem(
            http.post("/caliper", content=orjson.dumps(big), headers=headers), 413, "body"
        )
        # Chunked upload without Content-Length is counted as it streams.
        chunks = iter([orjson.dumps(big)[:3000], orjson.dumps(big)[3000:]])
        assert_problem(http.post("/caliper", content=chunks, headers=headers), 413, "body")
        many = envelope([canvas_event() for _ in range(4)])
        assert_problem(
            http.post("/caliper", content=orjson.dumps(many), headers=headers), 413, "data"
        )
        assert (
            http.post(
                "/caliper", content=orjson.dumps(envelope([canvas_event()])), headers=headers
            ).status_code
            == 200
        )
    assert event_count(store) == 1


def wait_for_queue(base_url: str, events: int) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(base_url + "/healthz").json()["queuedEvents"] < events:
        assert time.monotonic() < deadline, "requests never reached the writer queue"
        time.sleep(0.01)  # polling for a state, not timing


def test_full_writer_queue_answers_503_with_retry_after(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    running = start_server(
        tmp_path,
        database_url,
        "--writer-queue-events",
        "2",
        "--writer-batch-events",
        "1",
        "--max-items-per-envelope",
        "1",
        "--retry-after-s",
        "7",
    )
    key, _ = store.keys.create(label="busy", now="2024-01-01T00:00:00.000000Z")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    answers: list[int] = []
    waiting = [
        threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    running.base_url + "/caliper",
                    content=orjson.dumps(envelope([canvas_event()])),
                    headers=headers,
                    timeout=60,
                ).status_code
            )
        )
        for _ in range(2)
    ]
    # Another connection holds the write lock, so the writer cannot commit.
    with hold_write_lock(database_url):
        for thread in waiting:
            thread.start()
        wait_for_queue(running.base_url, 2)
        refused = httpx.post(
            running.base_url + "/caliper",
            content=orjson.dumps(envelope([canvas_event()])),
            headers=headers,
        )
        body = assert_problem(refused, 503)
        assert body["type"] == "urn:caliper-store:problem:overloaded"
        assert refused.headers["retry-after"] == "7"
    for thread in waiting:
        thread.join()
    assert answers == [200, 200]
    assert event_count(store) == 2
    assert running.stop(), running.log()


def test_database_that_cannot_write_answers_503_then_recovers(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    running = start_server(tmp_path, database_url, "--write-lock-timeout-ms", "200")
    key, _ = store.keys.create(label="locked", now="2024-01-01T00:00:00.000000Z")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = orjson.dumps(envelope([canvas_event()]))
    with hold_write_lock(database_url):
        refused = httpx.post(running.base_url + "/caliper", content=body, headers=headers)
        problem = assert_problem(refused, 503)
        assert problem["type"] == "urn:caliper-store:problem:storage-unavailable"
        assert refused.headers["retry-after"] == "1"
        if database_url.startswith("sqlite"):
            # SQLite's write lock is the whole database's: it cannot take writes, so not ready.
            assert_problem(httpx.get(running.base_url + "/readyz"), 503)
    assert event_count(store) == 0
    assert (
        httpx.post(running.base_url + "/caliper", content=body, headers=headers).status_code == 200
    )
    assert httpx.get(running.base_url + "/readyz").json()["ready"] is True
    assert event_count(store) == 1
    assert running.stop(), running.log()


def test_strict_key_rejects_whole_envelope(client: Client, store: Store) -> None:
    key, _ = store.keys.create(
        label="sensor dev", now="2024-01-01T00:00:00.000000Z", is_strict=True
    )
    headers = {"Authorization": f"Bearer {key}"}
    broken = canvas_event()
    broken["eventTime"] = "soon"
    body = assert_problem(
        client.post(envelope([canvas_event(), broken]), headers=headers), 400, "data"
    )
    assert body["errors"] == [
        {
            "code": "unparseable_event_time",
            "field": "data[1].eventTime",
            "message": "eventTime must be an ISO 8601 date-time",
        }
    ]
    assert_problem(client.post(canvas_event(), headers=headers), 400, "body")
    stored = canvas_event()
    assert client.post(envelope([stored]), headers=headers).status_code == 200
    changed = dict(stored, action="Viewed")
    conflict = assert_problem(
        client.post(envelope([changed, canvas_event()]), headers=headers), 409, "data"
    )
    assert conflict["errors"][0]["code"] == "id_conflict"  # type: ignore[index]
    assert event_count(store) == 1


def test_validate_endpoint_reports_without_storing(client: Client, store: Store) -> None:
    stored = canvas_event()
    client.post(envelope([stored]))
    broken = canvas_event()
    broken["object"] = {"type": "Entity"}
    changed = dict(stored, action="Viewed")
    response = client.post(
        envelope([canvas_event(), stored, changed, broken]), path="/caliper/validate"
    )
    verdict = response.json()
    assert verdict["dryRun"] is True
    assert verdict["valid"] is False
    assert [item["verdict"] for item in verdict["items"]] == [
        "stored",
        "duplicate",
        "quarantined",
        "quarantined",
    ]
    assert verdict["items"][2]["reasons"][0]["code"] == "id_conflict"
    assert verdict["items"][3]["reasons"][0]["code"] == "invalid_object"
    assert event_count(store) == 1
    assert store.stats()["quarantined"] == 0
