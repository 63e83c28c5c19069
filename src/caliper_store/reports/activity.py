"""Course reports: the course list, each student's activity, a course's days, students at risk."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from caliper_store.reports.grades import Grade, grades_of, is_grade
from caliper_store.reports.measures import (
    MICROS_PER_DAY,
    ReportEvent,
    day_of,
    iso_week,
    mean,
    read_events,
    rounded,
    time_conditions,
    visits_of,
    whole_days_between,
)
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.storage import (
    Condition,
    EventSource,
    GroupRollup,
    Snapshot,
    micros_text,
    utc_micros,
)

VIEW_EVENT_TYPES = frozenset({"NavigationEvent", "ViewEvent"})
SUBMISSION_EVENT_TYPES = frozenset({"AssignableEvent", "AssessmentEvent"})
ACTIVE_STUDENTS_DAYS = 7
# The newest events of a person whose raw JSON is read for their name: a producer that
# sends names sends them on every event, so reading all of a course's events would find no more.
NAME_CANDIDATES = 3
# People whose events span the 7-day window (first before, last after it) looked up one by one
# in the course list; with more (`at` well in the past), the window's events are counted.
MAX_SPANNING_LOOKUPS = 500

DEFINITIONS = {
    "students": "Distinct actors of type Person with at least one event in the course.",
    "events": "Stored events, each once however often it was sent; a late event counts on the "
    "day of its eventTime.",
    "activeDays": "Distinct days (in tz) with at least one event.",
    "visits": "Events in eventTime order; a gap longer than sessionGapMinutes starts a new "
    "visit; visits = 1 + the number of such gaps.",
    "timeActiveSeconds": "The sum of the gaps between consecutive events of at most "
    "sessionGapMinutes (Moodle block_dedication's method): an estimate, which varies with the "
    "gap chosen.",
    "views": "NavigationEvent and ViewEvent.",
    "submissions": "AssignableEvent and AssessmentEvent with action Submitted.",
    "assessmentsStarted": "AssessmentEvent with action Started.",
    "latestGrades": "Per assignable, the grade with the latest eventTime (GradeEvent's Score; "
    "Caliper 1.0 OutcomeEvent's Result totalScore), whenever it arrived.",
    "gradePercent": "The mean of the latest grades' scoreGiven / maxScore, in percent.",
    "inactive": "No event in the course for inactiveDays before at.",
    "courseAverages": "Means over the course's learners (Person actors with the Learner "
    "membership role), or over every Person actor when no membership roles were sent.",
    "name": "The person's name in the newest of their 3 latest events in the course that "
    "carries one (Learn and Canvas send none).",
}


def _name_in(document: Any, key: str, fields: tuple[str, ...]) -> str | None:
    entity = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entity, dict):
        return None
    for name in fields:
        value = entity.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _names(
    snapshot: EventSource,
    seqs_newest_first: dict[str, list[int]],
    key: str,
    fields: tuple[str, ...],
) -> dict[str, str]:
    """For each id, ``key``'s first of ``fields`` in its newest event that has one."""
    wanted = {seq for seqs in seqs_newest_first.values() for seq in seqs}
    raws = snapshot.raw_events(sorted(wanted))
    names: dict[str, str] = {}
    for entity_id, seqs in seqs_newest_first.items():
        for seq in seqs:
            name = _name_in(orjson.loads(raws[seq]), key, fields)
            if name is not None:
                names[entity_id] = name
                break
    return names


@dataclass
class _Person:
    """What one person did in one course, gathered in eventTime order."""

    actor_id: str
    times: list[int] = field(default_factory=list)
    days: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    external_id: str | None = None
    views: int = 0
    submissions: int = 0
    assessments_started: int = 0
    seqs: list[int] = field(default_factory=list)

    def add(self, event: ReportEvent, micros: int, day: str) -> None:
        self.times.append(micros)
        self.days.add(day)
        self.seqs.append(event.seq)
        if event.membership_role:
            self.roles.update(event.membership_role.split(","))
        if event.actor_external_id:
            self.external_id = event.actor_external_id
        if event.event_type in VIEW_EVENT_TYPES:
            self.views += 1
        if event.event_type in SUBMISSION_EVENT_TYPES and event.action == "Submitted":
            self.submissions += 1
        if event.event_type == "AssessmentEvent" and event.action == "Started":
            self.assessments_started += 1

    @property
    def is_learner(self) -> bool:
        return any("Learner" in role for role in self.roles)


