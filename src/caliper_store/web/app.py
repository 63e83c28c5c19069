"""The ASGI application: routes, error handlers and the lifespan, assembled from settings."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from caliper_store.config import Settings, settings_from_environment, with_session_secret
from caliper_store.errors import CaliperStoreError
from caliper_store.forward import Forwarding, Relay, relay_options
from caliper_store.ingest import IngestLimits
from caliper_store.observability import configure_logging, process_stopped
from caliper_store.privacy import RetentionPolicy, load_privacy, purge_on_schedule, take_into_use
from caliper_store.storage import GroupCommitWriter, Store, open_store, utc_text
from caliper_store.storage.writer import Committer, ThreadCommitter
from caliper_store.storage.writer_process import WriterProcess
from caliper_store.web import (
    dashboard,
    events,
    health,
    ingest,
    metrics,
    openapi,
    privacy,
    quarantine,
    reports,
)
from caliper_store.web.auth import KeyAuthenticator
from caliper_store.web.budget import InflightBudget
from caliper_store.web.context import AppContext
from caliper_store.web.fastpath import CaliperStarlette
from caliper_store.web.problems import (
    handle_disconnect,
    handle_http_error,
    handle_store_error,
    handle_unexpected,
)

logger = logging.getLogger(__name__)

API_ROUTES: list[Route] = [
    Route("/caliper", ingest.post_events, methods=["POST"]),
    Route("/caliper", ingest.endpoint_config, methods=["GET"]),
    # The 1EdTech certification suite posts to a path ending in /message.
    Route("/caliper/message", ingest.post_events, methods=["POST"]),
    Route("/caliper/message", ingest.endpoint_config, methods=["GET"]),
    Route("/caliper/validate", ingest.validate_events, methods=["POST"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/api/events", events.list_events, methods=["GET"]),
    Route("/api/events/{event_id:path}", events.get_event, methods=["GET"]),
    Route("/api/export", events.export_events, methods=["GET"]),
    Route("/api/quarantine", quarantine.list_items, methods=["GET"]),
    Route("/api/quarantine/{item_id}", quarantine.show, methods=["GET"]),
    Route("/api/quarantine/{item_id}/replay", quarantine.replay, methods=["POST"]),
    Route("/api/quarantine/{item_id}/discard", quarantine.discard, methods=["POST"]),
    *(Route(path, reports.get_report, methods=["GET"]) for path in reports.REPORT_PATHS),
    Route("/api/persons/{person_id:path}/export", privacy.export_person, methods=["GET"]),
    Route("/api/persons/{person_id:path}/erase", privacy.erase_person_route, methods=["POST"]),
    Route("/api/audit", privacy.list_audit, methods=["GET"]),
    Route("/api/openapi.json", openapi.openapi_json, methods=["GET"]),
    Route("/metrics", metrics.metrics, methods=["GET"]),
]
# The dashboard (web/dashboard.py): HTML pages behind a login with a read or admin key, and
# the stylesheet and scripts they load (public: they hold no data).
DASHBOARD_ROUTES: list[BaseRoute] = [
    Route("/login", dashboard.login_form, methods=["GET"]),
    Route("/login", dashboard.login, methods=["POST"]),
    Route("/logout", dashboard.logout, methods=["POST"]),
    Route("/", dashboard.overview, methods=["GET"]),
    Route("/course", dashboard.course, methods=["GET"]),
    Route("/course/students.csv", dashboard.course_csv, methods=["GET"]),
    Route("/student", dashboard.student, methods=["GET"]),
    Route("/delivery", dashboard.delivery, methods=["GET"]),
    Route("/quarantine", dashboard.quarantine, methods=["GET"]),
    Mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static"),
]
ROUTES: list[BaseRoute] = [*API_ROUTES, *DASHBOARD_ROUTES]

# How long a thread may keep the GIL while another waits for it. The writer gives the GIL up
# around every SQLite call and must win it back from the event loop each time; at Python's
# default of 5 ms, a group commit of 64 one-event requests took 41 ms beside a thread busy in
# Python, and 11 ms at 1 ms (`python bench/writer.py canvas --busy`).
GIL_SWITCH_INTERVAL_S = 0.001

# Every request body becomes thousands of short-lived dicts, and at the collector's default (a
# young collection every 700 new containers, and older ones after them) it kept walking the
# requests waiting for a commit: PostgreSQL Learn, 2 processes, 14,300 events/s at the default
# and 16,100 at 50,000, with the server's CPU an event down by a fifth. Ingest makes almost
# no reference cycles, so collecting less often costs next to no memory.
GC_YOUNG_THRESHOLD = 50_000


def tune_for_ingest() -> None:
    """Process-wide interpreter settings for a server process (see the two constants above)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()  # start-up objects (modules, schema, vocabulary) are never walked again
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def allowed_methods(scope: Scope) -> str:
    """Every method some route serves at this path, for a 405's ``Allow`` header.

    Starlette answers 405 from the first route whose path matches, naming its methods only,
    and ``/caliper`` has one route for POST and one for GET.
    """
    methods: set[str] = set()
    for route in ROUTES:
        match, _ = route.matches(scope)
        if match is not Match.NONE and isinstance(route, Route) and route.methods:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def handle_routing_error(request: Request, error: Exception) -> Response:
    """Starlette's 404 and 405 as problems; a 405 names every method the path serves."""
    response = await handle_http_error(request, error)
    if response.status_code == 405:
        response.headers["Allow"] = allowed_methods(request.scope)
    return response


