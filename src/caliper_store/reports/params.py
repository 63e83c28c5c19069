"""Report parameters: one table serves the HTTP query string, the CLI flags and the OpenAPI.

Every report takes the parameters it names in ``catalog.REPORTS``; anything else, a value that
cannot be read, or a missing required one is refused with 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery
from caliper_store.query import parse_int, parse_time, refuse_nul
from caliper_store.storage import utc_text

ParamKind = Literal["iri", "time", "zone", "minutes", "days"]

# A session gap or an inactivity threshold longer than a year would make every figure one visit.
MAX_GAP_MINUTES = 525_600
MAX_DAYS = 3_660
# Report times must leave room for a day either side within what Python's datetime holds.
EARLIEST_TIME = "1970-01-01T00:00:00.000000Z"
LATEST_TIME = "9999-01-01T00:00:00.000000Z"
# Longest zone name in the IANA database is 32 characters; refuse long text before looking it up.
MAX_ZONE_CHARS = 64


@dataclass(frozen=True, slots=True)
class ReportParam:
    """One parameter: its Python name (and ``--flag``), HTTP name, kind and help."""

    name: str
    param: str
    kind: ParamKind
    help: str

    @property
    def flag(self) -> str:
        """The command-line option."""
        return "--" + self.name.replace("_", "-")


REPORT_PARAMS: tuple[ReportParam, ...] = (
    ReportParam("group_id", "groupId", "iri", "The course or section (the events' group id)."),
    ReportParam("actor_id", "actorId", "iri", "One person (actor id; for grades, the student)."),
    ReportParam(
        "since", "since", "time", "Events whose eventTime is at or after this time (or date)."
    ),
    ReportParam("until", "until", "time", "Events whose eventTime is before this time."),
    ReportParam(
        "at",
        "at",
        "time",
        "The moment relative figures are measured from (last 7 days, days since the last "
        "event, inactive, silent keys); default now.",
    ),
    ReportParam(
        "tz",
        "tz",
        "zone",
        "IANA time zone that days and weeks are counted in (e.g. Europe/London); default UTC.",
    ),
    ReportParam(
        "session_gap_minutes",
        "sessionGapMinutes",
        "minutes",
        "A gap longer than this starts a new visit (default: setting session_gap_minutes).",
    ),
    ReportParam(
        "inactive_days",
        "inactiveDays",
        "days",
        "A student with no event for this many days is inactive (default: setting inactive_days).",
    ),
)
PARAMS_BY_NAME: Mapping[str, ReportParam] = {spec.param: spec for spec in REPORT_PARAMS}


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A report's parameters, read and checked, with the settings' defaults filled in."""

    at: str
    tz: str = "UTC"
    group_id: str | None = None
    actor_id: str | None = None
    since: str | None = None
    until: str | None = None
    session_gap_minutes: int = 30
    inactive_days: int = 7

    @property
    def zone(self) -> ZoneInfo:
        """The zone days are counted in."""
        return ZoneInfo(self.tz)


def _zone(value: str, name: str) -> str:
    text = value.strip()
    if len(text) > MAX_ZONE_CHARS or "\x00" in text:
        raise InvalidQuery(f"{name} must be an IANA time zone name", field=name)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidQuery(
            f"{name} must be an IANA time zone name, got {text!r}", field=name
        ) from error
    return text


def _value(spec: ReportParam, raw: str, name: str) -> str | int:
    if spec.kind == "time":
        moment = parse_time(raw, name)
        if not EARLIEST_TIME <= moment < LATEST_TIME:
            shown = raw[:40]
            raise InvalidQuery(f"{name} must be between 1970 and 9998, got {shown!r}", field=name)
        return moment
    if spec.kind == "zone":
        return _zone(raw, name)
    if spec.kind == "minutes":
        return parse_int(raw, name, minimum=1, maximum=MAX_GAP_MINUTES)
    if spec.kind == "days":
        return parse_int(raw, name, minimum=1, maximum=MAX_DAYS)
    return refuse_nul(raw, name)


def parse_report_query(
    values: Mapping[str, Sequence[str]],
    *,
    accepted: Sequence[str],
    required: Sequence[str],
    settings: Settings,
    now: datetime | None = None,
    by_param: bool = True,
) -> ReportQuery:
    """Read raw values (query string or CLI flags) into a :class:`ReportQuery`.

    Args:
        values: raw strings keyed by HTTP parameter (or Python name when ``by_param`` is false).
        accepted: the HTTP names of the parameters this report takes.
        required: those among them it cannot run without.
        settings: the defaults of the thresholds.
        now: the default of ``at`` (the time of the request).
        by_param: whether the keys are HTTP parameter names.

    Raises:
        InvalidQuery: an unknown, repeated, unreadable or missing parameter, naming it.
    """
    known = {spec.param if by_param else spec.name: spec for spec in REPORT_PARAMS}
    chosen: dict[str, str | int] = {}
    for key, raw_values in values.items():
        spec = known.get(key)
        if spec is None or spec.param not in accepted:
            shown = key[:80] if by_param else "--" + key.replace("_", "-")[:80]
            raise InvalidQuery(
                f"unknown parameter {shown!r}; this report takes {', '.join(accepted) or 'none'}",
                field=shown,
            )
        name = spec.param if by_param else spec.flag
        present = [value for value in raw_values if value != ""]
        if len(present) > 1:
            raise InvalidQuery(f"{name} may be given once", field=name)
        if present:
            chosen[spec.name] = _value(spec, present[0], name)
    for param in required:
        spec = PARAMS_BY_NAME[param]
        if spec.name not in chosen:
            name = spec.param if by_param else spec.flag
            raise InvalidQuery(f"{name} is required for this report", field=name)
    since, until = chosen.get("since"), chosen.get("until")
    if isinstance(since, str) and isinstance(until, str) and since >= until:
        name = "until" if by_param else "--until"
        raise InvalidQuery(f"{name} must be after since", field=name)
    chosen.setdefault("at", utc_text(now or datetime.now(UTC)))
    chosen.setdefault("session_gap_minutes", settings.session_gap_minutes)
    chosen.setdefault("inactive_days", settings.inactive_days)
    return ReportQuery(**chosen)  # type: ignore[arg-type]  # keys are ReportQuery fields
