"""Every report by name: what it answers, which parameters it takes, and its CSV columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from caliper_store.reports.activity import at_risk, course_activity, courses, student_activity
from caliper_store.reports.delivery import delivery
from caliper_store.reports.grades import GRADE_DEFINITIONS, course_grades
from caliper_store.reports.overview import overview
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.reports.sessions import sessions
from caliper_store.storage import Snapshot

Build = Callable[[Snapshot, ReportQuery, ReportSettings], Report]


def grades(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Every grade given in the course (to one student with ``actorId``), latest ones marked."""
    assert query.group_id is not None
    found = course_grades(
        snapshot,
        query.group_id,
        since=query.since,
        until=query.until,
        student_ids=() if query.actor_id is None else (query.actor_id,),
    )
    rows = [grade.as_row() for grade in found]
    return Report("grades", rows, method_of(query, GRADE_DEFINITIONS), as_of(snapshot))


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """One report: its name, a sentence, its parameters (HTTP names), its columns, its code."""

    name: str
    help: str
    params: tuple[str, ...]
    required: tuple[str, ...]
    columns: tuple[str, ...]
    build: Build


COURSE_PARAMS = ("groupId", "since", "until", "at", "tz", "sessionGapMinutes", "inactiveDays")

REPORTS: tuple[ReportSpec, ...] = (
    ReportSpec(
        "overview",
        "The store at a glance: events per UTC day and key (by default the 30 days before at), "
        "each key's total, and the items quarantine holds by reason.",
        ("since", "until", "at"),
        (),
        ("date", "keyId", "keyLabel", "events"),
        overview,
    ),
    ReportSpec(
        "courses",
        "Every group seen (course or section): events, students, students active in the last "
        "7 days, first and last event, the keys and sensors its events came from.",
        ("since", "until", "at"),
        (),
        (
            "groupId",
            "name",
            "events",
            "students",
            "activeStudents7d",
            "firstEventAt",
            "lastEventAt",
            "keys",
            "sensors",
        ),
        courses,
    ),
    ReportSpec(
        "student-activity",
        "One row per person with events in the course: events, active days, visits, time "
        "active, views, submissions, latest grades, inactive; the course's averages beside.",
        COURSE_PARAMS,
        ("groupId",),
        (
            "actorId",
            "name",
            "externalId",
            "roles",
            "events",
            "activeDays",
            "visits",
            "timeActiveSeconds",
            "firstEventAt",
            "lastEventAt",
            "daysSinceLastEvent",
            "views",
            "submissions",
            "assessmentsStarted",
            "latestGrades",
            "gradePercent",
            "inactive",
        ),
        student_activity,
    ),
    ReportSpec(
        "course-activity",
        "Per day: the course's events by type and its active students; per ISO week: active "
        "students.",
        ("groupId", "since", "until", "tz"),
        ("groupId",),
        ("date", "events", "activeStudents", "eventsByType"),
        course_activity,
    ),
    ReportSpec(
        "grades",
        "Every grade given in the course: student, assignable, score, when graded and "
        "received, who scored, and which is the latest per student and assignable.",
        ("groupId", "actorId", "since", "until"),
        ("groupId",),
        (
            "eventId",
            "studentId",
            "assignableId",
            "attemptId",
            "scoreGiven",
            "maxScore",
            "gradedAt",
            "scorerId",
            "receivedAt",
            "eventType",
            "isLatest",
        ),
        grades,
    ),
    ReportSpec(
        "sessions",
        "Logins, logouts and timeouts per day; each session with its start, end and duration.",
        ("since", "until", "actorId", "tz"),
        (),
        ("actorId", "sessionId", "startedAt", "endedAt", "endedBy", "durationSeconds"),
        sessions,
    ),
    ReportSpec(
        "delivery",
        "Per key, sensor and hour received: requests, items stored, duplicates, quarantined by "
        "reason, last seen and lag; silent keys flagged. since/until are received times.",
        ("since", "until", "at"),
        (),
        (
            "keyId",
            "keyLabel",
            "sensor",
            "hour",
            "envelopes",
            "items",
            "stored",
            "duplicates",
            "quarantined",
            "quarantinedByReason",
            "eventsStored",
            "lastSeenAt",
            "lagP50Seconds",
            "lagP95Seconds",
            "lagMaxSeconds",
        ),
        delivery,
    ),
    ReportSpec(
        "at-risk",
        "Each learner of the course with the Retention Center's rules that fired: low recent "
        "activity, no access, low grades.",
        ("groupId", "at"),
        ("groupId",),
        (
            "actorId",
            "name",
            "atRisk",
            "rules",
            "recentEvents",
            "lastEventAt",
            "daysSinceLastEvent",
            "gradePercent",
        ),
        at_risk,
    ),
)
REPORTS_BY_NAME: Mapping[str, ReportSpec] = {spec.name: spec for spec in REPORTS}
