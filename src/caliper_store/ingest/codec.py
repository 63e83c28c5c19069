"""JSON in and out of the ingest path: orjson for speed, the standard library where orjson refuses.

orjson rejects integers beyond 64 bits; such documents are valid JSON, so they take the slower
standard-library path instead of being refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from caliper_store.errors import MalformedEnvelope


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Parse a request body as JSON.

    Raises:
        MalformedEnvelope: the body is not valid UTF-8 JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        orjson_error = error
    try:
        # Only reached for documents orjson refuses; big integers are the legitimate case.
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
        # Lone surrogates ("\ud800") parse here but are not text; refuse them like orjson does.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except (UnicodeError, ValueError, RecursionError):
        raise MalformedEnvelope(
            f"the body is not valid JSON: {orjson_error}", field="body"
        ) from orjson_error


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
