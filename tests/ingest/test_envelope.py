"""Telling envelopes from bare events and arrays, and the envelope-level errors."""

from __future__ import annotations

import pytest
from tests.fixtures.payloads import canvas_event, envelope

from caliper_store.errors import MalformedEnvelope, PayloadTooLarge, UnsupportedVersion
from caliper_store.ingest.envelope import parse_envelope

LIMITS = {"max_items": 10, "max_field_chars": 2048}


def test_envelope_without_data_version_is_accepted() -> None:
    parsed = parse_envelope(
        envelope([canvas_event()], data_version=None), is_strict=False, **LIMITS
    )
    assert parsed.is_envelope
    assert parsed.version is None
    assert len(parsed.items) == 1


def test_bare_event_and_bare_array_are_items_without_envelope() -> None:
    assert not parse_envelope(canvas_event(), is_strict=False, **LIMITS).is_envelope
    parsed = parse_envelope([canvas_event(), canvas_event()], is_strict=False, **LIMITS)
    assert not parsed.is_envelope
    assert len(parsed.items) == 2


@pytest.mark.parametrize(
    "document", [canvas_event(), [canvas_event()], envelope([canvas_event()], data_version=None)]
)
def test_strict_mode_requires_a_full_envelope(document: object) -> None:
    with pytest.raises(MalformedEnvelope):
        parse_envelope(document, is_strict=True, **LIMITS)


def test_unknown_data_version_is_unsupported() -> None:
    with pytest.raises(UnsupportedVersion) as raised:
        parse_envelope(
            envelope([], data_version="http://purl.imsglobal.org/ctx/caliper/v2p0"),
            is_strict=False,
            **LIMITS,
        )
    assert raised.value.field == "dataVersion"


@pytest.mark.parametrize("document", ["a string", 3, None, True])
def test_json_that_is_no_envelope_nor_event_is_malformed(document: object) -> None:
    with pytest.raises(MalformedEnvelope):
        parse_envelope(document, is_strict=False, **LIMITS)


def test_data_that_is_not_an_array_names_the_field() -> None:
    with pytest.raises(MalformedEnvelope) as raised:
        parse_envelope({"sensor": "s", "data": "oops"}, is_strict=False, **LIMITS)
    assert raised.value.field == "data"


def test_too_many_items_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_envelope(
            envelope([canvas_event() for _ in range(3)]),
            is_strict=False,
            max_items=2,
            max_field_chars=2048,
        )


@pytest.mark.parametrize("name", ["sensor", "sendTime", "dataVersion"])
def test_an_envelope_field_past_the_limit_is_too_large_and_named(name: str) -> None:
    document = envelope([canvas_event()])
    document[name] = "x" * 2049
    with pytest.raises(PayloadTooLarge) as raised:
        parse_envelope(document, is_strict=False, **LIMITS)
    assert raised.value.field == name


def test_an_envelope_field_at_the_limit_is_read() -> None:
    document = envelope([canvas_event()])
    document["sensor"] = "https://example.edu/" + "s" * (2048 - 20)
    assert parse_envelope(document, is_strict=False, **LIMITS).sensor == document["sensor"]
