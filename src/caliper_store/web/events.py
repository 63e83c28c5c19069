"""Reading events back: search pages, one event with its receipt, streamed exports."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from caliper_store.errors import CaliperStoreError, NotFound
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

logger = logging.getLogger(__name__)


class ExportResponse(StreamingResponse):
    """A streamed export whose failure after the first byte cuts the connection, logged once.

    Once the status line is sent, the only honest signal left is to end the connection
    without the final chunk, so the client sees an incomplete body rather than a short file
    that looks whole. Raising instead would have Starlette's error middleware and uvicorn each
    log the same traceback.
    """

    def __init__(
        self, chunks: Iterator[bytes], *, path: str, media_type: str, headers: dict[str, str]
    ) -> None:
        super().__init__(chunks, media_type=media_type, headers=headers)
        self._path = path

    async def stream_response(self, send: Send) -> None:
        """Send the chunks; on a failure of the export itself, log and stop short."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        chunks = aiter(self.body_iterator)
        sent_bytes = 0
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except CaliperStoreError as error:  # already explained where it was raised
                logger.error(
                    "export of %s cut after %d bytes: %s", self._path, sent_bytes, error.detail
                )
                return
            except Exception:  # the one place a failure mid-stream can still be recorded
                logger.exception("export of %s cut after %d bytes", self._path, sent_bytes)
                return
            data = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
            await send({"type": "http.response.body", "body": data, "more_body": True})
            sent_bytes += len(data)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


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
    # The first batch is read before the answer starts, so its failure is still a 400 or 503.
    chunks = await run_in_threadpool(stream_export, context.store, wanted.filter, options)
    return ExportResponse(
        chunks,
        path=request.url.path,
        media_type=MEDIA_TYPES[wanted.format],
        headers={"Content-Disposition": f'attachment; filename="events{SUFFIXES[wanted.format]}"'},
    )
