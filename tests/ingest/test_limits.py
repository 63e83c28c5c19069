"""Property tests at every limit: envelopes just under, at and just over each one.

An item past an item limit goes to quarantine with the limit's reason; an envelope past an
envelope limit gets the error naming the field; anything at or under a limit is stored as usual.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.config import Settings
from caliper_store.errors import PayloadTooLarge, UnsupportedVersion
from caliper_store.ingest import IngestLimits, memory_bound, prepare_request
from caliper_store.storage import ApiKey, EventRow, QuarantineRow

KEY = ApiKey(1, "prefix", "test", ("ingest",), "active", False, "2024-01-01", None, "hash")
NOW = "2024-01-01T00:00:00.000000Z"
offsets = st.sampled_from([-2, -1, 0, 1, 2])


def limits_of(**changes: int) -> IngestLimits:
    return IngestLimits.from_settings(Settings(**changes))  # type: ignore[arg-type]


def only_item(body: dict[str, Any], limits: IngestLimits) -> EventRow | QuarantineRow:
    prepared = prepare_request(orjson.dumps(body), key=KEY, limits=limits, received_at=NOW)
    (item,) = prepared.request.items
    assert isinstance(item, EventRow | QuarantineRow)
    return item


def assert_quarantined_only_when_over(
    item: EventRow | QuarantineRow, *, is_over: bool, code: str
) -> None:
    """Over the limit: quarantined for ``code`` alone. At or under it: stored as an event."""
    if is_over:
        assert isinstance(item, QuarantineRow)
        assert [reason.code for reason in item.reasons] == [code]
    else:
        assert isinstance(item, EventRow), item


def nested(depth: int) -> dict[str, Any]:
    """A chain of ``depth`` objects."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@given(
    limit=st.integers(6, 40),  # a Canvas event nests 4 levels of its own
    offset=offsets,
    where=st.sampled_from(["extensions", "object", "generated"]),
)
@settings(max_examples=80, deadline=None)
def test_nesting_just_under_at_and_over_the_limit(limit: int, offset: int, where: str) -> None:
    event = canvas_event()
    # The event is the first level, the chain below it the rest (object adds one more).
    depth = max(limit + offset, 2)
    chain = nested(depth - 1)
    if where == "object":
        event["object"] = {**event["object"], "extensions": chain}
        depth += 1
    else:
        event[where] = chain
    item = only_item(envelope([event]), limits_of(max_nesting_depth=limit))
    assert_quarantined_only_when_over(item, is_over=depth > limit, code="too_deep")


@given(
    limit=st.integers(600, 5_000),
    offset=offsets,
    where=st.sampled_from(["name", "key", "extension"]),
)
@settings(max_examples=80, deadline=None)
def test_strings_just_under_at_and_over_the_limit(limit: int, offset: int, where: str) -> None:
    event = canvas_event()
    text = "é" * (limit + offset)  # characters, not bytes, are what the limit counts
    if where == "name":
        event["object"] = {**event["object"], "name": text}
    elif where == "key":
        event["extensions"] = {text: 1}
    else:
        event["extensions"] = {"note": [text]}
    item = only_item(envelope([event]), limits_of(max_string_chars=limit))
    assert_quarantined_only_when_over(item, is_over=offset > 0, code="string_too_long")


@given(
    limit=st.integers(60, 400),
    offset=offsets,
    field=st.sampled_from(["id", "actor", "object", "group", "session", "edApp"]),
)
@settings(max_examples=80, deadline=None)
def test_ids_just_under_at_and_over_the_limit(limit: int, offset: int, field: str) -> None:
    event = canvas_event()
    value = "https://example.edu/" + "i" * (limit + offset - len("https://example.edu/"))
    event[field] = value if field == "id" else {"id": value, "type": "Entity"}
    item = only_item(envelope([event]), limits_of(max_id_chars=limit))
    assert_quarantined_only_when_over(item, is_over=offset > 0, code="id_too_long")


@given(
    limit=st.integers(60, 400),
    offset=offsets,
    field=st.sampled_from(["sensor", "sendTime", "dataVersion"]),
)
@settings(max_examples=60, deadline=None)
def test_envelope_fields_just_under_at_and_over_the_limit(
    limit: int, offset: int, field: str
) -> None:
    document = envelope([canvas_event()])
    document[field] = "x" * (limit + offset)
    limits = limits_of(max_id_chars=limit)
    if offset > 0:
        with pytest.raises(PayloadTooLarge) as raised:
            only_item(document, limits)
        assert raised.value.field == field
    elif field == "dataVersion":
        with pytest.raises(UnsupportedVersion):  # read, and found to be no version
            only_item(document, limits)
    else:
        only_item(document, limits)  # read: a bad sendTime is a warning, a sensor is kept


@given(limit=st.integers(1, 30), offset=offsets)
@settings(max_examples=40, deadline=None)
def test_item_counts_just_under_at_and_over_the_limit(limit: int, offset: int) -> None:
    count = max(limit + offset, 0)
    body = orjson.dumps(envelope([canvas_event() for _ in range(count)]))
    limits = limits_of(max_items_per_envelope=limit)
    if count > limit:
        with pytest.raises(PayloadTooLarge) as raised:
            prepare_request(body, key=KEY, limits=limits, received_at=NOW)
        assert raised.value.field == "data"
    else:
        prepared = prepare_request(body, key=KEY, limits=limits, received_at=NOW)
        assert len(prepared.request.items) == count


@given(events=st.integers(1, 60), offset=st.sampled_from([-1, 0, 1]))
@settings(max_examples=40, deadline=None)
def test_request_memory_just_under_at_and_over_the_limit(events: int, offset: int) -> None:
    body = orjson.dumps(envelope([canvas_event() for _ in range(events)]))
    bound = memory_bound(body, limits_of())
    limits = limits_of(max_request_memory_bytes=bound - offset, max_inflight_bytes=2 * bound)
    if offset > 0:
        with pytest.raises(PayloadTooLarge) as raised:
            prepare_request(body, key=KEY, limits=limits, received_at=NOW)
        assert raised.value.field == "body"
    else:
        prepared = prepare_request(body, key=KEY, limits=limits, received_at=NOW)
        assert len(prepared.request.items) == events
