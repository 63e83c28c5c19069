"""Reads bounded in bytes: a page of large raw events ends early with a cursor, and loses none.

One raw event may be as large as a request body, so a page of ``max_page_events`` events, an
export batch or a Parquet row group is bounded by ``max_read_bytes`` as well as by its count.
"""

from __future__ import annotations

import io

import orjson
import pyarrow.parquet as pq
import pytest
from tests.fixtures.events import ingest
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.config import Settings
from caliper_store.query import (
    ExportOptions,
    QueryLimits,
    build_filter,
    export_to_stream,
    parse_event_query,
    search_page,
)
from caliper_store.storage import Store

EVENTS = 40
NOTE_CHARS = 100_000  # each raw event is a little over 100 KB
BUDGET = 350_000  # about three and a half of them


@pytest.fixture
def large_events(store: Store) -> list[str]:
    """EVENTS events of about 100 KB each, in event-time order; their ids."""
    _, key = store.keys.create(label="large", now="2024-01-01T00:00:00.000000Z")
    ids = []
    for number in range(EVENTS):
        event = canvas_event()
        event["eventTime"] = f"2024-01-01T00:{number // 60:02d}:{number % 60:02d}.000Z"
        event["extensions"] = {"note": "n" * NOTE_CHARS}
        ingest(store, key, orjson.dumps(envelope([event])), "2024-01-02T00:00:00.000000Z")
        ids.append(event["id"])
    return ids


def limits(budget: int) -> QueryLimits:
    return QueryLimits.from_settings(Settings(max_read_bytes=budget))


def test_a_page_of_large_events_ends_at_the_byte_budget_and_its_cursor_loses_none(
    store: Store, large_events: list[str]
) -> None:
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params = {"limit": ["100"], "raw": ["true"], "order": ["asc"]}
        if cursor:
            params["cursor"] = [cursor]
        page = search_page(store, parse_event_query(params, limits(BUDGET)))
        pages += 1
        held = sum(len(record.raw or "") for record in page.events)
        # The page stops after the event that takes it past the budget.
        assert held <= BUDGET + NOTE_CHARS + 10_000
        seen += [record.event_id for record in page.events]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == large_events
    assert pages >= EVENTS * (NOTE_CHARS + 1_000) // (BUDGET + NOTE_CHARS)


def test_a_page_without_raw_events_is_not_cut(store: Store, large_events: list[str]) -> None:
    page = search_page(store, parse_event_query({"limit": ["100"]}, limits(BUDGET)))
    assert len(page.events) == EVENTS
    assert page.next_cursor is None


@pytest.mark.parametrize("export_format", ["ndjson", "csv", "parquet"])
def test_an_export_reads_in_byte_bounded_batches_and_writes_every_event_once(
    store: Store, large_events: list[str], export_format: str
) -> None:
    options = ExportOptions.from_settings(
        Settings(max_read_bytes=BUDGET),
        export_format,  # type: ignore[arg-type]  # one of the three formats
        with_raw=True,
    )
    sink = io.BytesIO()
    written = export_to_stream(store, build_filter({}, max_values=10), options, sink)
    assert written == EVENTS
    data = sink.getvalue()
    if export_format == "parquet":
        file = pq.ParquetFile(io.BytesIO(data))
        assert file.read().column("event_id").to_pylist() == large_events
        # Row groups are cut at the byte budget too, not only at export_row_group_events.
        assert file.metadata.num_row_groups >= EVENTS * NOTE_CHARS // (BUDGET + NOTE_CHARS)
    elif export_format == "ndjson":
        lines = data.splitlines()
        assert [orjson.loads(line)["event_id"] for line in lines] == large_events
    else:
        assert data.count(b"\n") >= EVENTS + 1
        for event_id in large_events:
            assert data.count(event_id.encode()) >= 1
