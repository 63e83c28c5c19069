"""Events spread over many SQLite arrival segments read, filter and deduplicate as one table."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from tests.fixtures.events import LEARN, generated_envelopes, ingest
from tests.fixtures.payloads import V1P1

from caliper_store.config import Settings
from caliper_store.storage import Receipt, Store, open_store
from caliper_store.storage import segments as segment_layout
from caliper_store.storage import sqlite as sqlite_backend
from caliper_store.storage.schema import (
    event_id_collisions,
    event_id_hashes,
    event_segments,
    recent_event_id_hashes,
)
from caliper_store.storage.search import Condition, EventRecord

NOW = "2025-02-01T00:00:00.000000Z"
SEGMENT_EVENTS = 25


def open_segmented(database_url: str) -> Store:
    """A store whose SQLite writer starts a new segment every SEGMENT_EVENTS events."""
    store = open_store(Settings(database_url=database_url, sqlite_segment_events=SEGMENT_EVENTS))
    store.require_current_schema(create_if_empty=True)
    return store


def every_event(store: Store, conditions: list[Condition] | None = None) -> list[EventRecord]:
    """Every matching event, read page by page in time order as the API does."""
    found: list[EventRecord] = []
    after = None
    while True:
        page = store.events.page(
            conditions or [], after=after, is_descending=False, limit=7, with_raw=True
        )
        found.extend(page.records)
        if len(page.records) < 7:
            return found
        after = page.records[-1].position()


def sent_events(bodies: list[bytes]) -> dict[str, dict[str, Any]]:
    return {event["id"]: event for body in bodies for event in orjson.loads(body)["data"]}


def test_events_over_many_segments_read_filter_and_dedupe_as_one(database_url: str) -> None:
    store = open_segmented(database_url)
    _, key = store.keys.create(label="sensor", now=NOW)
    bodies = list(generated_envelopes(230, seed=11))
    for body in bodies:
        ingest(store, key, body, NOW)
    sent = sent_events(bodies)
    if database_url.startswith("sqlite"):
        with store.engine.connect() as connection:
            # A commit goes whole into one segment: 3 envelopes of 10 fill one past 25.
            assert connection.scalar(select(func.count()).select_from(event_segments)) == 8
            # The re-sends below find ids among both the sealed and the recent hashes.
            for table in (event_id_hashes, recent_event_id_hashes):
                assert connection.scalar(select(func.count()).select_from(table)), table.name

    stored = every_event(store)
    assert len(stored) == len(sent) == 230
    assert [(event.event_time, event.seq) for event in stored] == sorted(
        (event.event_time, event.seq) for event in stored
    )
    assert {event.event_id: json.loads(event.raw or "") for event in stored} == sent

    actor = next(iter(sent.values()))["actor"]["id"]
    by_actor = every_event(store, [Condition("actor_id", "in", (actor,))])
    assert {event.event_id for event in by_actor} == {
        event_id for event_id, event in sent.items() if event["actor"]["id"] == actor
    }
    for event_id in random.Random(1).sample(sorted(sent), 20):
        found = store.events.get(event_id)
        assert found is not None
        assert json.loads(found[0].raw or "") == sent[event_id]

    # A re-send of every envelope, whichever segment holds its events, stores nothing again.
    for body in bodies:
        receipt = ingest(store, key, body, NOW)
        assert {item.verdict for item in receipt.items} == {"duplicate"}
    assert store.events.count([]) == 230
    # Changed content under a stored id is a conflict, whichever segment holds the id.
    first = orjson.loads(bodies[0])["data"][0]
    changed = {**first, "action": "Modified"}
    body = orjson.dumps({"sensor": LEARN, "dataVersion": V1P1, "data": [changed]})
    assert ingest(store, key, body, NOW).items[0].verdict == "quarantined"
    store.close()


def one_event(number: int) -> dict[str, Any]:
    rng = random.Random(number)
    return {
        "@context": V1P1,
        "id": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "type": "NavigationEvent",
        "actor": {"id": f"{LEARN}/users/u{number}", "type": "Person"},
        "action": "NavigatedTo",
        "object": {"id": f"{LEARN}/content/c{number}", "type": "WebPage"},
        "eventTime": f"2024-03-01T00:00:{number:02d}.000Z",
    }


def envelope_of(*items: dict[str, Any]) -> bytes:
    return orjson.dumps({"sensor": LEARN, "dataVersion": V1P1, "data": list(items)})


def test_ids_sharing_one_hash_are_told_apart(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ids with one 64-bit hash (one chance in 10^5 at 10^7 events) are distinct events.

    Every id is given the same hash here, so each event after the first is such a collision.
    """
    for module in (sqlite_backend, segment_layout):
        monkeypatch.setattr(module, "event_id_hash", lambda event_id: 42)
    monkeypatch.setattr("caliper_store.storage.search.event_id_hash", lambda event_id: 42)
    store = open_segmented(sqlite_url)
    _, key = store.keys.create(label="sensor", now=NOW)
    sent = [one_event(number) for number in range(60)]
    # One alone, then several in one envelope, then enough to fill more segments.
    batches = [sent[:1], sent[1:4], sent[4:5], sent[5:]]
    for batch in batches:
        receipt = ingest(store, key, envelope_of(*batch), NOW)
        assert {item.verdict for item in receipt.items} == {"stored"}
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(event_id_collisions)) == 59
    for event in sent:
        found = store.events.get(event["id"])
        assert found is not None
        assert json.loads(found[0].raw or "") == event
    for batch in batches:
        receipt = ingest(store, key, envelope_of(*batch), NOW)
        assert {item.verdict for item in receipt.items} == {"duplicate"}
    conflict = ingest(store, key, envelope_of({**sent[30], "action": "NavigatedFrom"}), NOW)
    assert conflict.items[0].verdict == "quarantined"
    assert store.events.count([]) == 60
    store.close()


def test_more_segments_than_one_compound_select_holds(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SQLite's limit on UNION ALL terms the view nests; reads stay whole and in order."""
    monkeypatch.setattr(segment_layout, "MAX_COMPOUND_TERMS", 3)
    store = open_store(Settings(database_url=sqlite_url, sqlite_segment_events=4))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="sensor", now=NOW)
    sent = [one_event(number) for number in range(45)]
    for start in range(0, len(sent), 4):
        receipt = ingest(store, key, envelope_of(*sent[start : start + 4]), NOW)
        assert isinstance(receipt, Receipt)
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(event_segments)) == 12
    stored = every_event(store)
    assert [event.event_id for event in stored] == [event["id"] for event in sent]
    assert store.events.get(sent[-1]["id"]) is not None
    store.close()


def test_stats_count_the_events_of_every_segment(sqlite_url: str) -> None:
    store = open_segmented(sqlite_url)
    _, key = store.keys.create(label="sensor", now=NOW)
    sent = [one_event(number) for number in range(55)]
    for start in range(0, len(sent), 10):
        ingest(store, key, envelope_of(*sent[start : start + 10]), NOW)
    stats = store.stats()
    assert [row["events"] for row in stats["by_key"] if row["key_id"] == key.id] == [55]
    assert stats["events"] == 55
    store.close()
