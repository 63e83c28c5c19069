"""The figures reports share: events as reports read them, visits and time active, days, lags.

Each definition here is the one README "Reports" and every report's ``method`` state; change
one and both must change with it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from caliper_store.storage import (
    EVENT_TIME_MICROS,
    RECEIVED_AT_MICROS,
    Condition,
    EventSource,
    micros_text,
)

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = _EPOCH.date()


class ReportEvent(NamedTuple):
    """The columns of a stored event that reports read (the raw JSON is read apart, by seq).

    Both times come as microseconds (``EVENT_TIME_MICROS``, ``RECEIVED_AT_MICROS``): reports
    count and compare them for every event they read, and text made and parsed back cost 3 µs
    an event.
    """

    seq: int
    event_id: str
    event_type: str
    action: str
    actor_id: str
    actor_type: str | None
    actor_external_id: str | None
    object_id: str
    group_id: str | None
    membership_role: str | None
    session_id: str | None
    api_key_id: int
    sensor: str | None
    event_time_micros: int
    received_at_micros: int

    @property
    def event_time(self) -> str:
        """``eventTime`` as UTC text."""
        return micros_text(self.event_time_micros)

    @property
    def received_at(self) -> str:
        """When the store received the event, as UTC text."""
        return micros_text(self.received_at_micros)

    @property
    def is_person(self) -> bool:
        """Whether the actor is a Person (students and instructors; not software)."""
        return self.actor_type == "Person"


REPORT_EVENT_COLUMNS: tuple[str, ...] = ReportEvent._fields
assert {EVENT_TIME_MICROS, RECEIVED_AT_MICROS} <= set(REPORT_EVENT_COLUMNS)


def read_events(snapshot: EventSource, conditions: Sequence[Condition]) -> Iterator[ReportEvent]:
    """The matching events in ``(eventTime, seq)`` order."""
    for row in snapshot.events(conditions, REPORT_EVENT_COLUMNS):
        yield ReportEvent._make(row)


def time_conditions(since: str | None, until: str | None) -> list[Condition]:
    """``eventTime`` in ``[since, until)``; either bound may be open."""
    conditions = []
    if since is not None:
        conditions.append(Condition("event_time", ">=", (since,)))
    if until is not None:
        conditions.append(Condition("event_time", "<", (until,)))
    return conditions


class Visits(NamedTuple):
    """Visits and seconds active of one person in one course."""

    visits: int
    active_seconds: float


def visits_of(times_micros: Sequence[int], gap_minutes: int) -> Visits:
    """Visits and time active from event times in ascending order.

    A gap longer than ``gap_minutes`` starts a new visit; time active is the sum of the gaps of
    at most that length (Moodle block_dedication's and moodleR's method). No events: 0 visits.
    """
    if not times_micros:
        return Visits(0, 0.0)
    gap_limit = gap_minutes * 60 * MICROS_PER_SECOND
    visits, active = 1, 0
    for before, after in itertools.pairwise(times_micros):
        gap = after - before
        if gap > gap_limit:
            visits += 1
        else:
            active += gap
    return Visits(visits, active / MICROS_PER_SECOND)


def moment(micros: int) -> datetime:
    """An aware UTC datetime of microseconds since 1970."""
    return _EPOCH + timedelta(microseconds=micros)


def day_of(micros: int, zone: ZoneInfo) -> date:
    """The calendar day, in ``zone``, of an instant.

    Reports take it for every event they read. In UTC, the default, a day is a whole number of
    days since 1970 (0.3 µs, against 2.1 through an aware datetime).
    """
    if zone.key == "UTC":
        return _utc_day(micros // MICROS_PER_DAY)
    return moment(micros).astimezone(zone).date()


@functools.lru_cache(maxsize=4096)
def _utc_day(days_since_1970: int) -> date:
    return _EPOCH_DATE + timedelta(days=days_since_1970)


def iso_week(day: date) -> str:
    """ISO 8601 week of a day, as ``2024-W05``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def whole_days_between(earlier_micros: int, later_micros: int) -> int:
    """Whole days from one instant to a later one (0 for less than a day; negative if later)."""
    return math.floor((later_micros - earlier_micros) / MICROS_PER_DAY)


def mean(values: Iterable[float]) -> float | None:
    """The arithmetic mean, or None for no values."""
    listed = list(values)
    return sum(listed) / len(listed) if listed else None


def rounded(value: float | None, digits: int = 2) -> float | None:
    """A figure rounded for display in JSON and CSV (None stays None)."""
    return None if value is None else round(value, digits)
