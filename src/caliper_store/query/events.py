"""Event search: a query read from parameters, one keyset page of results, and their JSON form.

The same query serves ``GET /api/events`` and ``caliper-store events``. Results carry the
normalized columns under their column names (the names exports use too) and, when asked, the
raw event exactly as it was sent: its stored JSON text is spliced in unparsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from caliper_store.config import Settings, same_named
from caliper_store.errors import InvalidQuery
from caliper_store.ingest import normalize_id
from caliper_store.query.cursor import CURSOR_PARAM, ORDERS, Order, decode_cursor, encode_cursor
from caliper_store.query.filters import (
    FIELDS_BY_PARAM,
    EventFilter,
    build_filter,
    parse_int,
    refuse_nul,
)
from caliper_store.storage import Store
from caliper_store.storage.search import (
    RECORD_COLUMNS,
    EventRecord,
    OrderBy,
    Position,
    ReceiptRecord,
)

PAGE_PARAMS = ("limit", CURSOR_PARAM, "order", "raw")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """The limits of reading, from the settings of the same names."""

    default_page_events: int
    max_page_events: int
    max_filter_values: int
    max_read_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        """Take the limits out of the settings."""
        return same_named(cls, settings)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One page request: the filter, how many, which way, from where, raw or not."""

    filter: EventFilter
    limit: int
    order: Order
    after: Position | None
    with_raw: bool
    max_raw_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events and the cursor of the next (None when this is the last)."""

    events: list[EventRecord]
    next_cursor: str | None


def parse_flag(values: Sequence[str], name: str, *, default: bool) -> bool:
    """A boolean parameter: 1/true/yes/on or 0/false/no/off; absent means ``default``.

    Raises:
        InvalidQuery: naming the parameter.
    """
    if not values:
        return default
    word = values[-1].strip().lower()
    if word in TRUE_WORDS or word == "":
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidQuery(f"{name} must be true or false, got {values[-1][:40]!r}", field=name)


def parse_limit(values: Sequence[str], limits: QueryLimits) -> int:
    """The page size: default when absent, refused outside 1..max.

    Raises:
        InvalidQuery: naming ``limit``.
    """
    if not values:
        return limits.default_page_events
    return parse_int(values[-1], "limit", minimum=1, maximum=limits.max_page_events)


def parse_order(values: Sequence[str], default: Order = "desc") -> Order:
    """``asc`` or ``desc`` by event time, or ``received`` (by received time, oldest first).

    Raises:
        InvalidQuery: naming ``order``.
    """
    if not values:
        return default
    order = values[-1].lower()
    for known in ORDERS:
        if order == known:
            return known
    raise InvalidQuery(
        f"order must be asc, desc or received, got {values[-1][:20]!r}", field="order"
    )


def order_by(order: Order) -> OrderBy:
    """The time column an order sorts on."""
    return "received_at" if order == "received" else "event_time"


def refuse_unknown(params: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> None:
    """Refuse parameters that are neither a filter nor one of ``allowed``.

    A misspelt filter would otherwise filter nothing and silently return everything.

    Raises:
        InvalidQuery: naming the first unknown parameter.
    """
    for name in params:
        if name not in FIELDS_BY_PARAM and name not in allowed:
            raise InvalidQuery(f"unknown parameter {name!r}", field=name)


def parse_event_query(params: Mapping[str, Sequence[str]], limits: QueryLimits) -> EventQuery:
    """Read a page request from parameters (query string, or CLI flags keyed the same way).

    Raises:
        InvalidQuery: an unknown parameter or a value that cannot be read, naming it.
    """
    refuse_unknown(params, PAGE_PARAMS)
    event_filter = build_filter(params, max_values=limits.max_filter_values)
    order = parse_order(params.get("order", ()))
    cursor = [value for value in params.get(CURSOR_PARAM, ()) if value]
    after = decode_cursor(cursor[-1], order, event_filter.fingerprint()) if cursor else None
    return EventQuery(
        filter=event_filter,
        limit=parse_limit(params.get("limit", ()), limits),
        order=order,
        after=after,
        with_raw=parse_flag(params.get("raw", ()), "raw", default=False),
        max_raw_bytes=limits.max_read_bytes,
    )


def search_page(store: Store, query: EventQuery) -> Page:
    """One page of matching events, and the cursor of the next page."""
    batch = store.events.page(
        query.filter.conditions,
        after=query.after,
        is_descending=query.order == "desc",
        by=order_by(query.order),
        limit=query.limit + 1,
        with_raw=query.with_raw,
        max_raw_bytes=query.max_raw_bytes,
    )
    found = batch.records
    if len(found) <= query.limit and not batch.is_cut:
        return Page(found, None)
    # Past the limit, or cut short by max_read_bytes: the cursor continues after what is shown.
    shown = found[: query.limit]
    position = shown[-1].position(order_by(query.order))
    cursor = encode_cursor(position, query.order, query.filter.fingerprint())
    return Page(shown, cursor)


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event as the API, the CLI and NDJSON exports show it."""
    shown: dict[str, Any] = {name: getattr(record, name) for name in RECORD_COLUMNS}
    if record.raw is not None:
        # The stored text as is: parsing and re-serializing could change big numbers.
        shown["raw"] = orjson.Fragment(record.raw)
    return shown


def page_json(page: Page) -> dict[str, Any]:
    """A page as ``GET /api/events`` answers it."""
    return {
        "events": [event_json(record) for record in page.events],
        "next_cursor": page.next_cursor,
    }


def receipt_json(receipt: ReceiptRecord) -> dict[str, Any]:
    """The receipt of the request that delivered an event or item."""
    return {
        "id": receipt.id,
        "api_key_id": receipt.api_key_id,
        "sensor": receipt.sensor,
        "send_time": receipt.send_time,
        "data_version": receipt.data_version,
        "is_envelope": receipt.is_envelope,
        "received_at": receipt.received_at,
        "body_bytes": receipt.body_bytes,
        "item_count": receipt.item_count,
        "stored_count": receipt.stored_count,
        "duplicate_count": receipt.duplicate_count,
        "quarantined_count": receipt.quarantined_count,
    }


def find_event(store: Store, event_id: str) -> dict[str, Any] | None:
    """One event by id (as sent or as stored), raw included, with its receipt; None if absent.

    Raises:
        InvalidQuery: the id holds a NUL character, which no stored id can.
    """
    found = store.events.get(normalize_id(refuse_nul(event_id, "event_id")))
    if found is None:
        return None
    record, receipt = found
    return {
        "event": event_json(record),
        "receipt": receipt_json(receipt) if receipt is not None else None,
    }
