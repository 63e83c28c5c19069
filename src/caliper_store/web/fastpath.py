"""``POST /caliper`` straight to its handler, around Starlette's middleware and router.

Canvas sends one event per request, so the event loop's cost per request sets how soon a
burst of requests reaches the writer. Starlette wraps every request in its error and exception
middleware, its route table and its request wrapper; without them, Canvas envelopes over 64
connections went from 4,857 / 4,906 / 5,147 to 5,013 / 5,394 / 5,269 events/s in alternating
runs. Errors become the same problem responses as on the Starlette path, and every other
request still takes that path.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from caliper_store.errors import CaliperStoreError
from caliper_store.observability import REQUEST_ID, observe_request, request_id_from
from caliper_store.web.ingest import INGEST_PATHS, post_events
from caliper_store.web.observe import REQUEST_ID_HEADER, forwarded_request_id, route_template
from caliper_store.web.problems import (
    handle_disconnect,
    handle_unexpected,
    is_logged,
    release_frames,
    response_for,
)


class CaliperStarlette(Starlette):
    """Starlette, with the ingest endpoint answered before the middleware stack.

    Every HTTP request gets a request id (a proxy's well-formed ``X-Request-Id``, or a new one)
    for its log lines and its response's ``X-Request-Id``, and its time in the request metric.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Give the request its id and measure it, then serve it."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request_id = request_id_from(forwarded_request_id(scope))
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # if no response starts, the server answers 500 itself
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self._serve(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            observe_request(
                route_template(scope), scope["method"], status, time.perf_counter() - started
            )

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``POST /caliper`` directly; hand everything else to Starlette."""
        is_ingest = (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in INGEST_PATHS
        )
        if not is_ingest:
            try:
                await super().__call__(scope, receive, send)
            except Exception as error:
                # Starlette answered this 500 through handle_unexpected, which logged it, and
                # re-raised it for the server to log again: once is enough.
                if not is_logged(error):
                    raise
            return
        scope["app"] = self
        request = Request(scope, receive, send)
        try:
            response = await post_events(request)
        except CaliperStoreError as error:
            release_frames(error)
            response = response_for(error)
        except ClientDisconnect as error:
            response = await handle_disconnect(request, error)
        except Exception as error:  # the same catch-all as the Starlette path
            response = await handle_unexpected(request, error)
        await response(scope, receive, send)
