"""Filters and cursors are pure: values read the way ingest stored them, bad ones named."""

from __future__ import annotations

import pytest

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery
from caliper_store.query import FILTER_FIELDS, QueryLimits, build_filter, parse_event_query
from caliper_store.query.cursor import (
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
)
from caliper_store.query.filters import filter_field_names
from caliper_store.storage.search import FILTER_COLUMNS, Position

LIMITS = QueryLimits.from_settings(Settings())


def test_every_filter_field_has_one_parameter_and_a_column() -> None:
    assert {spec.name for spec in FILTER_FIELDS} == filter_field_names()
    assert len({spec.param for spec in FILTER_FIELDS}) == len(FILTER_FIELDS)
    assert {spec.column for spec in FILTER_FIELDS} <= FILTER_COLUMNS


def test_terms_ids_and_versions_are_read_as_ingest_stores_them() -> None:
    chosen = build_filter(
        {
            "type": ["http://purl.imsglobal.org/caliper/v1/NavigationEvent", "ViewEvent"],
            "action": ["http://purl.imsglobal.org/vocab/caliper/v1/action#LoggedIn"],
            "eventId": ["0A2A8C4D-0EBC-4200-AB6F-095B3B16852D"],
            "version": ["http://purl.imsglobal.org/ctx/caliper/v1p2"],
            "keyId": ["3", "3"],
            "since": ["2024-03-01"],
            "until": ["2024-03-02T01:00:00+01:00"],
        },
        max_values=10,
    )
    assert chosen.event_type == ("NavigationEvent", "ViewEvent")
    assert chosen.action == ("LoggedIn",)
    assert chosen.event_id == ("urn:uuid:0a2a8c4d-0ebc-4200-ab6f-095b3b16852d",)
    assert chosen.version == ("1.2",)
    assert chosen.key_id == (3,)
    assert chosen.since == "2024-03-01T00:00:00.000000Z"
    assert chosen.until == "2024-03-02T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"keyId": ["one"]}, "keyId"),
        ({"since": ["last week"]}, "since"),
        ({"receivedUntil": ["2024-13-01"]}, "receivedUntil"),
        ({"version": ["2.0"]}, "version"),
        ({"until": ["2024-01-01", "2024-02-01"]}, "until"),
        ({"limit": ["0"]}, "limit"),
        ({"limit": ["1001"]}, "limit"),
        ({"limit": ["ten"]}, "limit"),
        ({"order": ["sideways"]}, "order"),
        ({"raw": ["maybe"]}, "raw"),
        ({"actor": ["x"]}, "actor"),
        ({"cursor": ["not-a-cursor"]}, "cursor"),
        ({"actorId": [str(n) for n in range(101)]}, "actorId"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(
    params: dict[str, list[str]], field: str
) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_event_query(params, LIMITS)
    assert refused.value.field == field


def test_a_cursor_continues_only_the_query_that_made_it() -> None:
    query = parse_event_query({"actorId": ["a"]}, LIMITS)
    cursor = encode_cursor(
        Position("2024-01-01T00:00:00.000000Z", 7), "desc", query.filter.fingerprint()
    )
    again = parse_event_query({"actorId": ["a"], "cursor": [cursor]}, LIMITS)
    assert again.after == Position("2024-01-01T00:00:00.000000Z", 7)
    for changed in ({"actorId": ["b"]}, {"actorId": ["a"], "order": ["asc"]}):
        with pytest.raises(InvalidQuery, match="other filters or order"):
            parse_event_query({**changed, "cursor": [cursor]}, LIMITS)
    assert "=" not in cursor
    assert "/" not in cursor
    assert "+" not in cursor


def test_quarantine_cursors_and_event_cursors_are_not_interchangeable() -> None:
    event_cursor = encode_cursor(Position("2024-01-01T00:00:00.000000Z", 7), "asc", "f")
    id_cursor = encode_id_cursor(42, "f")
    assert decode_id_cursor(id_cursor, "f") == 42
    with pytest.raises(InvalidQuery):
        decode_id_cursor(event_cursor, "f")
    with pytest.raises(InvalidQuery):
        decode_cursor(id_cursor, "asc", "f")
