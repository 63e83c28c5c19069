"""GET /metrics: after a known load on two workers, the counters equal what was sent."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope

NOW = "2024-01-01T00:00:00.000000Z"
ENVELOPES = 40
EVENTS_PER_ENVELOPE = 5
RESENT_ENVELOPES = 10


def scrape(base_url: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(base_url + "/metrics", headers=headers, timeout=30)


def samples(page: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of one metric, by its sorted labels."""
    found = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_two_workers_count_every_event_by_key_and_verdict(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    running = start_server(tmp_path, database_url, "--workers", "2")
    ingest, ingest_key = store.keys.create(label="Canvas", now=NOW)
    reader, _ = store.keys.create(label="ops", now=NOW, scopes=("read",))
    sent = [
        [canvas_event(user=n % 30) for _ in range(EVENTS_PER_ENVELOPE)] for n in range(ENVELOPES)
    ]
    no_actor = canvas_event()
    del no_actor["actor"]
    headers = {"Authorization": f"Bearer {ingest}", "Content-Type": "application/json"}
    # New connections each time, so both workers take requests.
    for events in [*sent, *sent[:RESENT_ENVELOPES]]:
        answer = httpx.post(
            running.base_url + "/caliper", content=orjson.dumps(envelope(events)), headers=headers
        )
        assert answer.status_code == 200, answer.text
    answer = httpx.post(
        running.base_url + "/caliper", content=orjson.dumps(envelope([no_actor])), headers=headers
    )
    assert answer.status_code == 200

    assert scrape(running.base_url, None).status_code == 401
    assert scrape(running.base_url, ingest).status_code == 403
    page = scrape(running.base_url, reader)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    counted = samples(page.text, "caliper_store_events_total")
    key = str(ingest_key.id)
    assert counted == {
        (("key", key), ("reason", ""), ("verdict", "stored")): ENVELOPES * EVENTS_PER_ENVELOPE,
        (("key", key), ("reason", ""), ("verdict", "duplicate")): RESENT_ENVELOPES
        * EVENTS_PER_ENVELOPE,
        (("key", key), ("reason", "missing_actor"), ("verdict", "quarantined")): 1,
    }
    envelopes = samples(page.text, "caliper_store_envelopes_total")
    assert envelopes == {(("key", key),): ENVELOPES + RESENT_ENVELOPES + 1}
    requests = samples(page.text, "caliper_store_http_request_duration_seconds_count")
    ingest_requests = (("method", "POST"), ("route", "/caliper"), ("status", "200"))
    assert requests[ingest_requests] == ENVELOPES + RESENT_ENVELOPES + 1
    batches = samples(page.text, "caliper_store_commit_batch_events_sum")
    assert batches[()] == (ENVELOPES + RESENT_ENVELOPES) * EVENTS_PER_ENVELOPE + 1
    held = samples(page.text, "caliper_store_quarantine_held")
    assert held == {(("reason", "missing_actor"),): 1}
    assert (("key", key),) in samples(page.text, "caliper_store_key_last_used_timestamp_seconds")
    # No label names a person: no actor id, no address, no login.
    assert "urn:instructure:canvas:user" not in page.text
    assert "93.184.216.34" not in page.text
    assert running.stop(), running.log()


def test_metrics_port_serves_the_same_page_on_localhost_without_a_key(
    tmp_path: Path, sqlite_url: str, sqlite_store: Store
) -> None:
    from tests.fixtures.server import free_port

    port = free_port()
    running = start_server(tmp_path, sqlite_url, "--metrics-port", str(port))
    ingest, ingest_key = sqlite_store.keys.create(label="Canvas", now=NOW)
    answer = httpx.post(
        running.base_url + "/caliper",
        content=orjson.dumps(envelope([canvas_event()])),
        headers={"Authorization": f"Bearer {ingest}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert page.status_code == 200
    stored = (("key", str(ingest_key.id)), ("reason", ""), ("verdict", "stored"))
    assert samples(page.text, "caliper_store_events_total")[stored] == 1
    assert running.stop(), running.log()


def test_a_route_template_names_requests_never_their_paths(
    tmp_path: Path, sqlite_url: str, sqlite_store: Store
) -> None:
    running = start_server(tmp_path, sqlite_url)
    reader, _ = sqlite_store.keys.create(label="ops", now=NOW, scopes=("read",))
    headers = {"Authorization": f"Bearer {reader}"}
    person = "urn:instructure:canvas:user:21070000000000042"
    httpx.get(f"{running.base_url}/api/persons/{person}/export", headers=headers)
    httpx.get(f"{running.base_url}/no/such/{person}", headers=headers)
    page = scrape(running.base_url, reader).text
    requests = samples(page, "caliper_store_http_request_duration_seconds_count")
    routes = {dict(labels)["route"] for labels in requests}
    assert "/api/persons/{person_id:path}/export" in routes
    assert "unmatched" in routes
    assert person not in page
    assert running.stop(), running.log()
