"""Quarantine over HTTP: list and show items (read), replay and discard them (admin)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.errors import AlreadyResolved, InvalidQuery, MalformedEnvelope
from caliper_store.ingest import ReplayOutcome, prepare_replay, replay_outcome
from caliper_store.ingest.codec import parse_json
from caliper_store.query import (
    QueryLimits,
    discard_items,
    parse_item_id,
    parse_quarantine_query,
    quarantine_page,
    quarantine_page_json,
    show_item,
)
from caliper_store.query.filters import group_params
from caliper_store.storage import ApiKey, key_actor
from caliper_store.web.auth import require_read
from caliper_store.web.context import admin_of, context_of, utc_now_text
from caliper_store.web.ingest import read_body
from caliper_store.web.responses import json_response

# A discard note is a sentence or two; the body holds nothing else.
MAX_NOTE_BODY_BYTES = 16 * 1024


def _actor(key: ApiKey) -> str:
    """Who acted, as the audit trail names them."""
    return key_actor(key.id, key.label)


def _item_id(request: Request) -> int:
    """The item id of the path; the route takes any text, the id column 64 bits of digits."""
    return parse_item_id(request.path_params["item_id"])


async def list_items(request: Request) -> Response:
    """Quarantined items, newest first; held ones unless ``status`` says otherwise."""
    context = context_of(request)
    require_read(await context.authenticator.authenticate(request, is_cached=False))
    query = parse_quarantine_query(
        group_params(request.query_params.multi_items()),
        QueryLimits.from_settings(context.settings),
    )
    page = await run_in_threadpool(quarantine_page, context.store, query)
    return json_response(quarantine_page_json(page))


async def show(request: Request) -> Response:
    """One item: raw as sent, its reasons, its receipt and every decision taken on it."""
    context = context_of(request)
    require_read(await context.authenticator.authenticate(request, is_cached=False))
    shown = await run_in_threadpool(show_item, context.store, _item_id(request))
    return json_response(shown)


async def replay(request: Request) -> Response:
    """Run today's ingest rules on the item; store it as an event if it passes now."""
    context, key = await admin_of(request)
    item_id = _item_id(request)
    prepared = await run_in_threadpool(
        prepare_replay,
        context.store,
        item_id,
        limits=context.limits.items,
        actor=_actor(key),
        now=utc_now_text(),
        rules=context.privacy.rules,
    )
    if isinstance(prepared, ReplayOutcome):
        outcome = prepared
    else:
        # Through the group-commit writer: the writer thread owns the write connection.
        try:
            outcome = replay_outcome(item_id, await context.writer.submit(prepared))
        except AlreadyResolved as resolved:
            outcome = replay_outcome(item_id, resolved)
    if outcome.result == "already_resolved":
        raise AlreadyResolved(f"quarantined item {item_id} was already replayed or discarded")
    return json_response(outcome.as_json())


async def _note(request: Request) -> str | None:
    body = await read_body(request, MAX_NOTE_BODY_BYTES)
    if not body.strip():
        return None
    try:
        document = parse_json(body)
    except MalformedEnvelope as error:
        raise InvalidQuery('the body must be JSON: {"note": "why"}', field="note") from error
    note = document.get("note") if isinstance(document, dict) else None
    if note is not None and not isinstance(note, str):
        raise InvalidQuery("note must be a string", field="note")
    return note


async def discard(request: Request) -> Response:
    """Give up on a held item for good; the audit trail records who, when and why."""
    context, key = await admin_of(request)
    item_id = _item_id(request)
    note = await _note(request)
    discarded = await run_in_threadpool(
        discard_items, context.store, [item_id], actor=_actor(key), at=utc_now_text(), note=note
    )
    if item_id not in discarded:
        raise AlreadyResolved(f"quarantined item {item_id} was already replayed or discarded")
    return json_response({"id": item_id, "status": "discarded", "note": note})
