"""RFC 7807 problem responses: the one table from error class to HTTP status, type and title."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.errors import (
    AlreadyResolved,
    CaliperStoreError,
    EventConflict,
    Forbidden,
    InvalidQuery,
    MalformedEnvelope,
    MalformedRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    QueryTimeout,
    SchemaOutOfDate,
    StorageUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    UnsupportedVersion,
)
from caliper_store.observability import REQUEST_ID
from caliper_store.web.observe import route_template

logger = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "urn:caliper-store:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Set on an error once handle_unexpected has logged it: Starlette's error middleware answers the
# 500 through it and then re-raises, and uvicorn would log the same error a second time.
LOGGED_MARK = "_caliper_store_logged"

# error class -> (status, slug, title). Looked up along the class's MRO.
PROBLEMS: dict[type[CaliperStoreError], tuple[int, str, str]] = {
    MalformedEnvelope: (400, "malformed-envelope", "The body is not a Caliper envelope"),
    InvalidQuery: (400, "invalid-query", "A parameter or option is not valid"),
    MalformedRequest: (400, "malformed-request", "The request is malformed"),
    Unauthorized: (401, "unauthorized", "A valid, active API key is required"),
    Forbidden: (403, "forbidden", "The API key lacks the scope this needs"),
    NotFound: (404, "not-found", "Not found"),
    EventConflict: (409, "event-conflict", "An event id is already stored with other content"),
    AlreadyResolved: (409, "already-resolved", "The quarantined item was already resolved"),
    PayloadTooLarge: (413, "payload-too-large", "The request is larger than the store accepts"),
    UnsupportedMediaType: (415, "unsupported-media-type", "The body must be JSON"),
    UnsupportedVersion: (422, "unsupported-version", "This Caliper version is not supported"),
    Overloaded: (503, "overloaded", "The store is busy; retry later"),
    StorageUnavailable: (503, "storage-unavailable", "The database cannot take writes now"),
    QueryTimeout: (503, "query-timeout", "The query ran past the time limit"),
    SchemaOutOfDate: (503, "schema-out-of-date", "The database schema needs migrating"),
    CaliperStoreError: (400, "bad-request", "The request cannot be processed"),
}


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render an ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _problem_of(error: CaliperStoreError) -> tuple[int, str, str]:
    for cls in type(error).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    raise AssertionError(f"{type(error).__name__} has no problem")  # CaliperStoreError has one


def status_of(error: CaliperStoreError) -> int:
    """The HTTP status one of our errors answers with (for pages as for problems)."""
    return _problem_of(error)[0]


def response_for(error: CaliperStoreError) -> Response:
    """The problem response for one of our errors."""
    status, slug, title = _problem_of(error)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if error.field is not None:
        extra["field"] = error.field
    if isinstance(error, MalformedEnvelope | EventConflict) and error.errors:
        extra["errors"] = error.errors
    if isinstance(error, Overloaded | StorageUnavailable | QueryTimeout):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="caliper"'
    return problem_response(status, slug, title, error.detail, extra=extra, headers=headers)


def release_frames(error: BaseException) -> None:
    """Drop the locals of the finished frames an answered error's traceback holds.

    An error raised in a worker thread comes back through anyio's frame, whose future holds
    the error: a reference cycle through the traceback, so every local of every frame it
    passed (the request body among them) lives until the collector runs, and a server process
    collects rarely (``GC_YOUNG_THRESHOLD`` in ``web.app``). Before this, each refused 16 MiB
    body stayed in memory, and a key sending nothing else could exhaust it.
    """
    traceback.clear_frames(error.__traceback__)


async def handle_store_error(request: Request, error: Exception) -> Response:
    """Starlette exception handler for every CaliperStoreError."""
    assert isinstance(error, CaliperStoreError)
    release_frames(error)
    return response_for(error)


async def handle_http_error(request: Request, error: Exception) -> Response:
    """Starlette's own HTTP errors (404 route, 405 method) in the same problem shape."""
    status = getattr(error, "status_code", 500)
    detail = getattr(error, "detail", "") or "error"
    slug = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
    # A 405 carries the methods the route does serve (Allow, RFC 9110 section 15.5.6).
    headers = dict(getattr(error, "headers", None) or {})
    return problem_response(
        status,
        slug,
        str(detail),
        f"{request.method} {request.url.path}: {detail}",
        headers=headers,
    )


async def handle_unexpected(request: Request, error: Exception) -> Response:
    """The one catch-all: log with a request id (no body, no key), answer a 500 problem."""
    request_id = REQUEST_ID.get()
    logger.exception("unhandled error on %s %s", request.method, route_template(request.scope))
    setattr(error, LOGGED_MARK, True)
    release_frames(error)
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        f"an unexpected error occurred; nothing was acknowledged (request {request_id})",
        extra={"requestId": request_id},
    )


def is_logged(error: BaseException) -> bool:
    """Whether :func:`handle_unexpected` already logged (and answered) this error."""
    return getattr(error, LOGGED_MARK, False) is True


async def handle_disconnect(request: Request, error: Exception) -> Response:
    """A client that went away mid-body: nothing to answer and nothing wrong with the server."""
    logger.info(
        "client went away before its request was read: %s %s",
        request.method,
        route_template(request.scope),
    )
    return Response(status_code=400)  # nobody reads it; the server needs a response all the same
