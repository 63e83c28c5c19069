"""Forwarding to a second caliper-store over real HTTP: once each, through outages and crashes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from caliper_store.config import Settings
from caliper_store.forward import Answer, HttpSink, RelayOptions, forward_once
from caliper_store.sensor import Sensor, SensorOptions, new_event_id
from caliper_store.storage import EventRecord, ForwardBook, Store, open_store
from caliper_store.storage.schema import EVENT_COLUMNS
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event
from tests.fixtures.polling import wait_for, wait_until_readable
from tests.fixtures.server import ServerProcess, run_cli

FAST = ("--forward-poll-interval-ms", "50", "--forward-lease-s", "3")


@dataclass
class Pair:
    """A source store (the backend under test) forwarding to a destination store (SQLite)."""

    source: ServerProcess
    source_store: Store
    source_key: str
    destination: ServerProcess
    destination_store: Store
    destination_key: str

    def send(self, count: int, **extra: Any) -> list[str]:
        events = [canvas_event(event_id=new_event_id()) | extra for _ in range(count)]
        with Sensor(
            self.source.base_url + "/caliper",
            self.source_key,
            SensorOptions(sensor_id="urn:test:lms", batch_events=100, concurrency=2),
        ) as sensor:
            sensor.send(*events)
        return [str(event["id"]) for event in events]

    def forward(self, *args: str) -> dict[str, Any]:
        result = run_cli(*args, "--database", self.source_store_url)
        assert result.returncode == 0, result.stderr + result.stdout
        return {"stdout": result.stdout}

    @property
    def source_store_url(self) -> str:
        return self.source.database_url

    def arrived(self) -> set[str]:
        return set(self.destination_store.iter_event_ids())


def open_url(url: str) -> Store:
    store = open_store(Settings(database_url=url))
    store.require_current_schema(create_if_empty=True)
    return store


@pytest.fixture
def pair(tmp_path: Path, database_url: str, store: Store) -> Iterator[Pair]:
    source_key, _ = store.keys.create(label="lms", now="2024-01-01T00:00:00.000000Z")
    destination_url = f"sqlite:///{tmp_path / 'destination.db'}"
    destination_store = open_url(destination_url)
    destination_key, _ = destination_store.keys.create(
        label="from the source", now="2024-01-01T00:00:00.000000Z"
    )
    (tmp_path / "d").mkdir()
    destination = start_server(tmp_path / "d", destination_url, "--max-body-bytes", "200000")
    source = start_server(tmp_path, database_url, *FAST)
    yield Pair(source, store, source_key, destination, destination_store, destination_key)
    for server in (source, destination):
        if server.is_running():
            assert server.stop(), server.log()
    destination_store.close()


def raws(store: Store) -> dict[str, str | None]:
    """Every stored event's raw JSON, by id."""
    return {
        record.event_id: record.raw
        for batch in store.events.batches([], batch_events=1000, with_raw=True)
        for record in batch
    }


def add_mirror(pair: Pair, *flags: str) -> None:
    url = pair.destination.base_url + "/caliper"
    pair.forward("forward", "add", "mirror", "--url", url, "--key", pair.destination_key, *flags)


def test_every_event_arrives_once_through_a_destination_outage_and_a_source_crash(
    pair: Pair,
) -> None:
    add_mirror(pair, "--batch-size", "50")
    sent = pair.send(400)
    wait_for(lambda: pair.arrived() == set(sent), "the first events at the destination")

    pair.destination.stop()
    sent += pair.send(300)
    wait_for(
        lambda: pair.source_store.forwarding.get("mirror").last_error is not None,
        "the source to notice the destination is down",
    )
    pair.destination.restart()
    wait_for(lambda: pair.arrived() == set(sent), "the destination to catch up")

    pair.forward("forward", "pause", "mirror")
    sent += pair.send(3000)
    pair.forward("forward", "resume", "mirror")
    wait_for(lambda: len(pair.arrived()) >= 900, "forwarding of the last batch to start")
    pair.source.kill()
    assert len(pair.arrived()) < len(sent), "everything arrived before the kill: nothing proved"
    pair.source.restart()
    wait_for(
        lambda: len(pair.arrived()) == len(sent), "the restarted source to finish", within_s=120
    )
    assert pair.arrived() == set(sent)
    assert pair.destination_store.stats()["events"] == len(sent)  # nothing stored twice
    assert raws(pair.destination_store) == raws(pair.source_store)  # forwarded = stored
    status = orjson.loads(pair.forward("forward", "status", "mirror", "--json")["stdout"])
    assert status[0]["lagEvents"] == 0
    assert status[0]["delivered"] >= len(sent)


