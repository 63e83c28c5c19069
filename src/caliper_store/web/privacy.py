"""Admin API for privacy: a person's export and erase, and the audit log."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.errors import InvalidQuery
from caliper_store.privacy import PersonTraces, erase_person, export_lines, find_person
from caliper_store.storage import AUDIT_ACTIONS, key_actor
from caliper_store.web.context import AppContext, admin_of, utc_now_text
from caliper_store.web.ingest import RECEIPT_FLAGS as YES_NO_FLAGS
from caliper_store.web.responses import json_response

NDJSON_MEDIA_TYPE = "application/x-ndjson"
DEFAULT_AUDIT_ENTRIES = 50
MAX_AUDIT_ENTRIES = 1_000


def _person_id(request: Request, context: AppContext) -> str:
    person_id: str = request.path_params["person_id"]
    limit = context.settings.max_id_chars
    if not person_id or len(person_id) > limit:
        raise InvalidQuery(f"the person id must be 1 to {limit} characters", field="person_id")
    return person_id


def _flag(request: Request, name: str, *, default: bool) -> bool:
    sent = request.query_params.getlist(name)
    if not sent:
        return default
    if len(sent) > 1 or sent[0].lower() not in YES_NO_FLAGS:
        raise InvalidQuery(f"{name} must be given once, as true or false", field=name)
    return YES_NO_FLAGS[sent[0].lower()]


def _int(request: Request, name: str, *, default: int | None, low: int, high: int) -> int | None:
    sent = request.query_params.getlist(name)
    if not sent:
        return default
    if len(sent) > 1 or not sent[0].isdigit() or not low <= int(sent[0]) <= high:
        raise InvalidQuery(f"{name} must be one whole number from {low} to {high}", field=name)
    return int(sent[0])


def _traces(context: AppContext, person_id: str) -> PersonTraces:
    with context.store.snapshot(is_time_limited=False) as snapshot:
        return find_person(snapshot, person_id, context.privacy.pseudonymizer)


async def export_person(request: Request) -> Response:
    """Every event, quarantined item and entity that names the person, as NDJSON."""
    context, _ = await admin_of(request)
    person_id = _person_id(request, context)

    def build() -> tuple[PersonTraces, bytes]:
        traces = _traces(context, person_id)
        return traces, b"".join(export_lines(context.store, traces))

    traces, body = await run_in_threadpool(build)
    headers = {"X-Caliper-Person-Ids": str(len(traces.ids))}
    return Response(body, media_type=NDJSON_MEDIA_TYPE, headers=headers)


async def erase_person_route(request: Request) -> Response:
    """Erase everything that names the person; only counts unless ``dryRun=false``."""
    context, key = await admin_of(request)
    person_id = _person_id(request, context)
    is_dry_run = _flag(request, "dryRun", default=True)

    def run() -> dict[str, object]:
        traces = _traces(context, person_id)
        result = erase_person(
            context.store,
            traces,
            pseudonymizer=context.privacy.pseudonymizer,
            is_dry_run=is_dry_run,
            batch_events=context.settings.purge_batch_events,
            batch_ms=context.settings.purge_batch_ms,
            actor=key_actor(key.id, key.label),
            at=utc_now_text(),
        )
        return {**traces.as_json(), **result.as_json()}

    return json_response(await run_in_threadpool(run))


async def list_audit(request: Request) -> Response:
    """The audit log, newest first; ``before`` pages back, ``action`` filters."""
    context, _ = await admin_of(request)
    limit = _int(request, "limit", default=DEFAULT_AUDIT_ENTRIES, low=1, high=MAX_AUDIT_ENTRIES)
    before = _int(request, "before", default=None, low=1, high=2**63 - 1)
    action = request.query_params.get("action")
    if action is not None and action not in AUDIT_ACTIONS:
        raise InvalidQuery(f"action must be one of {', '.join(AUDIT_ACTIONS)}", field="action")
    assert limit is not None
    entries = await run_in_threadpool(
        context.store.audit_entries, limit=limit, before_id=before, action=action
    )
    shown = [entry.as_json() for entry in entries]
    next_before = entries[-1].id if len(entries) == limit else None
    return json_response({"entries": shown, "next_before": next_before})
