"""Realistic traffic for capacity tests and demos: a term of courses, students and their days.

Each simulated day, a share of the students (fewer at weekends) log in, visit one of the
courses they are enrolled in once or a few times, navigate and view content with human gaps
between clicks, sometimes submit, and sometimes log out; each course's instructor grades the
day's submissions a few hours later. The events go out as their producer sends them (``shapes``):
Learn in 100-event envelopes with that day's grades in a burst after the rest, Canvas one event
an envelope, Moodle in Caliper 1.0 queues without ids. The same seed gives the same events with
the same ids, so a second run is counted as duplicates; change the seed for new traffic.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from caliper_store.sensor.envelope import caliper_time
from caliper_store.sensor.shapes import (
    USER_AGENTS,
    Act,
    Kind,
    Shape,
    Visit,
    random_act,
    random_ipv4,
)

# A benchmark's mix of acts per shape, as the producers' streams are made up.
MIXES: Final[dict[str, dict[Kind, int]]] = {
    "learn": {"nav": 55, "view": 33, "grade": 8, "submit": 2, "login": 1, "logout": 1},
    "canvas": {"nav": 72, "view": 8, "login": 5, "logout": 3, "submit": 7, "grade": 5},
    "moodle": {"nav": 50, "view": 35, "submit": 5, "grade": 5, "login": 3, "logout": 2},
}


@dataclass(frozen=True, slots=True)
class Population:
    """Who takes part: courses, students, the days simulated, and the seed of it all."""

    courses: int = 20
    students: int = 500
    days: int = 7
    first_day: date | None = None
    seed: int = 1
    courses_per_student: int = 4

    def __post_init__(self) -> None:
        if min(self.courses, self.students, self.days, self.courses_per_student) < 1:
            raise ValueError("courses, students, days and courses_per_student must be positive")

    @property
    def start(self) -> date:
        """The first day: ``first_day``, or so that the last day simulated is today (UTC)."""
        return self.first_day or datetime.now(UTC).date() - timedelta(days=self.days - 1)

    def enrolments(self, student: int) -> list[int]:
        """The courses a student takes (spread evenly over all courses)."""
        count = min(self.courses_per_student, self.courses)
        return sorted({(student * 7 + k * 13) % self.courses for k in range(count)} or {0})


def traffic(shape: Shape, population: Population) -> Iterator[list[dict[str, Any]]]:
    """Each simulated day's events, in the order the producer sends them."""
    for offset in range(population.days):
        day = population.start + timedelta(days=offset)
        yield _day(shape, population, day)


def random_event(
    shape: Shape,
    rng: random.Random,
    event_time: str,
    event_id: str | None,
    *,
    students: int,
    courses: int,
) -> dict[str, Any]:
    """One event of the shape's usual mix by a random person (benchmark templates)."""
    mix = MIXES[shape.name]
    kind: Kind = rng.choices(list(mix), weights=list(mix.values()))[0]
    visit = shape.random_visit(rng, students, courses)
    return shape.event(visit, random_act(rng, kind, event_time, students), event_id)


def _day(shape: Shape, population: Population, day: date) -> list[dict[str, Any]]:
    rng = random.Random(f"{population.seed}:{shape.name}:{day}")  # noqa: S311  # seeded traffic
    midnight = datetime.combine(day, time(), UTC)
    is_weekend = day.weekday() >= 5
    timed: list[tuple[datetime, Visit, Act]] = []
    submissions: list[tuple[datetime, Visit, Act]] = []
    for student in range(population.students):
        if rng.random() >= (0.3 if is_weekend else 0.6):
            continue
        courses = population.enrolments(student)
        ip, agent = random_ipv4(rng), rng.choice(USER_AGENTS)
        for visit_n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            visit = Visit(
                student, rng.choice(courses), rng.getrandbits(128).to_bytes(16).hex(), ip, agent
            )
            at = midnight + timedelta(seconds=rng.uniform(7 * 3600, 22 * 3600))
            acts: list[Kind] = ["login"] if visit_n == 0 or rng.random() < 0.3 else []
            acts += rng.choices(("nav", "view"), weights=(60, 40), k=rng.randint(3, 15))
            if rng.random() < 0.15:
                acts.append("submit")
            if rng.random() < 0.5:
                acts.append("logout")
            for kind in acts:
                at += timedelta(seconds=rng.uniform(15, 420))
                act = random_act(rng, kind, caliper_time(at), population.students)
                timed.append((at, visit, act))
                if kind == "submit":
                    submissions.append((at, visit, act))
    grades = [
        _grade(rng, population, moment, visit, act, midnight) for moment, visit, act in submissions
    ]
    if shape.is_grading_nightly:
        timed.sort(key=lambda entry: entry[0])
        grades.sort(key=lambda entry: entry[0])
        ordered = timed + grades
    else:
        ordered = sorted(timed + grades, key=lambda entry: entry[0])
    return [shape.event(visit, act, _event_id(shape, rng)) for _, visit, act in ordered]


def _grade(
    rng: random.Random,
    population: Population,
    submitted: datetime,
    visit: Visit,
    act: Act,
    midnight: datetime,
) -> tuple[datetime, Visit, Act]:
    """The instructor's grade of a submission, hours later the same day."""
    graded = min(
        submitted + timedelta(hours=rng.uniform(0.5, 6)), midnight + timedelta(seconds=86_399)
    )
    instructor = population.students + visit.course
    grade = Act(
        "grade",
        caliper_time(graded),
        act.item,
        round(rng.uniform(0, act.max_score), 1),
        act.max_score,
        instructor,
    )
    return graded, visit, grade


def _event_id(shape: Shape, rng: random.Random) -> str | None:
    """A seeded UUID 4, spelt as the producer spells it (Learn: no ``urn:uuid:``)."""
    if not shape.has_event_ids:
        return None
    value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return value if shape.name == "learn" else f"urn:uuid:{value}"
