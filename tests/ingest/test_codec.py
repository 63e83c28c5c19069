"""Parsing request bodies: integers past 64 bits stay exact, and only they pay for it."""

from __future__ import annotations

import json
import re
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fixtures.payloads import canvas_event

from caliper_store.errors import MalformedEnvelope
from caliper_store.ingest.codec import (
    _dump_deep,
    dump_json,
    may_hold_long_integer,
    parse_json,
    parsed_memory_bound,
)

LONG = "123456789012345678901234567890"


@pytest.mark.parametrize(
    "body",
    [
        f'{{"score": {LONG}}}',
        f'{{"score":-{LONG}}}',
        f"[1, {LONG}]",
        f"[\n  {LONG}\n]",
        LONG,
    ],
)
def test_integers_past_64_bits_are_read_exactly(body: str) -> None:
    assert may_hold_long_integer(body.encode())
    assert LONG in str(parse_json(body.encode()))


@pytest.mark.parametrize(
    "body",
    [
        '{"session": "https://example.edu/sessions/F38C3128700065155069526EDF839BF4"}',
        '{"id": "urn:uuid:00000000-0000-4000-8000-000000000000", "n": 1234567890123}',
        '{"score": 1.2345678901234567890123}',
    ],
)
def test_long_digit_runs_inside_strings_or_fractions_keep_the_fast_parser(body: str) -> None:
    assert not may_hold_long_integer(body.encode())


# The rule the scan keeps: 19 digits where a number token can begin (the regex the scan
# replaced, which read the whole body again whenever a long digit run stood anywhere).
NUMBER_OF_19_DIGITS = re.compile(rb"(?:^|[:,\[])[ \t\n\r]*-?[0-9]{19}")


@given(
    st.lists(
        st.sampled_from(
            [b"1", b"1" * 19, b"1" * 25, b"-", b" ", b"\n", b":", b",", b"[", b'"', b"a"]
        ),
        max_size=40,
    )
)
@settings(max_examples=500)
def test_the_scan_finds_a_long_number_exactly_where_the_rule_does(parts: list[bytes]) -> None:
    body = b"".join(parts)
    assert may_hold_long_integer(body) == (NUMBER_OF_19_DIGITS.search(body) is not None)


def test_a_long_number_after_many_long_runs_in_strings_is_found() -> None:
    strings = ",".join(f'"s{n}": "ab{LONG}cd"' for n in range(2_000))
    assert not may_hold_long_integer(f"{{{strings}}}".encode())
    assert may_hold_long_integer(f'{{{strings}, "score": {LONG}}}'.encode())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=60,
)


def parsed_size(body: bytes) -> int:
    """What parsing the body really allocates, as tracemalloc counts it."""
    tracemalloc.start()
    try:
        document = parse_json(body)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del document
    return size


@given(json_values, st.integers(1, 400))
@settings(max_examples=60, deadline=None)
def test_the_memory_bound_holds_for_any_json(value: object, copies: int) -> None:
    # Copies push bodies past the size under which the bound is the length alone.
    body = dump_json([value] * copies).encode()
    assert parsed_size(body) <= parsed_memory_bound(body)


@pytest.mark.parametrize(
    "piece", [b"{}", b"[]", b"[[[]]]", b'{"a":1.5}', b'"ab"', b"1.5", b'{"":[]}', b'"\\u00e9x"']
)
def test_the_memory_bound_holds_for_the_cheapest_values(piece: bytes) -> None:
    body = b"[" + b",".join([piece] * 50_000) + b"]"
    assert parsed_size(body) <= parsed_memory_bound(body)


def test_the_memory_bound_of_a_real_envelope_is_within_three_times_its_parse() -> None:
    event = canvas_event()
    body = dump_json({"sensor": "s", "data": [event] * 100}).encode()
    assert parsed_memory_bound(body) < 3 * parsed_size(body)


def test_an_item_nested_past_the_standard_librarys_recursion_limit_serializes() -> None:
    depth = 1_020  # parses (orjson reads 1,024 levels), but json.dumps recursed to a 500 here
    body = b'{"a":' * depth + b"1" + b"}" * depth
    assert dump_json(parse_json(body)) == body.decode()
    with pytest.raises(MalformedEnvelope) as raised:
        parse_json(b"[" * 1_100 + b"]" * 1_100)
    assert raised.value.field == "body"


@given(json_values)
def test_the_walk_without_recursion_writes_what_the_standard_library_writes(value: object) -> None:
    expected = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    assert _dump_deep(value) == expected
