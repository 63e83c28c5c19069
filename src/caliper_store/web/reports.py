"""Reports over HTTP: ``GET /api/reports/<name>`` as JSON, or CSV with ``format=csv``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.errors import InvalidQuery
from caliper_store.query import group_params
from caliper_store.reports import REPORTS, report_csv, run_report
from caliper_store.web.auth import require_read
from caliper_store.web.context import context_of
from caliper_store.web.responses import json_response

REPORT_FORMATS = ("json", "csv")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# One route per report (another name is the router's 404), so the OpenAPI document can give
# each the parameters it takes.
REPORT_PATHS = tuple(f"/api/reports/{spec.name}" for spec in REPORTS)


def _format(values: list[str]) -> str:
    if len(values) > 1:
        raise InvalidQuery("format may be given once", field="format")
    chosen = values[0] if values and values[0] != "" else "json"
    if chosen not in REPORT_FORMATS:
        raise InvalidQuery(
            f"format must be one of {', '.join(REPORT_FORMATS)}, got {chosen[:20]!r}",
            field="format",
        )
    return chosen


async def get_report(request: Request) -> Response:
    """One report, computed from one snapshot of the store (read or admin key)."""
    context = context_of(request)
    require_read(await context.authenticator.authenticate(request, is_cached=False))
    name = request.url.path.removeprefix("/api/reports/")
    values = group_params(request.query_params.multi_items())
    chosen = _format(values.pop("format", []))
    report = await run_in_threadpool(run_report, context.store, name, values, context.settings)
    if chosen == "csv":
        return Response(
            report_csv(report),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return json_response(report.as_json())
