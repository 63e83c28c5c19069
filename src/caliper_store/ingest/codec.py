"""JSON in and out of the ingest path: orjson for speed, the standard library where it falls short.

orjson reads integers beyond 64 bits as floats, which would change the raw event we promise to
keep as sent; a body with a run of 19 or more digits therefore takes the exact (slower)
standard-library parser. The scan maps every byte to "digit or not" with ``bytes.translate``
and looks for 19 digits in a row: two C passes, about a tenth of a regex search's cost.
"""

from __future__ import annotations

import hashlib
import json
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


def has_long_digit_run(body: bytes) -> bool:
    """Whether the body holds 19 or more ASCII digits in a row (maybe an integer past 64 bits)."""
    return LONG_DIGIT_RUN in body.translate(DIGITS_TO_ZERO)


def parse_json(body: bytes) -> Any:
    """Parse a request body as JSON, keeping big integers exact.

    Raises:
        MalformedEnvelope: the body is not valid UTF-8 JSON.
    """
    if not has_long_digit_run(body):
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
