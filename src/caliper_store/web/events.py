"""Reading events back: search pages, one event with its receipt, streamed exports."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from caliper_store.errors import NotFound
from caliper_store.query import (
    MEDIA_TYPES,
    SUFFIXES,
    ExportOptions,
    QueryLimits,
    find_event,
    page_json,
    parse_event_query,
    parse_export_request,
    search_page,
    stream_export,
)
from caliper_store.query.filters import group_params
from caliper_store.web.auth import require_read
from caliper_store.web.context import AppContext, context_of
from caliper_store.web.responses import json_response


async def _reader(request: Request) -> AppContext:
    context = context_of(request)
    key = await context.authenticator.authenticate(request, is_cached=False)
    require_read(key)
    return context


async def list_events(request: Request) -> Response:
    """One page of events matching the filters, newest first unless ``order=asc``."""
    context = await _reader(request)
    query = parse_event_query(
        group_params(request.query_params.multi_items()),
        QueryLimits.from_settings(context.settings),
    )
    page = await run_in_threadpool(search_page, context.store, query)
    return json_response(page_json(page))


async def get_event(request: Request) -> Response:
    """One event, raw as it was sent, with the receipt of the request that brought it."""
    context = await _reader(request)
    event_id: str = request.path_params["event_id"]
    found = await run_in_threadpool(find_event, context.store, event_id)
    if found is None:
        raise NotFound(f"no event with id {event_id[:200]!r}", field="event_id")
    return json_response(found)


async def export_events(request: Request) -> Response:
    """Every event matching the filters as NDJSON, CSV or Parquet, streamed as it is read."""
    context = await _reader(request)
    wanted = parse_export_request(
        group_params(request.query_params.multi_items()),
        QueryLimits.from_settings(context.settings),
    )
    options = ExportOptions.from_settings(
        context.settings, wanted.format, with_raw=wanted.with_raw, by=wanted.by
    )
    return StreamingResponse(
        stream_export(context.store, wanted.filter, options),
        media_type=MEDIA_TYPES[wanted.format],
        headers={"Content-Disposition": f'attachment; filename="events{SUFFIXES[wanted.format]}"'},
    )
