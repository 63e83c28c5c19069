"""The Caliper Sensor API endpoint: POST events, GET its configuration, dry-run validation."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caliper_store.errors import InvalidQuery, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from caliper_store.ingest import memory_bound, prepare_request, receipt_body, validate_body
from caliper_store.observability import count_receipt
from caliper_store.vocab import CORE_CONTEXTS, SUPPORTED_VERSIONS
from caliper_store.web.auth import require_scope
from caliper_store.web.budget import Reservation
from caliper_store.web.context import AppContext, context_of, utc_now_text

# Bodies above this are parsed on a worker thread so one huge batch cannot stall the event loop.
THREAD_PARSE_BYTES = 256 * 1024
JSON_MEDIA_TYPES = ("application/json", "application/ld+json")
RECEIPT_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# The 1EdTech certification suite posts to a path ending in /message.
INGEST_PATHS = frozenset({"/caliper", "/caliper/message"})


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        shown = media_type or "none"
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {shown}", field="Content-Type"
        )


async def read_body(
    request: Request, max_body_bytes: int, reservation: Reservation | None = None
) -> bytes:
    """The whole body, refusing more than ``max_body_bytes`` before reading it all.

    With a reservation, the bytes are reserved from the in-flight budget as they arrive.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise PayloadTooLarge(
            f"the body is {declared} bytes; the limit is {max_body_bytes}", field="body"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            raise PayloadTooLarge(
                f"the body exceeds the limit of {max_body_bytes} bytes", field="body"
            )
        if reservation is not None:
            reservation.grow_to(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _bounded_body(request: Request, context: AppContext, reservation: Reservation) -> bytes:
    """The body, with the bound on its parsed memory reserved before anyone parses it."""
    body = await read_body(request, context.limits.max_body_bytes, reservation)
    if len(body) > THREAD_PARSE_BYTES:
        bound = await run_in_threadpool(memory_bound, body, context.limits)
    else:
        bound = memory_bound(body, context.limits)
    reservation.grow_to(bound)
    return body


def wants_receipt(request: Request) -> bool:
    """Receipts are opt-in: the spec says a 200 body SHOULD be empty.

    Read before the body, so a malformed flag is refused before anything is stored.

    Raises:
        InvalidQuery: ``receipt`` is given twice or is no yes/no value.
    """
    sent = request.query_params.getlist("receipt")
    if len(sent) > 1 or (sent and sent[0].lower() not in RECEIPT_FLAGS):
        raise InvalidQuery(
            "receipt must be given once, as 1, true, yes, 0, false or no", field="receipt"
        )
    prefer = request.headers.get("prefer", "").lower()
    return (bool(sent) and RECEIPT_FLAGS[sent[0].lower()]) or "return=representation" in prefer


async def post_events(request: Request) -> Response:
    """Receive an envelope; answer 200 only once every item is committed or quarantined."""
    context = context_of(request)
    key = await context.authenticator.authenticate(request, is_cached=True)
    require_scope(key, "ingest")
    _require_json(request)
    is_receipt_wanted = wants_receipt(request)
    with context.budget.reservation() as reservation:
        body = await _bounded_body(request, context, reservation)
        received_at = utc_now_text()
        limits = context.limits
        if len(body) > THREAD_PARSE_BYTES:
            prepared = await run_in_threadpool(
                prepare_request,
                body,
                key=key,
                limits=limits,
                received_at=received_at,
                is_bounded=True,
                rules=context.privacy.rules,
            )
        else:
            prepared = prepare_request(
                body,
                key=key,
                limits=limits,
                received_at=received_at,
                is_bounded=True,
                rules=context.privacy.rules,
            )
        del body  # the rows hold what the commit needs: the bytes need not wait for it
        try:
            receipt = await context.writer.submit(prepared.request)
        except Unauthorized:
            context.authenticator.forget(request)
            raise
    count_receipt(receipt, key.id)
    if is_receipt_wanted:
        return JSONResponse(receipt_body(receipt, prepared.envelope))
    # Moodle treats any status but 200 as failure; the spec says the body SHOULD be empty.
    return Response(status_code=200)


async def validate_events(request: Request) -> Response:
    """Every ingest check, nothing stored: the full verdict for people building sensors."""
    context = context_of(request)
    key = await context.authenticator.authenticate(request, is_cached=False)
    require_scope(key, "ingest")
    _require_json(request)
    with context.budget.reservation() as reservation:
        body = await _bounded_body(request, context, reservation)
        verdict = await run_in_threadpool(
            validate_body,
            body,
            key=key,
            limits=context.limits,
            store=context.store,
            received_at=utc_now_text(),
            is_bounded=True,
            rules=context.privacy.rules,
        )
    return JSONResponse(verdict)


async def endpoint_config(request: Request) -> Response:
    """Caliper 1.2 section 6: an authorized GET answers with the endpoint's configuration."""
    context = context_of(request)
    await context.authenticator.authenticate(request, is_cached=False)
    return JSONResponse(
        {
            "caliperSupportedVersions": [CORE_CONTEXTS[v] for v in SUPPORTED_VERSIONS],
            "caliperMaximumPayloadSize": context.limits.max_body_bytes // 1024,
            "caliperSupportedExtensions": [],
        }
    )