def test_a_poison_event_goes_to_dead_letters_and_everything_else_arrives(pair: Pair) -> None:
    add_mirror(pair, "--batch-size", "40")
    before = pair.send(55)
    poison = pair.send(1, extensions={"note": "x" * 300_000})  # over the destination's limit
    after = pair.send(55)
    wait_for(lambda: pair.arrived() == set(before + after), "all but the poison event")
    wait_for(lambda: bool(pair.source_store.forwarding.dead_letters("mirror")), "the dead letter")
    letters = orjson.loads(pair.forward("forward", "dead-letters", "mirror", "--json")["stdout"])
    assert [(letter["eventId"], letter["status"]) for letter in letters] == [(poison[0], 413)]
    assert "the limit is 200000" in letters[0]["answer"]

    pair.destination.stop()
    pair.destination.flags = []  # the destination's limit raised: the event now fits
    pair.destination.restart()
    assert (
        "1 delivered, 0 refused again, 0 gone"
        in pair.forward("forward", "replay", "mirror")["stdout"]
    )
    assert pair.arrived() == set(before + poison + after)
    assert pair.source_store.forwarding.dead_letters("mirror") == []


def test_many_batches_in_flight_deliver_each_event_once_and_move_the_cursor_to_the_end(
    pair: Pair,
) -> None:
    pair.forward(
        "forward",
        "add",
        "wide",
        "--url",
        pair.destination.base_url + "/caliper",
        "--key",
        pair.destination_key,
        "--batch-size",
        "20",
        "--from-start",
    )
    pair.forward("forward", "pause", "wide")  # delivered here, with a window of 8
    sent = pair.send(500)
    sink = HttpSink(pair.destination.base_url + "/caliper", pair.destination_key, timeout_s=30)
    book = pair.source_store.forwarding
    wait_until_readable(book, book.get("wide").cursor, 500)
    read = forward_once(book, book.get("wide"), sink, RelayOptions(concurrency=8))
    sink.close()
    assert read == 500
    assert pair.arrived() == set(sent)
    assert book.lag(book.get("wide")).events == 0
    assert book.get("wide").delivered_events == 500


class FirstBatchLast:
    """An HTTP sink whose first batch waits until the poison event behind it is a dead letter,
    so the relay finds the batches behind the oldest already arrived, one with a dead letter.

    The first batch is the one that starts with ``first_event_id``: the relay's threads call
    the sink in no set order, and the poison event's batch must not be the one that waits.
    """

    def __init__(self, sink: HttpSink, book: ForwardBook, name: str, first_event_id: str) -> None:
        self._sink = sink
        self._book = book
        self._name = name
        self._first_event_id = first_event_id

    def deliver(self, records: Sequence[EventRecord]) -> Answer:
        if records and records[0].event_id == self._first_event_id:
            wait_for(lambda: bool(self._book.dead_letters(self._name)), "the dead letter")
        return self._sink.deliver(records)

    def close(self) -> None:
        self._sink.close()


def test_a_poison_event_among_many_batches_in_flight_is_counted_once_as_a_dead_letter(
    pair: Pair,
) -> None:
    url = pair.destination.base_url + "/caliper"
    pair.forward(
        "forward", "add", "wide", "--url", url, "--key", pair.destination_key, "--batch-size", "20"
    )
    pair.forward("forward", "pause", "wide")  # delivered here, with a window of 8
    before = pair.send(130)
    poison = pair.send(1, extensions={"note": "x" * 300_000})  # over the destination's limit
    after = pair.send(150)
    book = pair.source_store.forwarding
    # Or the poison's batch might be out of the window while the oldest waits for it.
    cursor = book.get("wide").cursor
    wait_until_readable(book, cursor, 281)
    # The oldest batch starts with the first event committed (two envelopes commit in any order).
    (first,) = book.events_after(cursor, 1)
    sink = FirstBatchLast(
        HttpSink(url, pair.destination_key, timeout_s=30), book, "wide", first.record.event_id
    )
    read = forward_once(book, book.get("wide"), sink, RelayOptions(concurrency=8))
    sink.close()
    assert read == 281
    assert pair.arrived() == set(before + after)
    assert [letter.event_id for letter in book.dead_letters("wide")] == poison
    assert book.get("wide").delivered_events == 280
    assert book.lag(book.get("wide")).events == 0


def test_a_wrong_key_is_waited_out_not_turned_into_dead_letters(pair: Pair) -> None:
    url = pair.destination.base_url + "/caliper"
    pair.forward("forward", "add", "mirror", "--url", url, "--key", "not their key")
    pair.send(30)
    wait_for(
        lambda: "401" in (pair.source_store.forwarding.get("mirror").last_error or ""),
        "the destination's refusal as the last error",
    )
    assert pair.source_store.forwarding.dead_letters("mirror") == []
    assert pair.source_store.forwarding.lag(pair.source_store.forwarding.get("mirror")).events == 30
    assert pair.arrived() == set()


