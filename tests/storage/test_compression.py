"""Raw events compressed with trained, retrained dictionaries read back exactly as they were sent."""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.conftest import start_server
from tests.fixtures.events import generated_envelopes
from tests.fixtures.payloads import canvas_event, corpus_dir, corpus_files, envelope

from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.storage import ApiKey, EventRow, Receipt, Store, commit_batch, open_store
from caliper_store.storage.schema import events, raw_dictionaries

NOW = "2025-02-01T00:00:00.000000Z"
LIMITS = IngestLimits.from_settings(Settings())


def open_small_window(database_url: str) -> Store:
    """A store whose writer trains a dictionary every 40 events at most."""
    store = open_store(Settings(database_url=database_url, raw_dictionary_train_events=40))
    store.require_current_schema(create_if_empty=True)
    return store


def send(store: Store, key: ApiKey, body: bytes, sent: dict[str, str]) -> None:
    """Ingest one body as the server does, remembering the raw JSON of each stored event."""
    prepared = prepare_request(body, key=key, limits=LIMITS, received_at=NOW)
    outcome = commit_batch(store, [prepared.request])[0]
    assert isinstance(outcome, Receipt), outcome
    stored = {item.id for item in outcome.items if item.verdict == "stored"}
    for item in prepared.request.items:
        if isinstance(item, EventRow) and item.event_id in stored:
            sent[item.event_id] = item.raw
    # The dictionary is trained on a thread; wait for it so each test sees the same versions.
    store.raw_codec.join_training(timeout_s=60)


def other_shape(number: int) -> bytes:
    """Events unlike the corpus (long random extensions): the trained ratio drifts on them."""
    rng = random.Random(number)
    event = canvas_event(event_id=f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}")
    event["extensions"] = {
        "noise": "".join(rng.choice("\u00e9\u00fc\u4e2d\u6587 0123456789") for _ in range(600))
    }
    return orjson.dumps(envelope([event]))


def test_rows_of_every_dictionary_version_read_back_exactly(
    database_url: str, tmp_path: Path
) -> None:
    store = open_small_window(database_url)
    _, key = store.keys.create(label="sensor", now=NOW)
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    sent: dict[str, str] = {}
    corpus = list(corpus_files(corpus_dir())) if corpus_dir().is_dir() else []
    for path in corpus:
        send(store, key, path.read_bytes(), sent)
    for body in generated_envelopes(300, seed=3):
        send(store, key, body, sent)
    for number in range(300):
        send(store, key, other_shape(number), sent)
    with store.engine.connect() as connection:
        versions: Counter[int | None] = Counter(
            dict(
                connection.execute(
                    select(events.c.raw_dictionary, func.count()).group_by(events.c.raw_dictionary)
                ).all()
            )
        )
        trained = connection.scalar(select(func.count()).select_from(raw_dictionaries))
    # Rows without a dictionary (before the first was trained), with the first, and with one
    # trained after the ratio drifted: all in the same table.
    assert versions[None] == 0
    assert versions[0] > 0
    assert trained is not None
    assert trained >= 2
    assert len([version for version in versions if version]) >= 2
    for event_id, raw in sent.items():
        found = store.events.get(event_id)
        assert found is not None
        assert found[0].raw == raw
    exported = {
        record.event_id: record.raw
        for batch in store.events.batches([], batch_events=97, with_raw=True)
        for record in batch
    }
    assert exported == sent
    store.close()

    # Through a real server, read by a process that never wrote a row: it finds every
    # dictionary in the table.
    server = start_server(tmp_path, database_url)
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            lines = http.get(
                "/api/export",
                params={"format": "ndjson", "raw": "true"},
                headers={"Authorization": f"Bearer {reader}"},
            )
            assert lines.status_code == 200, lines.text
            exported_lines = {
                orjson.loads(line)["event_id"]: line for line in lines.text.splitlines()
            }
            assert set(exported_lines) == set(sent)
            for event_id, line in exported_lines.items():
                # The raw event is spliced into the line as stored: the very same text.
                assert line.endswith(f'"raw":{sent[event_id]}}}')
    finally:
        assert server.stop(), server.log()


# orjson refuses lone surrogates, as JSON text must.
json_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extensions=st.lists(
        st.dictionaries(json_text, json_values, max_size=4), min_size=1, max_size=60
    )
)
def test_generated_events_read_back_exactly(extensions: list[dict[str, object]]) -> None:
    """Up to 60 events an example, 40 to a window: some examples train a dictionary on their
    first envelope and compress the second with it, some never train one."""
    folder = tempfile.TemporaryDirectory()
    store = open_small_window(f"sqlite:///{folder.name}/caliper.db")
    try:
        _, key = store.keys.create(label="sensor", now=NOW)
        sent: dict[str, str] = {}
        rng = random.Random(len(extensions))
        generated = []
        for extra in extensions + extensions:
            event = canvas_event(event_id=f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}")
            event["extensions"] = extra
            generated.append(event)
        for half in (generated[: len(extensions)], generated[len(extensions) :]):
            send(store, key, orjson.dumps(envelope(half)), sent)
        assert len(sent) == len(generated)
        for event_id, raw in sent.items():
            found = store.events.get(event_id)
            assert found is not None
            assert found[0].raw == raw
    finally:
        store.close()
        folder.cleanup()