PROBLEM_HANDLERS = {
    CaliperStoreError: handle_store_error,
    ClientDisconnect: handle_disconnect,
    HTTPException: handle_routing_error,
    Exception: handle_unexpected,
}


def _committer(settings: Settings, store: Store) -> Committer:
    """The group commit's home for this backend and setting (see ``writer_process``)."""
    where = settings.writer_process
    if where == "auto":
        where = "process" if store.backend == "sqlite" else "thread"
    return WriterProcess(settings) if where == "process" else ThreadCommitter(store)


def _start_purge_schedule(store: Store, settings: Settings) -> asyncio.Task[None] | None:
    """The scheduled purge, when a retention is set and the schedule is on."""
    if not RetentionPolicy.from_settings(settings).is_set or settings.purge_every_hours == 0:
        return None
    return asyncio.create_task(
        purge_on_schedule(store, settings, now=lambda: datetime.now(UTC)), name="purge"
    )


def _start_forwarding(store: Store, settings: Settings) -> Forwarding | None:
    """The relay in a thread of this process (it forwards only while it holds the lease)."""
    if not settings.forward_in_serve:
        return None
    return Forwarding.start(Relay(store.forwarding, relay_options(settings)))


def create_app(settings: Settings) -> Starlette:
    """Build the application for these settings; nothing is opened until the lifespan starts."""
    settings = with_session_secret(settings)  # set by `serve` already, for every worker alike

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppContext]]:
        store = open_store(settings)
        try:
            # Zero set-up: a new database gets the current schema; an old one must be migrated.
            await run_in_threadpool(store.require_current_schema, create_if_empty=True)
            await run_in_threadpool(store.prepare_for_traffic, datetime.now(UTC))
            # A broken rules file stops the start here: nothing is stored unfiltered.
            privacy = await run_in_threadpool(
                take_into_use, load_privacy(settings), store, utc_text(datetime.now(UTC))
            )
            writer = GroupCommitWriter(
                _committer(settings, store),
                queue_events=settings.writer_queue_events,
                batch_events=settings.writer_batch_events,
                retry_after_s=settings.retry_after_s,
            )
            writer.start()
            try:
                context = AppContext(
                    settings=settings,
                    store=store,
                    writer=writer,
                    authenticator=KeyAuthenticator(store.keys),
                    limits=IngestLimits.from_settings(settings),
                    budget=InflightBudget(settings.max_inflight_bytes, settings.retry_after_s),
                    privacy=privacy,
                )
                tune_for_ingest()
                purging = _start_purge_schedule(store, settings)
                forwarding = _start_forwarding(store, settings)
                logger.info("caliper-store ready on %s", store.backend)
                try:
                    yield {"context": context}
                finally:
                    if purging is not None:
                        purging.cancel()
                    if forwarding is not None:
                        await run_in_threadpool(forwarding.stop)
            finally:
                await run_in_threadpool(writer.stop)
        finally:
            store.close()
            process_stopped()

    return CaliperStarlette(
        routes=ROUTES,
        exception_handlers=PROBLEM_HANDLERS,
        lifespan=lifespan,
    )


def app_from_environment() -> Starlette:
    """Zero-argument factory for uvicorn workers: each builds its app from the environment."""
    settings = settings_from_environment()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
