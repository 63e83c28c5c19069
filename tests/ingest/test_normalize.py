"""Normalization of single items across Caliper versions, tested directly (pure functions)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.fixtures.payloads import canvas_event, moodle_event

from caliper_store.ingest.limits import ItemLimits
from caliper_store.ingest.normalize import (
    ItemContext,
    derive_event_id,
    normalize_id,
    normalize_item,
)
from caliper_store.ingest.times import parse_time
from caliper_store.storage import EntityRow, EventRow, QuarantineRow

LIMITS = ItemLimits(max_nesting_depth=64, max_string_chars=1_000_000, max_id_chars=2048)
V1P1 = ItemContext("1.1", LIMITS)
NO_VERSION = ItemContext(None, LIMITS)


def codes(row: Any) -> set[str]:
    reasons = row.reasons if isinstance(row, QuarantineRow) else row.warnings
    return {reason.code for reason in reasons}


def test_caliper_1_0_terms_become_1_1_terms_in_columns() -> None:
    row = normalize_item(moodle_event(user=7, course=3, minute=5), 0, NO_VERSION)
    assert isinstance(row, EventRow)
    assert row.caliper_version == "1.0"
    assert (row.event_type, row.action) == ("NavigationEvent", "NavigatedTo")
    assert row.actor_id == "https://moodle.example.edu/user/profile.php?id=7"
    assert row.actor_type == "Person"
    assert row.object_type == "CourseOffering"
    assert row.group_id == "https://moodle.example.edu/course/view.php?id=3"
    assert row.has_derived_id
    # The raw item is kept as sent, 1.0 terms and all.
    assert '"@type":"http://purl.imsglobal.org/caliper/v1/NavigationEvent"' in row.raw


def test_event_without_id_gets_the_same_derived_id_every_time() -> None:
    first = normalize_item(moodle_event(1, 2, 3), 0, NO_VERSION)
    again = normalize_item(moodle_event(1, 2, 3), 5, NO_VERSION)
    other = normalize_item(moodle_event(1, 2, 4), 0, NO_VERSION)
    assert isinstance(first, EventRow)
    assert isinstance(again, EventRow)
    assert isinstance(other, EventRow)
    assert first.event_id == again.event_id == derive_event_id(first.content_hash)
    assert first.event_id != other.event_id
    assert first.event_id.startswith("urn:uuid:")


@pytest.mark.parametrize(
    ("sent", "normalized"),
    [
        (
            "urn:uuid:3A648E68-F00D-4C08-AA59-8738E1884F2C",
            "urn:uuid:3a648e68-f00d-4c08-aa59-8738e1884f2c",
        ),
        ("3a648e68-f00d-4c08-aa59-8738e1884f2c", "urn:uuid:3a648e68-f00d-4c08-aa59-8738e1884f2c"),
        ("https://example.edu/events/1", "https://example.edu/events/1"),
        (
            "urn:uuid:not-a-uuid-but-36-chars-long-xxxxxxxx",
            "urn:uuid:not-a-uuid-but-36-chars-long-xxxxxxxx",
        ),
    ],
)
def test_event_ids_have_one_spelling(sent: str, normalized: str) -> None:
    assert normalize_id(sent) == normalized


@pytest.mark.parametrize(
    ("sent", "utc", "is_naive"),
    [
        ("2019-11-01T19:11:05.222Z", "2019-11-01T19:11:05.222000Z", False),
        ("2019-11-01T21:11:05.222+02:00", "2019-11-01T19:11:05.222000Z", False),
        ("2019-11-01T19:11:05", "2019-11-01T19:11:05.000000Z", True),
        ("2019-11-01T19:11:05.1234567Z", "2019-11-01T19:11:05.123456Z", False),
    ],
)
def test_times_are_normalized_to_utc(sent: str, utc: str, is_naive: bool) -> None:
    assert parse_time(sent) == (utc, is_naive)


@pytest.mark.parametrize("sent", ["yesterday", "", None, 1573000000, "2019-13-01T00:00:00Z"])
def test_unreadable_times_are_none(sent: object) -> None:
    assert parse_time(sent)[0] is None


def test_canvas_event_columns_and_sis_id() -> None:
    row = normalize_item(canvas_event(user=48, course=565), 0, V1P1)
    assert isinstance(row, EventRow)
    assert row.actor_external_id == "SIS48"
    assert row.group_id == "urn:instructure:canvas:course:21070000000000565"
    assert row.ed_app_id == "http://oxana.instructure.com/"


def test_blackboard_context_array_plain_uuid_and_iri_action_are_stored_as_extension() -> None:
    item = {
        "@context": [
            "http://caliper.blackboard.com/ctx/caliper/v1p1/Context",
            "http://purl.imsglobal.org/ctx/caliper/v1p1",
        ],
        "id": "6fa459ea-ee8a-3ca4-894e-db77e160355e",
        "type": "http://caliper.blackboard.com/caliper/v1p1/ForumEvent",
        "action": "http://caliper.blackboard.com/vocab/caliper/v1p1/action#Create",
        "actor": "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/s1/users/u1",
        "object": {
            "id": "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/s1/forums/f1",
            "type": "Forum",
        },
        "eventTime": "2024-02-01T01:02:03.000Z",
        "extensions": {"bb:user.externalId": "jdoe01", "bb:request.headers.ipAddress": "10.0.0.1"},
    }
    row = normalize_item(item, 0, NO_VERSION)
    assert isinstance(row, EventRow)
    assert row.caliper_version == "1.1"
    assert row.event_id == "urn:uuid:6fa459ea-ee8a-3ca4-894e-db77e160355e"
    assert row.is_extension
    assert {"extension_type", "extension_action"} <= codes(row)
    assert row.actor_external_id == "jdoe01"
    assert row.actor_id.endswith("/users/u1")


@pytest.mark.parametrize(
    ("extensions", "external_id"),
    [
        ({"bb:user.id": "_4072_1", "bb:user.externalId": "s1146964"}, "s1146964"),
        (
            {"com.instructure.canvas": {"user_login": "a@b.edu", "user_sis_id": "456-T45"}},
            "456-T45",
        ),
        ({"com.instructure.canvas": {"sis_id": "S-9"}}, "S-9"),
    ],
)
def test_the_external_id_is_read_from_the_actor_where_learn_and_canvas_put_it(
    extensions: dict[str, Any], external_id: str
) -> None:
    item = canvas_event()
    del item["extensions"]
    item["actor"]["extensions"] = extensions
    row = normalize_item(item, 0, V1P1)
    assert isinstance(row, EventRow)
    assert row.actor_external_id == external_id


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"actor": None}, "missing_actor"),
        ({"actor": {"type": "Person"}}, "invalid_actor"),
        ({"action": None}, "missing_action"),
        ({"action": 3}, "invalid_action"),
        ({"object": None}, "missing_object"),
        ({"eventTime": "last tuesday"}, "unparseable_event_time"),
        ({"eventTime": None}, "missing_event_time"),
        ({"@context": "http://purl.imsglobal.org/ctx/caliper/v9p9"}, "unsupported_version"),
    ],
)
def test_items_that_cannot_be_events_are_quarantined_with_reason(
    change: dict[str, Any], code: str
) -> None:
    item = canvas_event()
    item.update(change)
    row = normalize_item(item, 3, V1P1)
    assert isinstance(row, QuarantineRow)
    assert code in codes(row)
    assert all(reason.field.startswith("data[3]") for reason in row.reasons)


@pytest.mark.parametrize("item", [[1, 2], "text", 42, None])
def test_non_object_items_are_quarantined(item: object) -> None:
    row = normalize_item(item, 0, V1P1)
    assert isinstance(row, QuarantineRow)
    assert codes(row) == {"not_an_object"}


def test_limits_quarantine_deep_items_and_long_strings() -> None:
    tight = ItemContext(
        "1.1", ItemLimits(max_nesting_depth=5, max_string_chars=100, max_id_chars=50)
    )
    deep: dict[str, Any] = canvas_event()
    deep["extensions"] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    assert codes(normalize_item(deep, 0, tight)) == {"too_deep"}
    long_text = canvas_event()
    long_text["object"]["name"] = "x" * 101
    assert codes(normalize_item(long_text, 0, tight)) == {"string_too_long"}
    long_id = canvas_event()
    long_id["actor"] = "https://example.edu/" + "u" * 60
    assert "id_too_long" in codes(normalize_item(long_id, 0, tight))


def test_entity_describe_is_an_entity_row() -> None:
    entity = {
        "@context": "http://purl.imsglobal.org/ctx/caliper/v1p1",
        "id": "https://example.edu/terms/201601/courses/7/sections/1",
        "type": "CourseSection",
        "name": "Section 1",
    }
    row = normalize_item(entity, 0, V1P1)
    assert isinstance(row, EntityRow)
    assert (row.entity_type, row.entity_id) == ("CourseSection", entity["id"])
    assert not row.warnings


def test_an_item_nested_about_a_thousand_levels_is_quarantined_as_too_deep() -> None:
    # Such an item parses (orjson reads 1,024 levels) and once answered 500 while serialized.
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(1_000):
        inner["a"] = {}
        inner = inner["a"]
    event = canvas_event()
    event["extensions"] = nested
    row = normalize_item(event, 0, V1P1)
    assert isinstance(row, QuarantineRow)
    assert codes(row) == {"too_deep"}
    # Kept whole, as sent (compared as text: == on such values recurses too deep as well).
    assert row.raw.count('{"a":') == 1_000
    assert row.raw.startswith(orjson.dumps(canvas_event_without_extensions(event))[:-1].decode())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "T" * 2049}, "data[0].type"),
        ({"action": "A" * 2049}, "data[0].action"),
        ({"actor": {"id": "https://example.edu/u/1", "type": "P" * 2049}}, "data[0].actor.type"),
        ({"membership": {"roles": ["R" * 2049]}}, "data[0].membership.roles"),
    ],
)
def test_terms_copied_into_columns_are_bounded_like_ids(change: dict[str, Any], field: str) -> None:
    event = {**canvas_event(), **change}
    row = normalize_item(event, 0, V1P1)
    assert isinstance(row, QuarantineRow)
    assert [(reason.code, reason.field) for reason in row.reasons] == [("term_too_long", field)]


def test_an_id_too_long_is_not_copied_into_the_quarantine_row() -> None:
    row = normalize_item(canvas_event(event_id="urn:x:" + "9" * 5000), 0, V1P1)
    assert isinstance(row, QuarantineRow)
    assert codes(row) == {"id_too_long"}
    assert row.event_id is None
    entity = normalize_item({"id": "urn:x:" + "9" * 5000, "type": "Person"}, 0, V1P1)
    assert isinstance(entity, QuarantineRow)
    assert entity.event_id is None


def canvas_event_without_extensions(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "extensions"}
