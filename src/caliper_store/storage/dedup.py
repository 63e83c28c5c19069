"""What makes two events with one id the same event: their canonical content, id spelling aside.

The content hash of an event is taken over its JSON as sent, id included, so rows stored before
ids were compared in one form keep the hash they were stored with. An event id is compared in
one canonical form (``urn:uuid:`` and a lower-case UUID), so a re-send may spell the id another
way (upper case, ``URN:UUID:``, the plain UUID of a ``urn:uuid:`` id) and differ in nothing else;
only when the hashes differ are the other spellings tried, so the common path pays nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

URN_UUID = "urn:uuid:"
ID_KEYS = ("id", "@id")  # Caliper 1.1+ and 1.0


def content_hash(value: Any) -> str:
    """A hex SHA-256 of the item's canonical JSON (sorted keys): equal content, equal hash."""
    try:
        canonical = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = json.dumps(
            value, ensure_ascii=True, separators=(",", ":"), sort_keys=True
        ).encode("ascii")
    return hashlib.sha256(canonical).hexdigest()


def id_spellings(event_id: str) -> tuple[str, ...]:
    """Every spelling a producer may give the canonical id ``event_id`` (none for other ids)."""
    if not event_id.startswith(URN_UUID):
        return ()
    plain = event_id[len(URN_UUID) :]
    cases = (plain, plain.upper())
    return tuple(prefix + case for prefix in ("", URN_UUID, "URN:UUID:") for case in cases)


def is_same_content(raw: str, event_id: str, content_hash_of_raw: str, stored_hash: str) -> bool:
    """Whether the event ``raw`` (canonical id ``event_id``) is the one stored as ``stored_hash``.

    Raises nothing: a raw that cannot be read back is simply other content.
    """
    if stored_hash == content_hash_of_raw:
        return True
    spellings = id_spellings(event_id)
    if not spellings:
        return False
    try:
        item = json.loads(raw)  # the standard library keeps integers of any size exact
    except ValueError:
        return False
    if not isinstance(item, dict):
        return False
    for key in ID_KEYS:
        sent = item.get(key)
        if isinstance(sent, str) and sent in spellings:
            for spelling in spellings:
                if spelling != sent and content_hash({**item, key: spelling}) == stored_hash:
                    return True
    return False
