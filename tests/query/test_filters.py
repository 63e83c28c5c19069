"""Filters and cursors are pure: values read the way ingest stored them, bad ones named."""

from __future__ import annotations

import base64

import orjson
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
from caliper_store.query.quarantine import (
    _fingerprint as quarantine_fingerprint,
)
from caliper_store.query.quarantine import (
    build_quarantine_filter,
    check_item_id,
    parse_quarantine_query,
)
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


def tampered(payload: object) -> str:
    """A cursor-shaped string holding any JSON: what a client may send instead of our cursor."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


EMPTY_PRINT = parse_event_query({}, LIMITS).filter.fingerprint()
QUARANTINE_PRINT = quarantine_fingerprint(build_quarantine_filter({}))
TIME = "2024-01-01T00:00:00.000000Z"
# Each is refused before any part of it reaches the database (a wrong time once failed in the
# driver's bind, a seq past 64 bits in SQLite's).
MALFORMED_EVENT_CURSORS = [
    tampered([True, TIME, 1, "desc", EMPTY_PRINT]),
    tampered([1.0, TIME, 1, "desc", EMPTY_PRINT]),
    tampered([1, "yesterday", 1, "desc", EMPTY_PRINT]),
    tampered([1, "", 1, "desc", EMPTY_PRINT]),
    tampered([1, "2024-02-30T00:00:00.000000Z", 1, "desc", EMPTY_PRINT]),
    tampered([1, "2024-01-01T00:00:00Z", 1, "desc", EMPTY_PRINT]),
    tampered([1, "2024-01-01T00:00:00.000000+01:00", 1, "desc", EMPTY_PRINT]),
    tampered([1, TIME, -1, "desc", EMPTY_PRINT]),
    tampered([1, TIME, 2**63, "desc", EMPTY_PRINT]),
    tampered([1, TIME, 2**64 - 1, "desc", EMPTY_PRINT]),
]


@pytest.mark.parametrize("cursor", MALFORMED_EVENT_CURSORS)
def test_a_malformed_event_cursor_is_refused_naming_cursor(cursor: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_event_query({"cursor": [cursor]}, LIMITS)
    assert refused.value.field == "cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        tampered([1, "q", 2**63, QUARANTINE_PRINT]),
        tampered([1, "q", 2**64 - 1, QUARANTINE_PRINT]),
        tampered([1, "q", -1, QUARANTINE_PRINT]),
    ],
)
def test_a_malformed_quarantine_cursor_is_refused_naming_cursor(cursor: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_quarantine_query({"cursor": [cursor]}, LIMITS)
    assert refused.value.field == "cursor"


def test_a_cursor_names_ids_up_to_64_bits_and_no_further() -> None:
    last = Position("9999-12-31T23:59:59.999999Z", 2**63 - 1)
    assert decode_cursor(encode_cursor(last, "asc", EMPTY_PRINT), "asc", EMPTY_PRINT) == last
    assert decode_id_cursor(encode_id_cursor(2**63 - 1, "f"), "f") == 2**63 - 1
    beyond = Position(last.time, 2**63)
    with pytest.raises(InvalidQuery):
        decode_cursor(encode_cursor(beyond, "asc", EMPTY_PRINT), "asc", EMPTY_PRINT)
    with pytest.raises(InvalidQuery):
        decode_id_cursor(encode_id_cursor(2**63, "f"), "f")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"keyId": [str(2**64)]}, "keyId"),
        ({"keyId": [str(2**63)]}, "keyId"),
        # API key ids are 32-bit INTEGER on PostgreSQL: a larger one errs there, not matches.
        ({"keyId": [str(2**31)]}, "keyId"),
        ({"keyId": ["-1"]}, "keyId"),
        ({"keyId": ["1_0"]}, "keyId"),
        ({"keyId": ["\u0663"]}, "keyId"),
        ({"limit": ["1_0"]}, "limit"),
    ],
)
def test_integers_beyond_their_column_are_refused_naming_the_parameter(
    params: dict[str, list[str]], field: str
) -> None:
    for parse in (parse_event_query, parse_quarantine_query):
        with pytest.raises(InvalidQuery) as refused:
            parse(params, LIMITS)
        assert refused.value.field == field


def test_key_ids_are_read_up_to_the_32_bit_column_and_refused_beyond_it() -> None:
    chosen = parse_event_query({"keyId": [str(2**31 - 1), "0", " 7 "]}, LIMITS)
    assert chosen.filter.key_id == (2**31 - 1, 0, 7)
    listed = parse_quarantine_query({"keyId": ["+3", str(2**31 - 1)]}, LIMITS)
    assert listed.selection.api_key_ids == (3, 2**31 - 1)
    for parse in (parse_event_query, parse_quarantine_query):
        with pytest.raises(InvalidQuery, match="between 0 and 2147483647"):
            parse({"keyId": [str(2**31)]}, LIMITS)


def test_a_nul_character_in_a_text_filter_is_refused_naming_it() -> None:
    for params, field in (({"actorId": ["a\x00b"]}, "actorId"), ({"eventId": ["\x00"]}, "eventId")):
        with pytest.raises(InvalidQuery) as refused:
            parse_event_query(params, LIMITS)
        assert refused.value.field == field
    with pytest.raises(InvalidQuery) as refused:
        parse_quarantine_query({"reason": ["id\x00"]}, LIMITS)
    assert refused.value.field == "reason"


def test_an_item_id_beyond_64_bits_is_refused_naming_item_id() -> None:
    assert check_item_id(2**63 - 1) == 2**63 - 1
    for item_id in (2**63, 2**64, -1):
        with pytest.raises(InvalidQuery) as refused:
            check_item_id(item_id)
        assert refused.value.field == "item_id"
