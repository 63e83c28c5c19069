"""What a request is called in logs and metrics: its route template and its request id."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

from caliper_store.web.ingest import INGEST_PATHS

REQUEST_ID_HEADER = b"x-request-id"
# The route label of a request no route matched: never its path, which anyone can make up.
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/persons/{person_id:path}/export``).

    Never the path itself: paths hold actor ids and event ids, and anyone can make one up.
    """
    route: BaseRoute | None = scope.get("route")
    if isinstance(route, Route | Mount):
        return route.path
    if scope["path"] in INGEST_PATHS:
        return str(scope["path"])
    return UNMATCHED_ROUTE


def forwarded_request_id(scope: Scope) -> bytes | None:
    """The ``X-Request-Id`` a reverse proxy set, if any."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return bytes(value)
    return None