@dataclass
class _Course:
    people: dict[str, _Person]
    grades: list[Grade]
    names: dict[str, str]

    def cohort(self) -> list[_Person]:
        """Whom the course averages are taken over (see DEFINITIONS["courseAverages"])."""
        learners = [person for person in self.people.values() if person.is_learner]
        has_roles = any(person.roles for person in self.people.values())
        return learners if has_roles else list(self.people.values())

    def latest_grades(self, actor_id: str) -> list[Grade]:
        return [g for g in self.grades if g.is_latest and g.student_id == actor_id]


def _read_course(snapshot: EventSource, query: ReportQuery) -> _Course:
    assert query.group_id is not None
    zone = query.zone
    conditions = [
        Condition("group_id", "in", (query.group_id,)),
        *time_conditions(query.since, query.until),
    ]
    people: dict[str, _Person] = {}
    graded: list[ReportEvent] = []
    for event in read_events(snapshot, conditions):
        if is_grade(event):
            graded.append(event)
        if not event.is_person:
            continue
        micros = event.event_time_micros
        person = people.get(event.actor_id)
        if person is None:
            person = people[event.actor_id] = _Person(event.actor_id)
        person.add(event, micros, day_of(micros, zone).isoformat())
    grades = grades_of(snapshot, graded)  # the course's grade events were among those read
    newest = {actor: person.seqs[: -NAME_CANDIDATES - 1 : -1] for actor, person in people.items()}
    names = _names(snapshot, newest, "actor", ("name",))
    return _Course(people, grades, names)


def _grade_percent(grades: list[Grade]) -> float | None:
    return mean(p for p in (grade.percent for grade in grades) if p is not None)


def _student_row(course: _Course, person: _Person, query: ReportQuery) -> dict[str, Any]:
    at = utc_micros(query.at)
    visits = visits_of(person.times, query.session_gap_minutes)
    last = person.times[-1]
    latest = course.latest_grades(person.actor_id)
    return {
        "actorId": person.actor_id,
        "name": course.names.get(person.actor_id),
        "externalId": person.external_id,
        "roles": sorted(person.roles),
        "events": len(person.times),
        "activeDays": len(person.days),
        "visits": visits.visits,
        "timeActiveSeconds": rounded(visits.active_seconds),
        "firstEventAt": micros_text(person.times[0]),
        "lastEventAt": micros_text(last),
        "daysSinceLastEvent": whole_days_between(last, at),
        "views": person.views,
        "submissions": person.submissions,
        "assessmentsStarted": person.assessments_started,
        "latestGrades": [
            {
                "objectId": grade.assignable_id,
                "scoreGiven": grade.score_given,
                "maxScore": grade.max_score,
                "gradedAt": grade.graded_at,
            }
            for grade in latest
        ],
        "gradePercent": rounded(_grade_percent(latest)),
        "inactive": at - last > query.inactive_days * MICROS_PER_DAY,
    }


AVERAGED = (
    "events",
    "activeDays",
    "visits",
    "timeActiveSeconds",
    "views",
    "submissions",
    "assessmentsStarted",
    "gradePercent",
)


def student_activity(snapshot: EventSource, query: ReportQuery, settings: ReportSettings) -> Report:
    """One row per person with events in the course, and the course's averages beside them."""
    course = _read_course(snapshot, query)
    rows = [
        _student_row(course, person, query)
        for person in sorted(course.people.values(), key=lambda p: p.actor_id)
    ]
    cohort = {person.actor_id for person in course.cohort()}
    cohort_rows = [row for row in rows if row["actorId"] in cohort]
    averages: dict[str, Any] = {"students": len(cohort_rows)}
    for name in AVERAGED:
        values = [row[name] for row in cohort_rows if row[name] is not None]
        averages[name] = rounded(mean(values))
    return Report(
        "student-activity",
        rows,
        method_of(query, DEFINITIONS),
        as_of(snapshot),
        {"courseAverages": averages},
    )


