"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from caliper_store.observability import error_summary
from caliper_store.web.context import context_of
from caliper_store.web.problems import problem_response

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    """The process is up and serving HTTP; never touches the database."""
    return JSONResponse({"status": "ok", "queuedEvents": context_of(request).writer.queued_events})


async def readyz(request: Request) -> Response:
    """The database answers and accepts a write transaction."""
    context = context_of(request)
    try:
        await run_in_threadpool(context.store.check_ready)
    except Exception as error:  # any database failure means "not ready"
        logger.warning("readiness check failed: %s", error_summary(error))
        return problem_response(
            503,
            "not-ready",
            "The database is not reachable or not writable",
            "readiness check failed; see the server log",
            extra={"ready": False},
            headers={"Retry-After": str(context.settings.retry_after_s)},
        )
    return JSONResponse(
        {
            "ready": True,
            "backend": context.store.backend,
            "queuedEvents": context.writer.queued_events,
        }
    )
