"""Grades read out of stored events: Caliper 1.1/1.2 GradeEvent and 1.0 OutcomeEvent.

A grade event's actor is whoever scored (an instructor, an autograder); the student is the
Attempt's ``assignee`` (1.1, 1.2) or the Attempt's ``actor`` (1.0, as Moodle sends it). The
score is the Score's ``scoreGiven`` of ``maxScore`` (1.1, 1.2) or the Result's ``totalScore``
(1.0, which has no maximum). Which grade is the latest is decided by ``eventTime``, not by when it
arrived (Learn sends the day's grades at night), and by arrival among equal times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from caliper_store.reports.measures import ReportEvent, read_events, time_conditions
from caliper_store.storage import Condition, EventSource

GRADE_EVENT_TYPES = ("GradeEvent", "OutcomeEvent")


@dataclass(frozen=True, slots=True)
class Grade:
    """One graded attempt as a grade event told it."""

    seq: int
    event_id: str
    event_type: str
    student_id: str | None
    assignable_id: str | None
    attempt_id: str | None
    score_given: float | None
    max_score: float | None
    scorer_id: str | None
    graded_at: str
    received_at: str
    is_latest: bool = False

    @property
    def percent(self) -> float | None:
        """``scoreGiven`` as a percentage of ``maxScore`` (None without both, or for 0 max)."""
        if self.score_given is None or not self.max_score:
            return None
        return 100 * self.score_given / self.max_score

    def as_row(self) -> dict[str, Any]:
        """The grade as a report row."""
        return {
            "eventId": self.event_id,
            "studentId": self.student_id,
            "assignableId": self.assignable_id,
            "attemptId": self.attempt_id,
            "scoreGiven": self.score_given,
            "maxScore": self.max_score,
            "gradedAt": self.graded_at,
            "scorerId": self.scorer_id,
            "receivedAt": self.received_at,
            "eventType": self.event_type,
            "isLatest": self.is_latest,
        }


def _id_of(value: Any) -> str | None:
    """The id of an entity given inline (``id`` or 1.0's ``@id``) or as a bare IRI."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        found = value.get("id", value.get("@id"))
        if isinstance(found, str) and found:
            return found
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def is_grade(event: ReportEvent) -> bool:
    """Whether a stored event records a grade."""
    return event.action == "Graded" and event.event_type in GRADE_EVENT_TYPES


def grade_of(event: ReportEvent, raw: str) -> Grade:
    """The grade a grade event records (fields it lacks are None)."""
    document = orjson.loads(raw)
    item = document if isinstance(document, dict) else {}
    attempt = item.get("object")
    generated = item.get("generated")
    attempt_fields = attempt if isinstance(attempt, dict) else {}
    score = generated if isinstance(generated, dict) else {}
    student: str | None
    if event.event_type == "OutcomeEvent":
        student = _id_of(attempt_fields.get("actor")) or event.actor_id
        score_given = _number(score.get("totalScore"))
        max_score = _number(score.get("maxResultScore"))
    else:
        student = _id_of(attempt_fields.get("assignee"))
        score_given = _number(score.get("scoreGiven"))
        max_score = _number(score.get("maxScore"))
    assignable = _id_of(attempt_fields.get("assignable")) or _id_of(score.get("assignable"))
    return Grade(
        seq=event.seq,
        event_id=event.event_id,
        event_type=event.event_type,
        student_id=student,
        assignable_id=assignable,
        attempt_id=_id_of(attempt),
        score_given=score_given,
        max_score=max_score,
        scorer_id=_id_of(score.get("scoredBy")) or event.actor_id,
        graded_at=event.event_time,
        received_at=event.received_at,
    )


def mark_latest(grades: Iterable[Grade]) -> list[Grade]:
    """The grades in ``gradedAt`` order, each student's latest per assignable marked."""
    ordered = sorted(grades, key=lambda grade: (grade.graded_at, grade.seq))
    latest: dict[tuple[str | None, str | None], int] = {}
    for position, grade in enumerate(ordered):
        if grade.student_id is not None:
            latest[grade.student_id, grade.assignable_id] = position
    chosen = set(latest.values())
    return [replace(grade, is_latest=position in chosen) for position, grade in enumerate(ordered)]


def grades_of(snapshot: EventSource, events: Sequence[ReportEvent]) -> list[Grade]:
    """The grades among these events (read from their raw JSON), latest ones marked."""
    graded = [event for event in events if is_grade(event)]
    raws = snapshot.raw_events([event.seq for event in graded])
    return mark_latest(grade_of(event, raws[event.seq]) for event in graded)


def course_grades(
    snapshot: EventSource,
    group_id: str,
    *,
    since: str | None = None,
    until: str | None = None,
    student_ids: Sequence[str] = (),
) -> list[Grade]:
    """Every grade given in a course (optionally to some students), latest ones marked."""
    conditions = [
        Condition("group_id", "in", (group_id,)),
        Condition("event_type", "in", GRADE_EVENT_TYPES),
        *time_conditions(since, until),
    ]
    grades = grades_of(snapshot, [event for event in read_events(snapshot, conditions)])
    if student_ids:
        wanted = set(student_ids)
        grades = [grade for grade in grades if grade.student_id in wanted]
    return grades


GRADE_DEFINITIONS = {
    "studentId": "The Attempt's assignee (Caliper 1.1, 1.2) or the Attempt's actor (1.0 "
    "OutcomeEvent, as Moodle sends it); the event's actor is whoever scored.",
    "scoreGiven": "The Score's scoreGiven, or the 1.0 Result's totalScore.",
    "maxScore": "The Score's maxScore (1.0 Results have none).",
    "gradedAt": "The grade event's eventTime; receivedAt is when the store received it.",
    "isLatest": "The grade with the latest eventTime for its student and assignable (by "
    "arrival among equal times), however late it arrived.",
}
