"""`caliper-store migrate` converts a database of plain raw events in place, and survives a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from typing import Any

from sqlalchemy import func, select, text
from tests.fixtures.events import event_columns, generated_envelopes
from tests.fixtures.payloads import corpus_dir, corpus_files
from tests.fixtures.server import run_cli

from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.query import QueryLimits, parse_event_query, search_page
from caliper_store.storage import (
    EventRow,
    SchemaState,
    Store,
    WriteRequest,
    commit_batch,
    open_store,
)
from caliper_store.storage.migrate import downgrade, head_revision
from caliper_store.storage.schema import events, iri_key

NOW = "2025-02-01T00:00:00.000000Z"
PREVIOUS_REVISION = "0004"
BATCH_EVENTS = 25
# Each a filter of GET /api/events; its pages before and after the conversion must be equal.
FILTERS: list[dict[str, list[str]]] = [
    {},
    {"order": ["asc"]},
    {"type": ["NavigationEvent"]},
    {"since": ["2024-01-01"], "until": ["2030-01-01"]},
]


def legacy_row(row: EventRow, request: WriteRequest) -> tuple[Any, ...]:
    """The events row a store before revision 0005 wrote: the raw JSON as plain text."""
    values = {name: getattr(row, name) for name in EventRow.__dataclass_fields__}
    return event_columns(
        **{name: value for name, value in values.items() if name not in ("index", "warnings")},
        sensor=request.sensor,
        api_key_id=request.api_key_id,
        receipt_id=1,
        received_at=request.received_at,
        actor_key=iri_key(row.actor_id),
        object_key=iri_key(row.object_id),
        group_key=iri_key(row.group_id),
    )


def fill_plain(store: Store) -> None:
    """Store the corpus and generated events as plain rows, one transaction each body."""
    _, key = store.keys.create(label="old sensor", now=NOW)
    limits = IngestLimits.from_settings(Settings())
    bodies = (
        [path.read_bytes() for path in corpus_files(corpus_dir())] if corpus_dir().is_dir() else []
    )
    bodies += list(generated_envelopes(400, seed=11))
    seen: set[str] = set()
    for body in bodies:
        request = prepare_request(body, key=key, limits=limits, received_at=NOW).request
        rows = [
            legacy_row(item, request)
            for item in request.items
            if isinstance(item, EventRow) and item.event_id not in seen
        ]
        seen.update(row[0] for row in rows)
        store.prepare_batch([request])
        with store.write_transaction() as transaction:
            transaction.insert_events(rows)


def read_everything(store: Store) -> dict[str, Any]:
    """Every filter's pages (raw included) and every event by id: what a user can read."""
    limits = QueryLimits.from_settings(Settings())
    shown: dict[str, Any] = {}
    for params in FILTERS:
        pages = []
        query = parse_event_query({**params, "limit": ["40"], "raw": ["true"]}, limits)
        while True:
            page = search_page(store, query)
            pages.append([(record.event_id, record.raw) for record in page.events])
            if page.next_cursor is None:
                break
            query = parse_event_query(
                {**params, "limit": ["40"], "raw": ["true"], "cursor": [page.next_cursor]}, limits
            )
        shown[json.dumps(params)] = pages
    for event_id in list(store.iter_event_ids()):
        found = store.events.get(event_id)
        assert found is not None
        shown[event_id] = found[0].raw
    return shown


def form_counts(store: Store) -> tuple[int, int, int]:
    """(plain rows, converted rows, rows in neither form): the last must always be 0."""
    with store.engine.connect() as connection:
        plain = connection.scalar(
            select(func.count()).where(
                events.c.raw_dictionary.is_(None), events.c.raw_zstd.is_(None), events.c.raw != ""
            )
        )
        converted = connection.scalar(
            select(func.count()).where(
                events.c.raw_dictionary.is_not(None),
                events.c.raw_zstd.is_not(None),
                events.c.raw == "",
            )
        )
        total = connection.scalar(select(func.count()).select_from(events))
    assert plain is not None
    assert converted is not None
    assert total is not None
    return plain, converted, total - plain - converted


