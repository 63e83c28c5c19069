"""JSON in and out of the ingest path: orjson for speed, the standard library where it falls short.

orjson reads integers beyond 64 bits as floats, which would change the raw event we promise to
keep as sent; a body that may hold a number of 19 or more digits therefore takes the exact
(slower) standard-library parser. The first scan maps every byte to "digit or not" with
``bytes.translate`` and looks for 19 digits in a row: two C passes, about a tenth of a regex
search's cost. Such runs are common inside strings (7% of Learn envelopes carry one in a hex
session id), so a second scan keeps only runs placed where a JSON number can start.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson

from caliper_store.errors import MalformedEnvelope


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


# 2**63 has 19 digits: any integer orjson cannot hold exactly has at least that many.
LONG_DIGIT_RUN = b"0" * 19
DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


# 19 digits where a number token can begin: at the start, or after ":", "," or "[" (and
# whitespace, and a minus). Digits inside a string can match too; that only costs speed.
NUMBER_OF_19_DIGITS = re.compile(rb"(?:^|[:,\[])\s*-?[0-9]{19}")


def may_hold_long_integer(body: bytes) -> bool:
    """Whether the body may hold an integer of 19 or more digits (maybe past 64 bits)."""
    if LONG_DIGIT_RUN not in body.translate(DIGITS_TO_ZERO):
        return False
    return NUMBER_OF_19_DIGITS.search(body) is not None


def parse_json(body: bytes) -> Any:
    """Parse a request body as JSON, keeping big integers exact.

    Raises:
        MalformedEnvelope: the body is not valid UTF-8 JSON.
    """
    if not may_hold_long_integer(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise MalformedEnvelope(f"the body is not valid JSON: {error}", field="body") from error
    return _parse_exact(body)


def _parse_exact(body: bytes) -> Any:
    try:
        document = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
        # Lone surrogates ("\ud800") parse here but are not text; refuse them like orjson does.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except (UnicodeError, ValueError, RecursionError) as error:
        raise MalformedEnvelope(f"the body is not valid JSON: {error}", field="body") from error


def dump_json(value: Any) -> str:
    """Serialize a parsed item compactly, keeping its key order (the raw form we store)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def content_hash(value: Any) -> str:
    """A hex SHA-256 of the item's canonical JSON (sorted keys): equal content, equal hash."""
    try:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = json.dumps(
            value, ensure_ascii=True, separators=(",", ":"), sort_keys=True
        ).encode("ascii")
    return hashlib.sha256(canonical).hexdigest()