def course_activity(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Per day: events by type and active students; per ISO week: active students."""
    assert query.group_id is not None
    zone = query.zone
    by_day: dict[str, Counter[str]] = defaultdict(Counter)
    students_by_day: dict[str, set[str]] = defaultdict(set)
    students_by_week: dict[str, set[str]] = defaultdict(set)
    conditions = [
        Condition("group_id", "in", (query.group_id,)),
        *time_conditions(query.since, query.until),
    ]
    for event in read_events(snapshot, conditions):
        day = day_of(event.event_time_micros, zone)
        by_day[day.isoformat()][event.event_type] += 1
        if event.is_person:
            students_by_day[day.isoformat()].add(event.actor_id)
            students_by_week[iso_week(day)].add(event.actor_id)
    rows = [
        {
            "date": day,
            "events": sum(counts.values()),
            "activeStudents": len(students_by_day[day]),
            "eventsByType": dict(sorted(counts.items())),
        }
        for day, counts in sorted(by_day.items())
    ]
    weeks = [
        {"week": week, "activeStudents": len(actors)}
        for week, actors in sorted(students_by_week.items())
    ]
    definitions = {
        "events": DEFINITIONS["events"],
        "activeStudents": "Distinct Person actors with an event that day (or ISO week), in tz.",
    }
    return Report(
        "course-activity", rows, method_of(query, definitions), as_of(snapshot), {"weeks": weeks}
    )


COURSE_DEFINITIONS = {
    "events": DEFINITIONS["events"],
    "students": DEFINITIONS["students"],
    "activeStudents7d": "Distinct Person actors with an event in the 7 days before at.",
    "name": "The group's name (else courseNumber, title or label) in its newest event, by "
    "eventTime, that carries one, among all stored events.",
    "source": "Without since and until, read from the rollups kept with the events (exact: "
    "`caliper-store reports verify` recomputes them); with them, from the events.",
}


def courses(snapshot: EventSource, query: ReportQuery, settings: ReportSettings) -> Report:
    """Every group seen: its events, students, recent activity, and where its events came from."""
    at = utc_micros(query.at)
    recent_since = at - ACTIVE_STUDENTS_DAYS * MICROS_PER_DAY
    groups = snapshot.group_rollups()
    names = {group.group_id: group.name for group in groups}
    labels = snapshot.key_labels()
    if query.since is None and query.until is None and isinstance(snapshot, Snapshot):
        tallies = _course_tallies_from_rollups(snapshot, groups, recent_since, at)
    else:
        tallies = _course_tallies_from_events(snapshot, query, recent_since, at)
    rows = [
        {
            "groupId": group_id,
            "name": names.get(group_id),
            "events": tally.events,
            "students": tally.students,
            "activeStudents7d": tally.active,
            "firstEventAt": tally.first,
            "lastEventAt": tally.last,
            "keys": [{"id": key, "label": labels.get(key)} for key in sorted(tally.keys)],
            "sensors": sorted(tally.sensors),
        }
        for group_id, tally in sorted(tallies.items())
    ]
    return Report("courses", rows, method_of(query, COURSE_DEFINITIONS), as_of(snapshot))


@dataclass
class _CourseTally:
    events: int = 0
    students: int = 0
    active: int = 0
    first: str = ""
    last: str = ""
    keys: set[int] = field(default_factory=set)
    sensors: set[str] = field(default_factory=set)


def _course_tallies_from_rollups(
    snapshot: Snapshot, groups: list[GroupRollup], recent_since: int, at: int
) -> dict[str, _CourseTally]:
    """The course list from the rollups: thousands of rows however many events are stored.

    Whether a person had an event in ``[recent_since, at)`` follows from their first and last
    event in the course, except when the first is before the window and the last after it
    (``at`` in the past, or events dated in the future): then one indexed look at the events
    for each, or, past MAX_SPANNING_LOOKUPS of them, one count of the window's events.
    """
    by_key = {group.group_key: group for group in groups}
    tallies = {
        group.group_id: _CourseTally(
            group.events, first=group.first_event_time, last=group.last_event_time
        )
        for group in groups
    }
    window = (micros_text(recent_since), micros_text(at))
    counts, spanning = snapshot.group_people(*window, most_spanning=MAX_SPANNING_LOOKUPS)
    for group_key, (people, active) in counts.items():
        group = by_key.get(group_key)
        if group is not None:
            tallies[group.group_id].students = people
            tallies[group.group_id].active = active
    if len(spanning) > MAX_SPANNING_LOOKUPS:  # at in the past: count the window's events
        active_by_key = snapshot.active_people(*window)
        for group in groups:
            tallies[group.group_id].active = active_by_key.get(group.group_key, 0)
        spanning = []
    for group_key, actor_id in spanning:
        group = by_key.get(group_key)
        if group is not None and snapshot.has_event(
            [
                Condition("actor_id", "in", (actor_id,)),
                Condition("group_id", "in", (group.group_id,)),
                *time_conditions(*window),
            ]
        ):
            tallies[group.group_id].active += 1
    for group_key, key_id, sensor, _ in snapshot.group_source_rollups():
        group = by_key.get(group_key)
        if group is None:
            continue
        tallies[group.group_id].keys.add(key_id)
        if sensor:
            tallies[group.group_id].sensors.add(sensor)
    return tallies


def _course_tallies_from_events(
    snapshot: EventSource, query: ReportQuery, recent_since: int, at: int
) -> dict[str, _CourseTally]:
    """The course list for a period, counted from its events."""
    tallies: dict[str, _CourseTally] = {}
    students: dict[str, set[str]] = defaultdict(set)
    recent: dict[str, set[str]] = defaultdict(set)
    last_micros: dict[str, int] = {}
    for event in read_events(snapshot, time_conditions(query.since, query.until)):
        group = event.group_id
        if group is None:
            continue
        tally = tallies.get(group)
        if tally is None:
            tally = tallies[group] = _CourseTally(first=event.event_time)
        tally.events += 1
        last_micros[group] = event.event_time_micros
        tally.keys.add(event.api_key_id)
        if event.sensor:
            tally.sensors.add(event.sensor)
        if event.is_person:
            students[group].add(event.actor_id)
            if recent_since <= event.event_time_micros < at:
                recent[group].add(event.actor_id)
    for group, tally in tallies.items():
        tally.last = micros_text(last_micros[group])
        tally.students = len(students[group])
        tally.active = len(recent[group])
    return tallies


def at_risk(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Each learner with the Retention Center's rules that fired for them."""
    course = _read_course(snapshot, query)
    at = utc_micros(query.at)
    window_start = at - settings.at_risk_activity_days * MICROS_PER_DAY
    cohort = sorted(course.cohort(), key=lambda person: person.actor_id)
    recent = {
        person.actor_id: sum(1 for t in person.times if window_start <= t < at) for person in cohort
    }
    grades = {
        person.actor_id: _grade_percent(course.latest_grades(person.actor_id)) for person in cohort
    }
    average_recent = mean(recent.values())
    average_grade = mean(value for value in grades.values() if value is not None)
    activity_floor = (
        None
        if not average_recent
        else average_recent * (100 - settings.at_risk_activity_percent_below) / 100
    )
    grade_floor = (
        None
        if average_grade is None
        else average_grade * (100 - settings.at_risk_grade_percent_below) / 100
    )
    rows = []
    for person in cohort:
        days_since = whole_days_between(person.times[-1], at)
        rules = []
        if activity_floor is not None and recent[person.actor_id] < activity_floor:
            rules.append("activity")
        if at - person.times[-1] > settings.at_risk_no_access_days * MICROS_PER_DAY:
            rules.append("no_access")
        grade = grades[person.actor_id]
        if grade_floor is not None and grade is not None and grade < grade_floor:
            rules.append("grade")
        rows.append(
            {
                "actorId": person.actor_id,
                "name": course.names.get(person.actor_id),
                "atRisk": bool(rules),
                "rules": rules,
                "recentEvents": recent[person.actor_id],
                "lastEventAt": micros_text(person.times[-1]),
                "daysSinceLastEvent": days_since,
                "gradePercent": rounded(grade),
            }
        )
    definitions = {
        "activity": f"Events in the {settings.at_risk_activity_days} days before at more than "
        f"{settings.at_risk_activity_percent_below}% below the course average.",
        "no_access": f"No event in the course for more than {settings.at_risk_no_access_days} "
        "days before at.",
        "grade": f"gradePercent more than {settings.at_risk_grade_percent_below}% below the "
        "class average of gradePercent.",
        "gradePercent": DEFINITIONS["gradePercent"],
        "cohort": DEFINITIONS["courseAverages"],
    }
    summary = {
        "courseAverages": {
            "students": len(cohort),
            "recentEvents": rounded(average_recent),
            "gradePercent": rounded(average_grade),
        }
    }
    return Report(
        "at-risk",
        rows,
        method_of(
            query,
            definitions,
            at_risk_activity_days=settings.at_risk_activity_days,
            at_risk_activity_percent_below=settings.at_risk_activity_percent_below,
            at_risk_no_access_days=settings.at_risk_no_access_days,
            at_risk_grade_percent_below=settings.at_risk_grade_percent_below,
        ),
        as_of(snapshot),
        summary,
    )