def test_a_process_that_adopts_a_stored_dictionary_still_retrains_when_events_drift(
    sqlite_url: str,
) -> None:
    first = open_small_window(sqlite_url)
    _, key = first.keys.create(label="sensor", now=NOW)
    sent: dict[str, str] = {}
    for body in generated_envelopes(200, seed=8):
        send(first, key, body, sent)
    trained_first = first.raw_codec.dictionary_id
    first.close()
    assert trained_first is not None
    assert trained_first >= 1

    # A new process (a restart, another worker) starts from the newest stored dictionary and
    # knows what it achieved, so a drift away from it is seen.
    second = open_small_window(sqlite_url)
    try:
        for number in range(200):
            send(second, key, other_shape(number), sent)
        assert second.raw_codec.dictionary_id is not None
        assert second.raw_codec.dictionary_id > trained_first
        with second.engine.connect() as connection:
            used = set(connection.scalars(select(events.c.raw_dictionary).distinct()))
        assert {trained_first, second.raw_codec.dictionary_id} <= used
        exported = {
            record.event_id: record.raw
            for batch in second.events.batches([], batch_events=50, with_raw=True)
            for record in batch
        }
        assert exported == sent
    finally:
        second.close()


class WriterCommits:
    """Transactions that compress raw events as the server's writer does, in a store whose
    windows are 40 events and hold about 30 samples (a busy server commits more at once)."""

    def __init__(self, database_url: str) -> None:
        settings = Settings(
            database_url=database_url, raw_dictionary_train_events=40, raw_dictionary_bytes=256
        )
        self.store = open_store(settings)
        self.store.require_current_schema(create_if_empty=True)

    def commit(self, events: list[object]) -> int:
        """One transaction of ``events``; the dictionary it compressed them with."""
        codec = self.store.raw_codec
        with self.store.write_transaction() as transaction:
            encoder = codec.begin(transaction)
            for event in events:
                encoder.encode(orjson.dumps(event).decode())
        codec.committed(encoder)
        codec.join_training(timeout_s=60)
        return encoder.dictionary_id

    def dictionaries(self) -> int:
        with self.store.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(raw_dictionaries)) or 0)


def flat_events(bodies: Iterable[bytes]) -> list[object]:
    return [event for body in bodies for event in orjson.loads(body)["data"]]


def test_events_that_keep_their_shape_are_compressed_with_one_dictionary(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="caliper_store")
    writer = WriterCommits(sqlite_url)
    events = flat_events(generated_envelopes(200, seed=5))
    try:
        assert writer.commit(events[:40]) == 0  # a full window: a dictionary is wanted
        assert writer.commit(events[40:120]) == 0  # trained meanwhile; this window is full too
        adopted = writer.commit(events[120:160])
        assert adopted >= 1
        assert writer.commit(events[160:200]) == adopted
        assert writer.commit(events[:80]) == adopted
        assert writer.dictionaries() == 1
        # Nor is another trained (and refused, for want of samples) after the first is adopted.
        assert "dictionary" not in caplog.text, caplog.text
    finally:
        writer.store.close()


class TrainsAtOnce(threading.Thread):
    """A trainer that finishes before ``start()`` returns: a busy machine's worst schedule."""

    def start(self) -> None:
        self.run()


def test_a_dictionary_trained_while_a_transaction_is_open_is_stored_by_the_next_one(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the codec's threads train at once; the rest of the store's start as usual.
    codec_threading = SimpleNamespace(
        Thread=TrainsAtOnce, Lock=threading.Lock, local=threading.local
    )
    monkeypatch.setattr("caliper_store.storage.compression.threading", codec_threading)
    writer = WriterCommits(sqlite_url)
    events = flat_events(generated_envelopes(120, seed=5))
    try:
        assert writer.commit(events[:40]) == 0  # a full window: a dictionary is wanted
        assert writer.commit(events[40:80]) == 0  # trained (at once) while this one is open
        assert writer.commit(events[80:120]) >= 1  # stored and used by the next
        assert writer.dictionaries() == 1
    finally:
        writer.store.close()


def test_a_drift_seen_in_the_transaction_that_adopts_a_dictionary_trains_on_its_events(
    sqlite_url: str,
) -> None:
    writer = WriterCommits(sqlite_url)
    events = flat_events(generated_envelopes(120, seed=5))
    noise = flat_events(other_shape(number) for number in range(80))
    try:
        writer.commit(events[:40])
        writer.commit(events[40:])  # trained meanwhile: the window's samples are full
        adopted = writer.commit(noise[:50])  # adopts the dictionary; its events drift from it
        assert adopted >= 1
        writer.commit(noise[50:])  # trains on the drifted events, which this window sampled
        assert writer.commit(noise[50:]) > adopted
        assert writer.dictionaries() == 2
    finally:
        writer.store.close()
