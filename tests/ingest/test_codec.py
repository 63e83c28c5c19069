"""Parsing request bodies: integers past 64 bits stay exact, and only they pay for it."""

from __future__ import annotations

import pytest

from caliper_store.ingest.codec import may_hold_long_integer, parse_json

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
