"""Opaque page cursors: where the last page ended, bound to the filter and order that made it.

A cursor is URL-safe base64 of a small JSON array ``[1, time, seq, order, fingerprint]``
(version 1). It names a position, not an offset, so events stored between two requests neither
repeat nor push others off the page. It carries no secret and grants nothing: the filters are
applied again on every request, and a cursor from another filter or order is refused.
Quarantine pages use ``[1, "q", id, fingerprint]``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import orjson

from caliper_store.errors import InvalidQuery
from caliper_store.storage.search import Position

CURSOR_VERSION = 1
# By event time, newest or oldest first; or by received time, oldest first (incremental pulls).
Order = Literal["asc", "desc", "received"]
CURSOR_PARAM = "cursor"


def _encode(payload: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def _decode(text: str) -> list[object]:
    try:
        padded = text + "=" * (-len(text) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidQuery(
            "cursor is not a cursor this store issued", field=CURSOR_PARAM
        ) from error
    if not isinstance(payload, list) or not payload or payload[0] != CURSOR_VERSION:
        raise InvalidQuery("cursor is not a cursor this store issued", field=CURSOR_PARAM)
    return payload


def encode_cursor(position: Position, order: Order, fingerprint: str) -> str:
    """The cursor that continues after ``position``."""
    return _encode([CURSOR_VERSION, position.time, position.seq, order, fingerprint])


def decode_cursor(text: str, order: Order, fingerprint: str) -> Position:
    """The position a cursor names.

    Raises:
        InvalidQuery: the text is no cursor, or it was made for other filters or order.
    """
    payload = _decode(text)
    if len(payload) != 5:
        raise InvalidQuery("cursor is not an event cursor", field=CURSOR_PARAM)
    _, event_time, seq, cursor_order, cursor_fingerprint = payload
    if not isinstance(event_time, str) or not isinstance(seq, int) or isinstance(seq, bool):
        raise InvalidQuery("cursor is not a cursor this store issued", field=CURSOR_PARAM)
    if cursor_order != order or cursor_fingerprint != fingerprint:
        raise InvalidQuery(
            "cursor belongs to a query with other filters or order; start again without it",
            field=CURSOR_PARAM,
        )
    return Position(event_time, seq)


def encode_id_cursor(last_id: int, fingerprint: str) -> str:
    """The cursor of a page of quarantined items (newest first) that ended at ``last_id``."""
    return _encode([CURSOR_VERSION, "q", last_id, fingerprint])


def decode_id_cursor(text: str, fingerprint: str) -> int:
    """The id a quarantine cursor names.

    Raises:
        InvalidQuery: the text is no quarantine cursor, or it was made for other filters.
    """
    payload = _decode(text)
    if len(payload) != 4 or payload[1] != "q":
        raise InvalidQuery("cursor is not a quarantine cursor", field=CURSOR_PARAM)
    last_id, cursor_fingerprint = payload[2], payload[3]
    if not isinstance(last_id, int) or isinstance(last_id, bool):
        raise InvalidQuery("cursor is not a cursor this store issued", field=CURSOR_PARAM)
    if cursor_fingerprint != fingerprint:
        raise InvalidQuery(
            "cursor belongs to a query with other filters; start again without it",
            field=CURSOR_PARAM,
        )
    return last_id
