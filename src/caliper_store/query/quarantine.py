"""Quarantine listing: filters by status, reason, key and time, id-keyed pages, and JSON forms."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from caliper_store.errors import InvalidQuery, NotFound
from caliper_store.query.cursor import CURSOR_PARAM, decode_id_cursor, encode_id_cursor
from caliper_store.query.events import QueryLimits, parse_flag, parse_limit, receipt_json
from caliper_store.query.filters import (
    KEY_ID_MAX,
    parse_int,
    parse_time,
    refuse_nul,
    require_in_range,
)
from caliper_store.storage import Store
from caliper_store.storage.search import (
    QUARANTINE_STATUSES,
    AuditRecord,
    QuarantineFilter,
    QuarantineRecord,
)

QUARANTINE_PARAMS = (
    "status",
    "reason",
    "keyId",
    "receivedSince",
    "receivedUntil",
    "limit",
    CURSOR_PARAM,
    "raw",
)
ANY_STATUS = "any"
ITEM_ID_PARAM = "item_id"


@dataclass(frozen=True, slots=True)
class QuarantineQuery:
    """One page request over quarantined items, newest first."""

    selection: QuarantineFilter
    limit: int
    before_id: int | None
    with_raw: bool


@dataclass(frozen=True, slots=True)
class QuarantinePage:
    """One page of quarantined items and the cursor of the next."""

    items: list[QuarantineRecord]
    next_cursor: str | None
    with_raw: bool


def _statuses(values: Sequence[str]) -> tuple[str, ...]:
    if not values:
        return ("held",)
    if ANY_STATUS in values:
        return ()
    for value in values:
        if value not in QUARANTINE_STATUSES:
            raise InvalidQuery(
                f"status must be one of {', '.join(QUARANTINE_STATUSES)} or {ANY_STATUS}, "
                f"got {value[:20]!r}",
                field="status",
            )
    return tuple(dict.fromkeys(values))


def _key_ids(values: Sequence[str]) -> tuple[int, ...]:
    return tuple(parse_int(value, "keyId", maximum=KEY_ID_MAX) for value in values)


def parse_item_id(text: str) -> int:
    """A quarantined item's id from a URL path: digits only, read at a cost bounded by length.

    Starlette's ``int`` path converter took any run of digits and answered 500 on more than
    4,300 of them (Python's limit on reading an integer from text).

    Raises:
        InvalidQuery: naming ``item_id``.
    """
    return parse_int(text, ITEM_ID_PARAM)


def check_item_id(item_id: int, name: str = ITEM_ID_PARAM) -> int:
    """A quarantined item's id, once it is known to fit the id column (64 bits).

    An id no row can have would otherwise reach the driver, which raises instead of finding
    nothing; an id in range that names no item is a 404 for the caller to give.

    Raises:
        InvalidQuery: naming ``name``.
    """
    return require_in_range(item_id, name)


def _one_time(values: Sequence[str], name: str) -> str | None:
    return parse_time(values[-1], name) if values else None


def build_quarantine_filter(params: Mapping[str, Sequence[str]]) -> QuarantineFilter:
    """The item filter of quarantine parameters (status defaults to ``held``).

    Raises:
        InvalidQuery: a value that cannot be read, naming its parameter.
    """
    return QuarantineFilter(
        statuses=_statuses([v for v in params.get("status", ()) if v]),
        reasons=tuple(refuse_nul(v, "reason") for v in params.get("reason", ()) if v),
        api_key_ids=_key_ids([v for v in params.get("keyId", ()) if v]),
        received_from=_one_time([v for v in params.get("receivedSince", ()) if v], "receivedSince"),
        received_to=_one_time([v for v in params.get("receivedUntil", ()) if v], "receivedUntil"),
    )


def _fingerprint(selection: QuarantineFilter) -> str:
    shown = [
        selection.statuses,
        selection.reasons,
        selection.api_key_ids,
        selection.received_from,
        selection.received_to,
    ]
    return hashlib.sha256(orjson.dumps(shown)).hexdigest()[:16]


def parse_quarantine_query(
    params: Mapping[str, Sequence[str]], limits: QueryLimits
) -> QuarantineQuery:
    """Read a quarantine page request from parameters.

    Raises:
        InvalidQuery: an unknown parameter or a value that cannot be read, naming it.
    """
    for name in params:
        if name not in QUARANTINE_PARAMS:
            raise InvalidQuery(f"unknown parameter {name!r}", field=name)
    selection = build_quarantine_filter(params)
    cursor = [value for value in params.get(CURSOR_PARAM, ()) if value]
    return QuarantineQuery(
        selection=selection,
        limit=parse_limit(params.get("limit", ()), limits),
        before_id=decode_id_cursor(cursor[-1], _fingerprint(selection)) if cursor else None,
        with_raw=parse_flag(params.get("raw", ()), "raw", default=False),
    )


def quarantine_page(store: Store, query: QuarantineQuery) -> QuarantinePage:
    """One page of matching items, newest first."""
    found = store.quarantine.page(query.selection, before_id=query.before_id, limit=query.limit + 1)
    if len(found) <= query.limit:
        return QuarantinePage(found, None, query.with_raw)
    shown = found[: query.limit]
    return QuarantinePage(
        shown, encode_id_cursor(shown[-1].id, _fingerprint(query.selection)), query.with_raw
    )


def item_json(item: QuarantineRecord, *, with_raw: bool) -> dict[str, Any]:
    """A quarantined item as the API and the CLI show it."""
    shown: dict[str, Any] = {
        "id": item.id,
        "status": item.status,
        "reason": item.reason,
        "reasons": item.reasons,
        "event_id": item.event_id,
        "caliper_version": item.caliper_version,
        "api_key_id": item.api_key_id,
        "receipt_id": item.receipt_id,
        "item_index": item.item_index,
        "received_at": item.received_at,
        "resolved_at": item.resolved_at,
    }
    if with_raw:
        shown["raw"] = orjson.Fragment(item.raw)
    return shown


def quarantine_page_json(page: QuarantinePage) -> dict[str, Any]:
    """A page as ``GET /api/quarantine`` answers it."""
    return {
        "items": [item_json(item, with_raw=page.with_raw) for item in page.items],
        "next_cursor": page.next_cursor,
    }


def audit_json(entry: AuditRecord) -> dict[str, Any]:
    """One decision on an item."""
    return {
        "action": entry.action,
        "actor": entry.actor,
        "at": entry.at,
        "outcome": entry.outcome,
        "event_id": entry.event_id,
        "note": entry.note,
    }


def show_item(store: Store, quarantine_id: int) -> dict[str, Any]:
    """One item with its raw form, the receipt it came with and its audit trail.

    Raises:
        InvalidQuery: the id is out of range of any id.
        NotFound: no item has this id.
    """
    found = store.quarantine.get(check_item_id(quarantine_id))
    if found is None:
        raise NotFound(f"no quarantined item with id {quarantine_id}")
    item, receipt, audit = found
    shown = item_json(item, with_raw=True)
    shown["receipt"] = receipt_json(receipt) if receipt is not None else None
    shown["audit"] = [audit_json(entry) for entry in audit]
    return shown


def discard_items(
    store: Store, ids: Sequence[int], *, actor: str, at: str, note: str | None
) -> list[int]:
    """Discard held items, leaving an audit row each; return the ids discarded.

    Raises:
        InvalidQuery: an id is out of range of any id.
        NotFound: one of the ids names no item.
    """
    for item_id in ids:
        check_item_id(item_id)
    existing = set(store.quarantine.ids(QuarantineFilter(statuses=(), ids=tuple(ids))))
    missing = sorted(set(ids) - existing)
    if missing:
        raise NotFound(f"no quarantined item with id {', '.join(map(str, missing))}")
    return store.quarantine.discard(ids, actor=actor, at=at, note=note)
