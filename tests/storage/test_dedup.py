"""An event re-sent with its id spelt another way is a duplicate, on every backend."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest
from tests.fixtures.events import ingest
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, validate_body
from caliper_store.query import find_event
from caliper_store.storage import ApiKey, Store, content_hash
from caliper_store.storage.dedup import id_spellings, is_same_content

NOW = "2024-03-01T12:00:00.000000Z"
PLAIN = "3f0c6b3e-5a1d-4c8e-9b7a-0d2e4f6a8b1c"
SPELLINGS = [
    PLAIN,
    PLAIN.upper(),
    f"urn:uuid:{PLAIN}",
    f"URN:UUID:{PLAIN}",
    f"urn:uuid:{PLAIN.upper()}",
]


@pytest.fixture
def key(store: Store) -> ApiKey:
    store.prepare_for_traffic(datetime.fromisoformat(NOW))
    _, api_key = store.keys.create(label="dedup", now=NOW)
    return api_key


@pytest.mark.parametrize("first", SPELLINGS)
def test_an_event_resent_with_its_id_spelt_otherwise_is_a_duplicate(
    store: Store, key: ApiKey, first: str
) -> None:
    event = canvas_event(event_id=first)
    assert ingest(store, key, orjson.dumps(envelope([event])), NOW).count("stored") == 1
    for spelled in SPELLINGS:
        again = ingest(store, key, orjson.dumps(envelope([{**event, "id": spelled}])), NOW)
        assert [item.verdict for item in again.items] == ["duplicate"], spelled
    stored = store.lookup_event_hashes([f"urn:uuid:{PLAIN}"])
    assert list(stored) == [f"urn:uuid:{PLAIN}"]
    assert store.stats()["quarantined"] == 0


def test_the_same_id_with_other_content_is_still_a_conflict_whatever_its_spelling(
    store: Store, key: ApiKey
) -> None:
    event = canvas_event(event_id=PLAIN)
    ingest(store, key, orjson.dumps(envelope([event])), NOW)
    changed = {**event, "id": PLAIN.upper(), "action": "Viewed", "type": "ViewEvent"}
    again = ingest(store, key, orjson.dumps(envelope([changed])), NOW)
    assert [reason.code for reason in again.items[0].reasons] == ["id_conflict"]


def test_the_raw_event_keeps_its_id_as_sent(store: Store, key: ApiKey) -> None:
    ingest(store, key, orjson.dumps(envelope([canvas_event(event_id=PLAIN.upper())])), NOW)
    found = find_event(store, PLAIN)
    assert found is not None
    assert found["event"]["event_id"] == f"urn:uuid:{PLAIN}"
    assert orjson.loads(orjson.dumps(found["event"]["raw"]))["id"] == PLAIN.upper()


def test_the_dry_run_sees_a_respelt_id_as_a_duplicate(store: Store, key: ApiKey) -> None:
    event = canvas_event(event_id=PLAIN)
    ingest(store, key, orjson.dumps(envelope([event])), NOW)
    verdict = validate_body(
        orjson.dumps(envelope([{**event, "id": f"URN:UUID:{PLAIN.upper()}"}])),
        key=key,
        limits=IngestLimits.from_settings(Settings()),
        store=store,
        received_at=NOW,
    )
    assert [item["verdict"] for item in verdict["items"]] == ["duplicate"]


def test_other_ids_have_no_other_spelling() -> None:
    assert id_spellings("https://example.edu/events/1") == ()
    assert len(set(id_spellings(f"urn:uuid:{PLAIN}"))) == 6


def test_an_unreadable_raw_is_other_content() -> None:
    stored = content_hash({"id": PLAIN})
    assert not is_same_content("not json", f"urn:uuid:{PLAIN}", "0" * 64, stored)
    assert is_same_content(
        orjson.dumps({"id": PLAIN.upper()}).decode(), f"urn:uuid:{PLAIN}", "0" * 64, stored
    )
