"""Opaque page cursors: where the last page ended, bound to the filter and order that made it.

A cursor is URL-safe base64 of a small JSON array ``[1, time, seq, order, fingerprint]``
(version 1). It names a position, not an offset, so events stored between two requests neither
repeat nor push others off the page. It carries no secret and grants nothing: the filters are
applied again on every request, and a cursor from another filter or order is refused.
Quarantine pages use ``[1, "q", id, fingerprint]``.

A cursor comes from the client, so it is checked whole before any of it reaches the database:
anything but a cursor this store could have issued is refused with 400 naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Literal, TypeGuard

import orjson

from caliper_store.errors import InvalidQuery
from caliper_store.query.filters import ID_MAX
from caliper_store.storage.search import Position

CURSOR_VERSION = 1
# By event time, newest or oldest first; or by received time, oldest first (incremental pulls).
Order = Literal["asc", "desc", "received"]
ORDERS: tuple[Order, ...] = ("desc", "asc", "received")
CURSOR_PARAM = "cursor"
# An event cursor is about 110 characters; anything much longer was not issued here, and is
# refused before it is decoded, so a decode costs little whatever the client sends.
MAX_CURSOR_CHARS = 256
# The store's one form of a time (storage.utc_text), the only one a cursor may carry.
UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z", re.ASCII)
NOT_OURS = "cursor is not a cursor this store issued"


def _refuse(detail: str = NOT_OURS) -> InvalidQuery:
    return InvalidQuery(detail, field=CURSOR_PARAM)


def _encode(payload: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def _decode(text: str) -> list[object]:
    if len(text) > MAX_CURSOR_CHARS:
        raise _refuse()
    try:
        padded = text + "=" * (-len(text) % 4)
        decoded = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        payload = orjson.loads(decoded)
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise _refuse() from error
    if not isinstance(payload, list) or not payload or not _is_int(payload[0], CURSOR_VERSION):
        raise _refuse()
    return payload


def _is_int(value: object, expected: int | None = None) -> TypeGuard[int]:
    """An integer of JSON (not a boolean, not 1.0), equal to ``expected`` when given."""
    if type(value) is not int:
        return False
    return expected is None or value == expected


def _is_id(value: object) -> TypeGuard[int]:
    """A sequence number or id a BIGINT column can hold (orjson reads up to 2**64 - 1)."""
    return _is_int(value) and 0 <= value <= ID_MAX


def _is_time(value: object) -> TypeGuard[str]:
    if not isinstance(value, str) or UTC_TEXT.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:  # the right shape, but no such day or hour (2024-02-30, 25:00)
        return False
    return True


def encode_cursor(position: Position, order: Order, fingerprint: str) -> str:
    """The cursor that continues after ``position``."""
    return _encode([CURSOR_VERSION, position.time, position.seq, order, fingerprint])


def decode_cursor(text: str, order: Order, fingerprint: str) -> Position:
    """The position a cursor names, once every part of it is known to be what we issue.

    Raises:
        InvalidQuery: the text is no cursor, or it was made for other filters or order.
    """
    payload = _decode(text)
    if len(payload) != 5:
        raise _refuse("cursor is not an event cursor")
    _, event_time, seq, cursor_order, cursor_fingerprint = payload
    if (
        not _is_time(event_time)
        or not _is_id(seq)
        or cursor_order not in ORDERS
        or not isinstance(cursor_fingerprint, str)
    ):
        raise _refuse()
    if cursor_order != order or cursor_fingerprint != fingerprint:
        raise _refuse(
            "cursor belongs to a query with other filters or order; start again without it"
        )
    return Position(event_time, seq)


def encode_id_cursor(last_id: int, fingerprint: str) -> str:
    """The cursor of a page of quarantined items (newest first) that ended at ``last_id``."""
    return _encode([CURSOR_VERSION, "q", last_id, fingerprint])


def decode_id_cursor(text: str, fingerprint: str) -> int:
    """The id a quarantine cursor names, once every part of it is known to be what we issue.

    Raises:
        InvalidQuery: the text is no quarantine cursor, or it was made for other filters.
    """
    payload = _decode(text)
    if len(payload) != 4 or payload[1] != "q":
        raise _refuse("cursor is not a quarantine cursor")
    last_id, cursor_fingerprint = payload[2], payload[3]
    if not _is_id(last_id) or not isinstance(cursor_fingerprint, str):
        raise _refuse()
    if cursor_fingerprint != fingerprint:
        raise _refuse("cursor belongs to a query with other filters; start again without it")
    return last_id
