"""The dashboard: server-rendered pages over the reports, behind a login with a read key.

Every page is plain HTML that works with JavaScript off (tables sort by a link, CSV is a
download); only the charts need it, drawn by uPlot, which the package ships. Pages name no
other origin, and a Content-Security-Policy of 'self' tells the browser to load nothing from one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from caliper_store.errors import CaliperStoreError, InvalidQuery
from caliper_store.forward import destination_statuses
from caliper_store.query import (
    QueryLimits,
    group_params,
    parse_event_query,
    parse_quarantine_query,
    quarantine_page,
    search_page,
)
from caliper_store.reports import Report, report_csv, run_report, run_reports
from caliper_store.storage import micros_text, utc_micros
from caliper_store.web.context import AppContext, context_of
from caliper_store.web.problems import release_frames, status_of
from caliper_store.web.session import (
    Session,
    SessionSigner,
    check_login,
    clear_session_cookie,
    current_session,
    set_session_cookie,
)

STATIC_DIR = Path(__file__).parent / "static"
# A login form holds one key; anything longer is not one.
MAX_LOGIN_BODY_BYTES = 4 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Events shown on a student's timeline (newest first).
TIMELINE_EVENTS = 100
QUARANTINE_ITEMS = 100
# Most moments a chart's x axis holds with every day (hour) of its period; beyond, only those
# with data.
MAX_CHART_POINTS = 5_000
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

Handler = Callable[[Request, AppContext, Session], Awaitable[Response]]


@cache
def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("caliper_store.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["json_data"] = lambda value: orjson.dumps(value).decode("utf-8")
    environment.globals["url"] = _url
    return environment


def _url(path: str, **params: Any) -> str:
    """A link within the dashboard, with its query string (None values left out)."""
    kept = {name: value for name, value in params.items() if value not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def signer_of(context: AppContext) -> SessionSigner:
    """The session signer of this server's settings."""
    settings = context.settings
    return SessionSigner(settings.session_secret, max_age_hours=settings.session_max_age_hours)


