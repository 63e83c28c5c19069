"""The group commit in a child process: same outcomes as in the server, and it survives a crash."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.config import Settings
from caliper_store.errors import EventConflict, StorageUnavailable, Unauthorized
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.storage import ApiKey, Receipt, Store, WriteRequest
from caliper_store.storage.writer_process import CommitFailed, WriterProcess

NOW = "2024-03-01T12:00:00.000000Z"


def request_for(key: ApiKey, events: list[dict[str, object]]) -> WriteRequest:
    body = orjson.dumps(envelope(events))
    limits = IngestLimits.from_settings(Settings())
    return prepare_request(body, key=key, limits=limits, received_at=NOW).request


@pytest.fixture
def key(store: Store) -> ApiKey:
    _, api_key = store.keys.create(label="writer process", now=NOW)
    return api_key


@pytest.fixture
def writer(store: Store, database_url: str) -> Iterator[WriterProcess]:
    store.prepare_for_traffic(datetime.fromisoformat(NOW))  # PostgreSQL: this month's partition
    process = WriterProcess(Settings(database_url=database_url))
    yield process
    process.close()


def test_a_request_and_its_items_come_back_equal_from_a_pickle(key: ApiKey) -> None:
    request = request_for(key, [canvas_event(), {"id": "urn:x", "type": "Nonsense"}])
    copy = pickle.loads(pickle.dumps(request))
    assert copy == request
    assert len(copy.items) == 2


def test_errors_keep_their_fields_through_a_pickle() -> None:
    conflict = pickle.loads(
        pickle.dumps(EventConflict("strict", errors=[{"code": "id_conflict", "field": "data[0]"}]))
    )
    assert isinstance(conflict, EventConflict)
    assert (conflict.detail, conflict.field) == ("strict", "data")
    assert conflict.errors == [{"code": "id_conflict", "field": "data[0]"}]
    busy = pickle.loads(pickle.dumps(StorageUnavailable("down", retry_after_s=7)))
    assert (busy.detail, busy.retry_after_s, str(busy)) == ("down", 7, "down")


def test_the_child_stores_events_once_and_counts_the_duplicates(
    writer: WriterProcess, store: Store, key: ApiKey
) -> None:
    events = [canvas_event(user=n) for n in range(3)]
    first, again = writer.commit(
        [writer.encode(request_for(key, events)), writer.encode(request_for(key, events[:2]))]
    )
    assert isinstance(first, Receipt)
    assert isinstance(again, Receipt)
    assert (first.count("stored"), again.count("duplicate")) == (3, 2)
    assert sorted(store.iter_event_ids()) == sorted(str(event["id"]) for event in events)


def test_a_key_deactivated_before_the_commit_gets_unauthorized_from_the_child(
    writer: WriterProcess, store: Store, key: ApiKey
) -> None:
    store.keys.set_status(key.id, "inactive", now=NOW)
    (outcome,) = writer.commit([writer.encode(request_for(key, [canvas_event()]))])
    assert isinstance(outcome, Unauthorized)
    assert list(store.iter_event_ids()) == []


def test_a_killed_child_fails_the_next_batch_and_a_new_one_takes_over(
    writer: WriterProcess, store: Store, key: ApiKey
) -> None:
    writer.commit([writer.encode(request_for(key, [canvas_event(user=1)]))])
    pid = writer.pid
    assert pid is not None
    # A child blocked reading the pipe dies before it could read another batch.
    os.kill(pid, signal.SIGKILL)

    lost = request_for(key, [canvas_event(user=2)])
    with pytest.raises(CommitFailed):
        writer.commit([writer.encode(lost)])
    (receipt,) = writer.commit([writer.encode(request_for(key, [canvas_event(user=3)]))])
    assert isinstance(receipt, Receipt)
    assert receipt.count("stored") == 1
    assert writer.pid not in (None, pid)
    assert len(list(store.iter_event_ids())) == 2