def test_filters_by_type_and_key_and_pause_holds_the_cursor(pair: Pair) -> None:
    other_key, _ = pair.source_store.keys.create(label="other", now="2024-01-01T00:00:00.000000Z")
    add_mirror(pair, "--types", "NavigationEvent", "--keys", "lms")
    wanted = pair.send(20)
    pair.send(10, type="ViewEvent", action="Viewed")
    with Sensor(
        pair.source.base_url + "/caliper", other_key, SensorOptions(sensor_id="urn:test:other")
    ) as sensor:
        sensor.send(*[canvas_event(event_id=new_event_id()) for _ in range(5)])
    wait_for(
        lambda: (
            pair.source_store.forwarding.lag(pair.source_store.forwarding.get("mirror")).events == 0
        ),
        "the cursor past every event",
    )
    assert pair.arrived() == set(wanted)
    listed = orjson.loads(pair.forward("forward", "list", "--json")["stdout"])
    assert listed[0]["types"] == ["NavigationEvent"]
    assert listed[0]["delivered"] == 20

    pair.forward("forward", "pause", "mirror")
    held = pair.send(7)
    paused = pair.source_store.forwarding.get("mirror")
    assert paused.is_paused
    pair.forward("forward", "resume", "mirror")
    wait_for(lambda: pair.arrived() == set(wanted + held), "delivery after resume")


def test_a_dead_destination_does_not_hold_up_the_others_or_ingest(pair: Pair) -> None:
    pair.forward("forward", "add", "dead", "--url", "http://127.0.0.1:9/caliper", "--key", "k")
    add_mirror(pair)
    sent = pair.send(500)
    wait_for(lambda: pair.arrived() == set(sent), "the live destination's events")
    dead = pair.source_store.forwarding.get("dead")
    assert dead.delivered_events == 0
    assert dead.last_error is not None
    assert pair.source_store.forwarding.lag(dead).events == 500


def test_one_forwarder_per_database_and_another_takes_over_when_it_dies(
    tmp_path: Path, pair: Pair
) -> None:
    (tmp_path / "second").mkdir()
    second = start_server(tmp_path / "second", pair.source.database_url, *FAST)
    add_mirror(pair)
    sent = pair.send(200)
    wait_for(lambda: pair.arrived() == set(sent), "the first events")
    forwarding = [s for s in (pair.source, second) if "forwarding to mirror" in s.log()]
    assert len(forwarding) == 1
    forwarding[0].kill()
    survivor = second if forwarding[0] is pair.source else pair.source
    with Sensor(
        survivor.base_url + "/caliper", pair.source_key, SensorOptions(sensor_id="urn:test:lms")
    ) as sensor:
        more = [canvas_event(event_id=new_event_id()) for _ in range(100)]
        sensor.send(*more)
    sent += [str(event["id"]) for event in more]
    wait_for(lambda: pair.arrived() == set(sent), "the other process to take over")
    assert "forwarding to mirror" in survivor.log()
    if survivor is second:  # the pair's own servers are stopped by the fixture
        assert second.stop(), second.log()


@pytest.mark.postgres
def test_postgres_rows_that_commit_late_under_a_lower_seq_are_not_skipped(
    pair: Pair, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's out-of-order commits; SQLite commits one at a time")
    pair.forward(
        "forward",
        "add",
        "late",
        "--url",
        pair.destination.base_url + "/caliper",
        "--key",
        pair.destination_key,
        "--from-start",
    )
    pair.forward("forward", "pause", "late")  # delivered here, step by step, not by the server
    first = pair.send(1)
    late_id = new_event_id()
    late = canvas_event(event_id=late_id)
    columns = ", ".join(EVENT_COLUMNS)
    copied = ", ".join(
        {"event_id": "%(id)s", "raw": "%(raw)s", "raw_zstd": "NULL", "raw_dictionary": "NULL"}.get(
            name, name
        )
        for name in EVENT_COLUMNS
    )
    with psycopg.connect(database_url) as open_transaction:
        # Takes a seq now, commits after a later event: a seq cursor would skip this row.
        open_transaction.execute(
            f"INSERT INTO events (seq, {columns}) SELECT nextval('events_seq'), {copied} "
            "FROM events WHERE event_id = %(first)s",
            {"id": late_id, "raw": orjson.dumps(late).decode(), "first": first[0]},
        )
        later = pair.send(1)
        destination = pair.source_store.forwarding.get("late")
        wait_until_readable(pair.source_store.forwarding, destination.cursor, 1)
        sink = HttpSink(pair.destination.base_url + "/caliper", pair.destination_key, timeout_s=30)
        forward_once(pair.source_store.forwarding, destination, sink, RelayOptions())
        assert pair.arrived() == set(first)  # the later event waits for the open transaction
        open_transaction.commit()
    wait_until_readable(
        pair.source_store.forwarding, pair.source_store.forwarding.get("late").cursor, 2
    )
    forward_once(
        pair.source_store.forwarding, pair.source_store.forwarding.get("late"), sink, RelayOptions()
    )
    sink.close()
    assert pair.arrived() == {first[0], late_id, later[0]}
