"""Running a report by name, and writing it as CSV or as a table for a terminal."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from tabulate import tabulate

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery, NotFound
from caliper_store.observability import REPORT_SECONDS
from caliper_store.reports.activity import courses, student_activity
from caliper_store.reports.catalog import REPORTS_BY_NAME, ReportSpec
from caliper_store.reports.params import ReportQuery, parse_report_query
from caliper_store.reports.report import Report, ReportSettings
from caliper_store.storage import EventSource, Store

# Longest cell a terminal table shows; the CSV and JSON keep every character.
MAX_TABLE_CELL_CHARS = 60


def report_spec(name: str) -> ReportSpec:
    """The report of this name.

    Raises:
        NotFound: no such report (the message lists those there are).
    """
    spec = REPORTS_BY_NAME.get(name)
    if spec is None:
        known = ", ".join(REPORTS_BY_NAME)
        raise NotFound(f"no report named {name[:80]!r}; the reports are {known}", field="name")
    return spec


def _query_of(
    spec: ReportSpec,
    values: Mapping[str, Sequence[str]],
    settings: Settings,
    *,
    now: datetime | None,
    by_param: bool,
) -> ReportQuery:
    """A report's parameters read against what it accepts and needs."""
    return parse_report_query(
        values,
        accepted=spec.params,
        required=spec.required,
        settings=settings,
        now=now,
        by_param=by_param,
    )


def run_report(
    store: Store,
    name: str,
    values: Mapping[str, Sequence[str]],
    settings: Settings,
    *,
    now: datetime | None = None,
    by_param: bool = True,
) -> Report:
    """Read the parameters, then compute the report from one snapshot of the store.

    Raises:
        NotFound: no such report.
        InvalidQuery: a parameter is unknown, unreadable or missing, naming it.
        QueryTimeout: the report's reads ran past query_timeout_ms.
        StorageUnavailable: the database could not be read.
    """
    spec = report_spec(name)
    query = _query_of(spec, values, settings, now=now, by_param=by_param)
    with REPORT_SECONDS.labels(name).time(), store.snapshot() as snapshot:
        return spec.build(snapshot, query, ReportSettings.from_settings(settings))


def run_reports(
    store: Store,
    wanted: Sequence[tuple[str, Mapping[str, Sequence[str]]]],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> list[Report]:
    """Several reports, ``(name, parameters)`` each, from one snapshot of the store.

    A page that shows them together gets figures of the same moment, and a read two of them
    make (a course's events, its people's names) is made once. The time limit bounds them
    together. Raises as ``run_report`` does.
    """
    moment = now or datetime.now(UTC)
    specs = [(report_spec(name), values) for name, values in wanted]
    queries = [
        (spec, _query_of(spec, values, settings, now=moment, by_param=True))
        for spec, values in specs
    ]
    report_settings = ReportSettings.from_settings(settings)
    found = []
    with store.snapshot(shares_reads=True) as snapshot:
        for spec, query in queries:
            with REPORT_SECONDS.labels(spec.name).time():
                found.append(spec.build(snapshot, query, report_settings))
    return found


# The reports that run on any EventSource (ClickHouse as well as the store).
SOURCE_REPORTS: dict[str, Callable[[EventSource, ReportQuery, ReportSettings], Report]] = {
    "student-activity": student_activity,
    "courses": courses,
}


def run_report_on(
    source: EventSource,
    name: str,
    values: Mapping[str, Sequence[str]],
    settings: Settings,
    *,
    now: datetime | None = None,
    by_param: bool = True,
) -> Report:
    """Compute a report from another source of the same events (ClickHouse).

    Raises:
        InvalidQuery: the report runs on the store only, or a parameter is bad.
    """
    spec = report_spec(name)
    build = SOURCE_REPORTS.get(name)
    if build is None:
        raise InvalidQuery(
            f"report {name!r} runs on the store only; over ClickHouse: "
            + ", ".join(SOURCE_REPORTS),
            field="source",
        )
    query = _query_of(spec, values, settings, now=now, by_param=by_param)
    return build(source, query, ReportSettings.from_settings(settings))


def _cell(value: Any) -> str:
    """One CSV cell: lists and objects as JSON, booleans as true/false, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode("utf-8")
    return str(value)


def report_csv(report: Report) -> str:
    """The report's rows as CSV, one column per field of the report's row, in table order."""
    columns = report_spec(report.name).columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in report.rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def report_table(report: Report) -> str:
    """The report's rows as a plain-text table for a terminal (long cells shortened)."""
    columns = report_spec(report.name).columns

    def shown(value: Any) -> str:
        text = _cell(value)
        return text if len(text) <= MAX_TABLE_CELL_CHARS else text[: MAX_TABLE_CELL_CHARS - 1] + "…"

    body = [[shown(row.get(column)) for column in columns] for row in report.rows]
    table: str = tabulate(body, headers=list(columns), tablefmt="simple", disable_numparse=True)
    return table
