"""Structured logs: JSON lines with a request id, and nothing that identifies a key or a person."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson

from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope

NOW = "2024-01-01T00:00:00.000000Z"


def test_an_ingest_run_logs_json_lines_without_keys_addresses_or_actor_ids(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    # Debug level: the most a log can hold.
    running = start_server(tmp_path, database_url, "--log-level", "debug")
    key, _ = store.keys.create(label="Canvas", now=NOW)
    events = [canvas_event(user=n) for n in range(50)]
    no_actor = canvas_event(user=999)
    no_actor["actor"] = "not an object"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=running.base_url, timeout=30) as http:
        for start in range(0, len(events), 10):
            body = orjson.dumps(envelope(events[start : start + 10]))
            assert http.post("/caliper", content=body, headers=headers).status_code == 200
        assert (
            http.post("/caliper", content=orjson.dumps(envelope([no_actor])), headers=headers)
        ).status_code == 200
        assert http.post("/caliper", content=b"{", headers=headers).status_code == 400
        wrong = {**headers, "Authorization": "Bearer " + key[::-1]}
        assert http.post("/caliper", content=b"{}", headers=wrong).status_code == 401
        person = str(events[0]["actor"]["id"])
        http.get(f"/api/persons/{person}/export", headers={"Authorization": f"Bearer {key}"})
        answered = http.get("/healthz", headers={"X-Request-Id": "0123456789abcdef"})
        assert answered.headers["x-request-id"] == "0123456789abcdef"
        made_up = http.get("/healthz", headers={"X-Request-Id": "93.184.216.34"})
        assert made_up.headers["x-request-id"] != "93.184.216.34"
    assert running.stop(), running.log()

    log = running.log()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    assert all({"time", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
    assert key not in log
    assert key[:8] not in log  # not even the prefix that names it in `keys list`
    assert "93.184.216.34" not in log
    assert "urn:instructure:canvas:user" not in log
    assert "SIS" not in log


def test_every_response_carries_its_own_request_id(tmp_path: Path, sqlite_url: str) -> None:
    running = start_server(tmp_path, sqlite_url)
    with httpx.Client(base_url=running.base_url) as http:
        seen = {http.get("/healthz").headers["x-request-id"] for _ in range(20)}
        refused = http.post("/caliper", content=b"{}")
    assert len(seen) == 20
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] not in seen
    assert running.stop(), running.log()