# Converts, and SIGKILLs itself once the third batch's UPDATE has run but before its COMMIT.
KILLED_MID_BATCH = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from caliper_store.config import Settings
    from caliper_store.storage import convert_plain_raw, open_store, plan_conversion

    store = open_store(Settings(database_url=sys.argv[1]))
    store.migrate()
    updates = 0

    @event.listens_for(store.engine, "after_cursor_execute")
    def crash(connection, cursor, statement, parameters, context, executemany):
        global updates
        if statement.lstrip().upper().startswith("UPDATE EVENTS"):
            updates += 1
            if updates == 3:
                os.kill(os.getpid(), signal.SIGKILL)

    for _ in convert_plain_raw(store, plan_conversion(store), batch_events=int(sys.argv[2])):
        pass
    """
)


def test_a_plain_database_is_converted_in_place_and_a_kill_loses_nothing(
    database_url: str,
) -> None:
    store = open_store(Settings(database_url=database_url))
    store.require_current_schema(create_if_empty=True)
    fill_plain(store)
    before = read_everything(store)
    total = len(list(store.iter_event_ids()))
    assert total > 3 * BATCH_EVENTS
    with store.engine.connect() as connection:
        downgrade(connection, PREVIOUS_REVISION)
    assert store.schema_state() == (SchemaState.OUTDATED, PREVIOUS_REVISION)
    store.close()

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_BATCH, database_url, str(BATCH_EVENTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = open_store(Settings(database_url=database_url))
    plain, converted, neither = form_counts(store)
    # Two batches committed; the third, killed before its COMMIT, left no trace.
    assert (converted, plain, neither) == (2 * BATCH_EVENTS, total - 2 * BATCH_EVENTS, 0)
    assert read_everything(store) == before
    store.close()

    migrated = run_cli("migrate", "--database", database_url, "--batch-events", str(BATCH_EVENTS))
    assert migrated.returncode == 0, migrated.stderr
    assert head_revision() in migrated.stdout
    assert f"converted {total - 2 * BATCH_EVENTS} events" in migrated.stdout
    store = open_store(Settings(database_url=database_url))
    try:
        assert form_counts(store) == (0, total, 0)
        assert read_everything(store) == before
        # Running it again finds nothing left to do.
        again = run_cli("migrate", "--database", database_url)
        assert again.returncode == 0, again.stderr
        assert "converted" not in again.stdout
        with store.engine.connect() as connection:
            used = connection.scalars(text("SELECT DISTINCT raw_dictionary FROM events")).all()
        assert len(used) == 1
        assert used[0] >= 1  # a dictionary trained on the store's own events
    finally:
        store.close()


def test_stats_storage_reports_bytes_per_event_and_dictionaries(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url, raw_dictionary_train_events=100))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="sensor", now=NOW)
    limits = IngestLimits.from_settings(Settings())
    for body in generated_envelopes(600, seed=5):
        request = prepare_request(body, key=key, limits=limits, received_at=NOW).request
        commit_batch(store, [request])
        store.raw_codec.join_training(timeout_s=60)
    store.close()
    shown = run_cli("stats", "--storage", "--json", "--database", database_url)
    assert shown.returncode == 0, shown.stderr
    usage = json.loads(shown.stdout)["storage"]
    assert usage["events"] == 600
    per_event = usage["per_event"]
    assert per_event["everything"] >= per_event["events_table"] + per_event["event_indexes"]
    assert per_event["events_table"] > 0
    assert per_event["event_indexes"] > 0
    # Event-id uniqueness lives in a table of its own, counted with the event's bytes.
    assert per_event["event_ids_table"] > 0
    assert per_event["everything"] > per_event["events_table"] + per_event["event_ids_table"]
    names = {relation["name"] for relation in usage["relations"]}
    # SQLite's events table is its first segment (revision 0006).
    events_table = "events_s000001" if database_url.startswith("sqlite") else "events"
    assert {events_table, "events_actor_time", "raw_dictionaries"} <= names
    # The first 100 events without a dictionary, and the 10 of the envelope committed while
    # it was trained on them; the rest with it.
    by_id = {row["id"]: row for row in usage["dictionaries"]}
    assert by_id[0]["events"] == 110
    assert sum(row["events"] for row in usage["dictionaries"]) == 600
    assert by_id[1]["bytes"] > 0
    assert usage["compression"]["plain_events"] == 0
    assert 0 < usage["compression"]["ratio"] < 0.5
    text_form = run_cli("stats", "--storage", "--database", database_url)
    assert text_form.returncode == 0, text_form.stderr
    assert "per event" in text_form.stdout
    assert "dictionaries" in text_form.stdout