def _page(
    template: str, *, status_code: int = 200, started: float | None = None, **values: Any
) -> HTMLResponse:
    body = _templates().get_template(template).render(**values)
    headers = dict(PAGE_HEADERS)
    if started is not None:  # server time, as a browser's developer tools show it
        headers["Server-Timing"] = f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
    return HTMLResponse(body, status_code=status_code, headers=headers)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(_url("/login", next=target), status_code=303, headers=PAGE_HEADERS)


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A dashboard page: logged in or redirected to the login; bad parameters a 400 page."""

    async def endpoint(request: Request) -> Response:
        context = context_of(request)
        session = await current_session(request, signer_of(context), context.store.keys)
        if session is None:
            return _login_redirect(request)
        try:
            return await handler(request, context, session)
        except CaliperStoreError as error:  # a bad parameter, a report past the time limit
            release_frames(error)
            status = status_of(error)
            return _page(
                "error.html", status_code=status, session=session, error=error.detail, title="Error"
            )

    endpoint.__doc__ = handler.__doc__
    return endpoint


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this server only, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_form(request: Request) -> Response:
    """The login page: a read or admin key."""
    return _page("login.html", next=_safe_next(request.query_params.get("next")), title="Log in")


async def login(request: Request) -> Response:
    """Check the key; on success set the session cookie and go where the user was going."""
    context = context_of(request)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY_BYTES:
            break
    form = parse_qs(body[:MAX_LOGIN_BODY_BYTES].decode("utf-8", "replace"))
    target = _safe_next(next(iter(form.get("next", [])), None))
    key = await check_login(context.store.keys, (form.get("key") or [""])[0])
    if key is None:
        return _page(
            "login.html",
            status_code=401,
            next=target,
            title="Log in",
            error="That key is unknown, inactive, or has neither the read nor the admin scope.",
        )
    response = RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
    set_session_cookie(response, request, signer_of(context), key)
    return response


async def logout(request: Request) -> Response:
    """End the session (the cookie is cleared) and show the login page."""
    response = RedirectResponse("/login", status_code=303, headers=PAGE_HEADERS)
    clear_session_cookie(response)
    return response


def _params(request: Request, names: Sequence[str]) -> dict[str, list[str]]:
    """The query parameters a page passes on to a report (others are the page's own)."""
    grouped = group_params(request.query_params.multi_items())
    return {name: values for name, values in grouped.items() if name in names}


async def _report(context: AppContext, name: str, params: Mapping[str, Sequence[str]]) -> Report:
    return await run_in_threadpool(run_report, context.store, name, params, context.settings)


def _day_after(day: str) -> str:
    """The UTC midnight after a date: the end of a period that includes that day."""
    return micros_text(utc_micros(day + "T00:00:00Z") + MICROS_PER_DAY)


def _series_chart(
    points: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    start: str,
    end: str,
    step_micros: int = MICROS_PER_DAY,
) -> dict[str, Any]:
    """Chart data for charts.js: x as epoch seconds, one series per label.

    Every day (or hour) from ``start`` to ``end`` is on the x axis, 0 where nothing came, so a
    quiet day shows as 0 rather than as a line drawn across it (past MAX_CHART_POINTS, only the
    moments with data). Keys of ``points`` are dates or UTC times.
    """

    def micros(moment: str) -> int:
        return utc_micros(moment if "T" in moment else moment + "T00:00:00Z")

    by_micros = {
        label: {micros(moment): value for moment, value in values.items()}
        for label, values in points.items()
    }
    first = micros(start) // step_micros * step_micros
    count = -(-(micros(end) - first) // step_micros)
    if 0 < count <= MAX_CHART_POINTS:
        moments = [first + step * step_micros for step in range(count)]
    else:
        moments = sorted({moment for values in by_micros.values() for moment in values})
    series = [
        {"label": label, "values": [values.get(moment, 0) for moment in moments]}
        for label, values in sorted(by_micros.items())
    ]
    return {"title": title, "x": [moment // 1_000_000 for moment in moments], "series": series}


@page
async def overview(request: Request, context: AppContext, session: Session) -> Response:
    """Events per day (chart), events per key, quarantine by reason, the course list."""
    started = time.perf_counter()
    params = _params(request, ("since", "until", "at"))
    summary, courses = await run_in_threadpool(
        run_reports, context.store, [("overview", params), ("courses", params)], context.settings
    )
    per_day: dict[str, dict[str, float]] = {}
    for row in summary.rows:
        label = row["keyLabel"] or f"key {row['keyId']}"
        per_day.setdefault(label, {})[row["date"]] = row["events"]
    return _page(
        "overview.html",
        started=started,
        session=session,
        title="Overview",
        summary=summary,
        courses=courses,
        chart=_series_chart(
            per_day,
            title="Events per day",
            start=summary.method["parameters"]["since"],
            end=summary.method["parameters"]["until"],
        ),
    )


STUDENT_COLUMNS = (
    ("name", "Name"),
    ("events", "Events"),
    ("activeDays", "Active days"),
    ("visits", "Visits"),
    ("timeActiveSeconds", "Time active (s)"),
    ("views", "Views"),
    ("submissions", "Submissions"),
    ("assessmentsStarted", "Assessments started"),
    ("gradePercent", "Grade %"),
    ("lastEventAt", "Last event"),
    ("daysSinceLastEvent", "Days since"),
)
SORTABLE = {"actorId", *(name for name, _ in STUDENT_COLUMNS)}
COURSE_PARAMS = ("groupId", "since", "until", "at", "tz", "sessionGapMinutes", "inactiveDays")


def _sorted_rows(rows: list[dict[str, Any]], sort: str, descending: bool) -> list[dict[str, Any]]:
    if sort not in SORTABLE:
        raise InvalidQuery(f"sort must be one of {', '.join(sorted(SORTABLE))}", field="sort")

    def key(row: dict[str, Any]) -> tuple[bool, Any]:
        value = row.get(sort)
        return (value is None) != descending, value if value is not None else 0

    return sorted(rows, key=key, reverse=descending)


def _only(params: Mapping[str, list[str]], *names: str) -> dict[str, list[str]]:
    return {name: values for name, values in params.items() if name in names}


@page
async def course(request: Request, context: AppContext, session: Session) -> Response:
    """A course: its students' activity (sortable, CSV), its days (chart), at-risk marked."""
    started = time.perf_counter()
    params = _params(request, COURSE_PARAMS)
    if not params.get("groupId"):
        raise InvalidQuery("groupId is required", field="groupId")
    # One snapshot: the table, the chart and the at-risk marks show the same moment, and
    # without since/until the three read the course's events once.
    students, days, risk = await run_in_threadpool(
        run_reports,
        context.store,
        [
            ("student-activity", params),
            ("course-activity", _only(params, "groupId", "since", "until", "tz")),
            ("at-risk", _only(params, "groupId", "at")),
        ],
        context.settings,
    )
    at_risk = {row["actorId"]: row["rules"] for row in risk.rows if row["atRisk"]}
    sort = request.query_params.get("sort", "actorId")
    descending = request.query_params.get("dir") == "desc"
    rows = _sorted_rows(students.rows, sort, descending)
    per_day = {
        "events": {row["date"]: row["events"] for row in days.rows},
        "active students": {row["date"]: row["activeStudents"] for row in days.rows},
    }
    group_id = params["groupId"][0]
    return _page(
        "course.html",
        started=started,
        session=session,
        title="Course",
        group_id=group_id,
        students=students,
        rows=rows,
        columns=STUDENT_COLUMNS,
        sort=sort,
        descending=descending,
        at_risk=at_risk,
        risk=risk,
        days=days.rows,
        chart=_series_chart(
            per_day,
            title="Course activity per day",
            start=days.rows[0]["date"] if days.rows else "1970-01-01",
            end=_day_after(days.rows[-1]["date"]) if days.rows else "1970-01-01",
        ),
        csv_url=_url("/course/students.csv", **{k: v[0] for k, v in params.items()}),
        params={k: v[0] for k, v in params.items()},
    )


@page
async def course_csv(request: Request, context: AppContext, session: Session) -> Response:
    """The course's student-activity rows as CSV, as the API's format=csv gives them."""
    students = await _report(context, "student-activity", _params(request, COURSE_PARAMS))
    return Response(
        report_csv(students),
        media_type="text/csv; charset=utf-8",
        headers={**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="students.csv"'},
    )


@page
async def student(request: Request, context: AppContext, session: Session) -> Response:
    """One student in one course: the timeline of their events, their grades."""
    started = time.perf_counter()
    group_id = request.query_params.get("groupId", "")
    actor_id = request.query_params.get("actorId", "")
    if not group_id:
        raise InvalidQuery("groupId is required", field="groupId")
    if not actor_id:
        raise InvalidQuery("actorId is required", field="actorId")
    query = parse_event_query(
        {"groupId": [group_id], "actorId": [actor_id], "limit": [str(TIMELINE_EVENTS)]},
        QueryLimits.from_settings(context.settings),
    )
    timeline = await run_in_threadpool(search_page, context.store, query)
    grades, activity = await run_in_threadpool(
        run_reports,
        context.store,
        [
            ("grades", {"groupId": [group_id], "actorId": [actor_id]}),
            ("student-activity", {"groupId": [group_id]}),
        ],
        context.settings,
    )
    mine = next((row for row in activity.rows if row["actorId"] == actor_id), None)
    return _page(
        "student.html",
        started=started,
        session=session,
        title="Student",
        group_id=group_id,
        actor_id=actor_id,
        activity=mine,
        averages=activity.summary["courseAverages"],
        timeline=timeline.events,
        grades=grades,
        limit=TIMELINE_EVENTS,
    )


@page
async def delivery(request: Request, context: AppContext, session: Session) -> Response:
    """Delivery health: per key, last seen, rate over time, lag, quarantine, silent keys."""
    started = time.perf_counter()
    found = await _report(context, "delivery", _params(request, ("since", "until", "at")))
    per_hour: dict[str, dict[str, float]] = {}
    reasons: dict[str, int] = {}
    for row in found.rows:
        label = row["keyLabel"] or f"key {row['keyId']}"
        hours = per_hour.setdefault(label, {})
        hours[row["hour"]] = hours.get(row["hour"], 0) + row["eventsStored"]
        for reason, count in row["quarantinedByReason"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    forwarding = await run_in_threadpool(destination_statuses, context.store)
    return _page(
        "delivery.html",
        started=started,
        session=session,
        title="Delivery health",
        report=found,
        destinations=[status.as_json() for status in forwarding],
        reasons=dict(sorted(reasons.items())),
        chart=_series_chart(
            per_hour,
            title="Events stored per hour",
            start=found.method["parameters"]["since"],
            end=found.method["parameters"]["until"],
            step_micros=MICROS_PER_HOUR,
        ),
    )


@page
async def quarantine(request: Request, context: AppContext, session: Session) -> Response:
    """Held items, newest first, with their reasons."""
    started = time.perf_counter()
    query = parse_quarantine_query(
        {"limit": [str(QUARANTINE_ITEMS)]}, QueryLimits.from_settings(context.settings)
    )
    found = await run_in_threadpool(quarantine_page, context.store, query)
    keys = await run_in_threadpool(context.store.keys.list)
    return _page(
        "quarantine.html",
        started=started,
        session=session,
        title="Quarantine",
        items=found.items,
        labels={key.id: key.label for key in keys},
        more=found.next_cursor is not None,
    )
