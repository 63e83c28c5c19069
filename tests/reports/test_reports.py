"""Every report against figures worked out by hand from tests/reports/course_data.py.

Course A, by person (UTC; sessionGapMinutes 30):
- S1 (Learn, Learner): 03-04 10:00 nav, 10:10 view, 10:30 view (sent a day late), 10:50
  assessment started, 11:00 submitted; 03-05 09:00 nav. Gaps 10, 20, 20, 10 minutes, then 22 h:
  2 visits, 3,600 s active, 2 days, 4 views. Grades 7/10 (given 03-05 12:00) and 5/10 (given
  08:00, arrived later): the latest is 7/10.
- S2 (Canvas, Learner): 03-04 10:05 and 10:20: 1 visit, 900 s. Grade 3/10 at 03-05 12:30.
- T1 (Learn, Instructor): 03-04 09:00 view; grades at 03-05 08:00, 12:00, 12:30: gaps 23 h, 4 h,
  30 min: 3 visits, 1,800 s.
- M7 (Moodle 1.0, Learner, named): 03-04 10:00, 10:45 navs, 16:00 OutcomeEvent graded 8 (no
  maximum): 3 visits, 0 s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from tests.fixtures.events import ingest
from tests.reports.course_data import (
    ASSIGNMENT,
    CANVAS_SENSOR,
    CANVAS_SESSION,
    COURSE_A,
    COURSE_B,
    LEARN_SENSOR,
    LEARN_SESSION,
    M7,
    MOODLE_QUIZ,
    MOODLE_SENSOR,
    S1,
    S2,
    T1,
    fill_course,
    learn_event,
)

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery, NotFound
from caliper_store.reports import Report, report_csv, run_report, run_reports
from caliper_store.storage import Store

AFTER_A_WEEK = "2024-03-12T10:00:00Z"


def report(store: Store, name: str, **params: str) -> Report:
    return run_report(store, name, {k: [v] for k, v in params.items()}, Settings())


@pytest.fixture
def course(store: Store) -> Store:
    fill_course(store)
    return store


def by_actor(found: Report, key: str = "actorId") -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in found.rows}


def test_student_activity_counts_visits_time_and_grades_as_worked_out(course: Store) -> None:
    found = report(course, "student-activity", groupId=COURSE_A, at=AFTER_A_WEEK)
    rows = by_actor(found)
    assert set(rows) == {S1, S2, T1, M7}
    s1 = rows[S1]
    assert s1 == {
        "actorId": S1,
        "name": None,
        "externalId": "L-s1",
        "roles": ["Learner"],
        "events": 6,
        "activeDays": 2,
        "visits": 2,
        "timeActiveSeconds": 3600.0,
        "firstEventAt": "2024-03-04T10:00:00.000000Z",
        "lastEventAt": "2024-03-05T09:00:00.000000Z",
        "daysSinceLastEvent": 7,
        "views": 4,
        "submissions": 1,
        "assessmentsStarted": 1,
        "latestGrades": [
            {
                "objectId": ASSIGNMENT,
                "scoreGiven": 7.0,
                "maxScore": 10.0,
                "gradedAt": "2024-03-05T12:00:00.000000Z",
            }
        ],
        "gradePercent": 70.0,
        "inactive": True,
    }
    assert (rows[S2]["visits"], rows[S2]["timeActiveSeconds"], rows[S2]["externalId"]) == (
        1,
        900.0,
        "SIS2",
    )
    assert rows[S2]["gradePercent"] == 30.0
    assert (rows[T1]["events"], rows[T1]["visits"], rows[T1]["timeActiveSeconds"]) == (4, 3, 1800.0)
    assert rows[T1]["roles"] == ["Instructor"]
    m7 = rows[M7]
    assert (m7["name"], m7["events"], m7["visits"], m7["views"]) == ("Seven Student", 3, 3, 2)
    assert m7["latestGrades"] == [
        {
            "objectId": MOODLE_QUIZ,
            "scoreGiven": 8.0,
            "maxScore": None,
            "gradedAt": "2024-03-04T16:00:00.000000Z",
        }
    ]
    # The learners S1, S2 and M7; the instructor is not averaged.
    assert found.summary["courseAverages"] == {
        "students": 3,
        "events": 3.67,
        "activeDays": 1.33,
        "visits": 2.0,
        "timeActiveSeconds": 1500.0,
        "views": 2.67,
        "submissions": 0.33,
        "assessmentsStarted": 0.33,
        "gradePercent": 50.0,
    }
    assert found.as_of == "2024-03-06T03:00:00.000000Z"
    assert found.method["parameters"]["sessionGapMinutes"] == 30
    assert "visits" in found.method["definitions"]


def test_student_activity_follows_the_gap_and_the_period_asked_for(course: Store) -> None:
    # A 60-minute gap joins S1's 4th into one visit, and M7's 10:00 and 10:45.
    wide = by_actor(
        report(
            course, "student-activity", groupId=COURSE_A, sessionGapMinutes="60", at=AFTER_A_WEEK
        )
    )
    assert (wide[S1]["visits"], wide[S1]["timeActiveSeconds"]) == (2, 3600.0)
    assert (wide[M7]["visits"], wide[M7]["timeActiveSeconds"]) == (2, 2700.0)
    since = by_actor(report(course, "student-activity", groupId=COURSE_A, since="2024-03-05"))
    assert set(since) == {S1, T1}
    assert since[S1]["events"] == 1
    assert since[S1]["latestGrades"][0]["scoreGiven"] == 7.0
    # Not inactive within a week of the 5th.
    recent = by_actor(
        report(course, "student-activity", groupId=COURSE_A, at="2024-03-06T10:00:00Z")
    )
    assert (recent[S1]["inactive"], recent[S1]["daysSinceLastEvent"]) == (False, 1)


def test_an_unknown_course_is_an_empty_report(course: Store) -> None:
    found = report(course, "student-activity", groupId="https://lms.example.edu/courses/none")
    assert found.rows == []
    assert found.summary["courseAverages"]["students"] == 0


def test_courses_lists_every_group_with_its_producers(course: Store) -> None:
    rows = by_actor(report(course, "courses", at="2024-03-06T10:00:00Z"), "groupId")
    assert set(rows) == {COURSE_A, COURSE_B}
    a = rows[COURSE_A]
    assert (a["events"], a["students"], a["activeStudents7d"]) == (15, 4, 4)
    # The newest event of A that names its group is Learn's (courseNumber); the grades do not.
    assert a["name"] == "BIO-101"
    assert [key["label"] for key in a["keys"]] == ["Learn", "Canvas", "Moodle"]
    assert a["sensors"] == sorted([LEARN_SENSOR, CANVAS_SENSOR, MOODLE_SENSOR])
    assert (a["firstEventAt"], a["lastEventAt"]) == (
        "2024-03-04T09:00:00.000000Z",
        "2024-03-05T12:30:00.000000Z",
    )
    assert (rows[COURSE_B]["events"], rows[COURSE_B]["students"]) == (1, 1)
    # A week later only T1's grading on the 5th at 12:00 and 12:30 is within 7 days.
    later = by_actor(report(course, "courses", at=AFTER_A_WEEK), "groupId")
    assert later[COURSE_A]["activeStudents7d"] == 1


def test_course_activity_counts_days_by_type_in_the_zone_asked_for(course: Store) -> None:
    found = report(course, "course-activity", groupId=COURSE_A)
    assert found.rows == [
        {
            "date": "2024-03-04",
            "events": 11,
            "activeStudents": 4,
            "eventsByType": {
                "AssessmentEvent": 2,
                "NavigationEvent": 5,
                "OutcomeEvent": 1,
                "ViewEvent": 3,
            },
        },
        {
            "date": "2024-03-05",
            "events": 4,
            "activeStudents": 2,
            "eventsByType": {"GradeEvent": 3, "NavigationEvent": 1},
        },
    ]
    assert found.summary["weeks"] == [{"week": "2024-W10", "activeStudents": 4}]
    # In Tokyo (UTC+9) Moodle's 16:00 grade falls on the 5th.
    tokyo = report(course, "course-activity", groupId=COURSE_A, tz="Asia/Tokyo")
    assert [(row["date"], row["events"]) for row in tokyo.rows] == [
        ("2024-03-04", 10),
        ("2024-03-05", 5),
    ]


def test_grades_mark_the_latest_by_event_time_not_arrival(course: Store) -> None:
    found = report(course, "grades", groupId=COURSE_A)
    shown = [
        (row["studentId"], row["scoreGiven"], row["maxScore"], row["isLatest"], row["eventType"])
        for row in found.rows
    ]
    assert shown == [
        (M7, 8.0, None, True, "OutcomeEvent"),
        (S1, 5.0, 10.0, False, "GradeEvent"),
        (S1, 7.0, 10.0, True, "GradeEvent"),
        (S2, 3.0, 10.0, True, "GradeEvent"),
    ]
    seven = found.rows[2]
    assert (seven["assignableId"], seven["scorerId"], seven["gradedAt"], seven["receivedAt"]) == (
        ASSIGNMENT,
        T1,
        "2024-03-05T12:00:00.000000Z",
        "2024-03-06T02:00:00.000000Z",
    )
    assert found.rows[0]["scorerId"] == MOODLE_SENSOR
    only_s2 = report(course, "grades", groupId=COURSE_A, actorId=S2)
    assert [row["scoreGiven"] for row in only_s2.rows] == [3.0]


def test_sessions_pair_logins_with_their_end_or_last_event(course: Store) -> None:
    found = report(course, "sessions")
    assert found.rows == [
        {
            "actorId": S1,
            "sessionId": LEARN_SESSION,
            "startedAt": "2024-03-04T09:55:00.000000Z",
            "endedAt": "2024-03-04T11:05:00.000000Z",
            "endedBy": "LoggedOut",
            "durationSeconds": 4200.0,
        },
        {
            "actorId": S2,
            "sessionId": CANVAS_SESSION,
            "startedAt": "2024-03-04T10:00:00.000000Z",
            "endedAt": "2024-03-04T10:20:00.000000Z",
            "endedBy": "lastEvent",
            "durationSeconds": 1200.0,
        },
    ]
    assert found.summary["days"] == [
        {"date": "2024-03-04", "logins": 2, "logouts": 1, "timeouts": 0}
    ]
    only_s2 = report(course, "sessions", actorId=S2)
    assert [row["actorId"] for row in only_s2.rows] == [S2]
    assert only_s2.summary["days"] == [
        {"date": "2024-03-04", "logins": 1, "logouts": 0, "timeouts": 0}
    ]


APP = "https://lms.example.edu"


def _session_event(number: int, actor: str, action: str, time: str, session: str | None) -> Any:
    """A Learn SessionEvent (course_data's builder); the application's own is no Person's."""
    event = learn_event(
        actor, "SessionEvent", action, time, group=None, session=session, label=f"session-{number}"
    )
    if actor == APP:
        event["actor"]["type"] = "SoftwareApplication"
    return event


def test_one_persons_sessions_include_the_applications_timeout_and_nobody_elses(
    store: Store,
) -> None:
    """S1's session ends with the application's TimedOut; S2's events are S2's alone.

    Each sessionless login and logout is counted as its own actor's only.
    """
    sessions = [
        (S1, "LoggedIn", "2024-03-04T09:00:00.000Z", "urn:s:1"),
        (S2, "LoggedIn", "2024-03-04T09:10:00.000Z", "urn:s:2"),
        (S2, "LoggedOut", "2024-03-04T09:40:00.000Z", "urn:s:2"),
        (APP, "TimedOut", "2024-03-04T10:00:00.000Z", "urn:s:1"),
        (S1, "LoggedIn", "2024-03-05T08:00:00.000Z", None),
        (S2, "LoggedOut", "2024-03-05T08:30:00.000Z", None),
    ]
    _, key = store.keys.create(label="Learn", now="2024-03-01T00:00:00.000000Z")
    body = orjson.dumps(
        {
            "sensor": APP,
            "sendTime": "2024-03-05T09:00:00.000Z",
            "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p1",
            "data": [_session_event(n, *event) for n, event in enumerate(sessions)],
        }
    )
    ingest(store, key, body, "2024-03-05T09:00:00.000000Z")
    everyone = report(store, "sessions")
    for person, days in [
        (
            S1,
            [
                {"date": "2024-03-04", "logins": 1, "logouts": 0, "timeouts": 1},
                {"date": "2024-03-05", "logins": 1, "logouts": 0, "timeouts": 0},
            ],
        ),
        (
            S2,
            [
                {"date": "2024-03-04", "logins": 1, "logouts": 1, "timeouts": 0},
                {"date": "2024-03-05", "logins": 0, "logouts": 1, "timeouts": 0},
            ],
        ),
    ]:
        alone = report(store, "sessions", actorId=person)
        assert alone.rows == [row for row in everyone.rows if row["actorId"] == person]
        assert alone.summary["days"] == days
    assert [(row["actorId"], row["endedBy"]) for row in everyone.rows] == [
        (S1, "TimedOut"),
        (S2, "LoggedOut"),
    ]


def test_delivery_counts_each_key_by_hour_with_lag_quarantine_and_silence(
    course: Store,
) -> None:
    found = report(
        course,
        "delivery",
        since="2024-03-04T14:00:00Z",
        until="2024-03-05T14:00:00Z",
        at="2024-03-05T14:30:00Z",
    )
    shown = {
        (row["keyLabel"], row["hour"]): (
            row["envelopes"],
            row["items"],
            row["stored"],
            row["duplicates"],
            row["quarantined"],
            row["eventsStored"],
            row["lagP50Seconds"],
            row["lagP95Seconds"],
            row["lagMaxSeconds"],
        )
        for row in found.rows
    }
    assert shown == {
        ("Canvas", "2024-03-04T14:00:00.000000Z"): (1, 1, 1, 0, 0, 1, 300.0, 300.0, 300.0),
        ("Moodle", "2024-03-04T16:00:00.000000Z"): (1, 3, 3, 0, 0, 3, 20700.0, 23400.0, 23400.0),
        ("Learn", "2024-03-05T09:00:00.000000Z"): (1, 1, 1, 0, 0, 1, 1800.0, 1800.0, 1800.0),
        ("Canvas", "2024-03-05T10:00:00.000000Z"): (1, 1, 0, 0, 1, 0, None, None, None),
        ("Learn", "2024-03-05T12:00:00.000000Z"): (1, 1, 1, 0, 0, 1, 91800.0, 91800.0, 91800.0),
        ("Learn", "2024-03-05T13:00:00.000000Z"): (1, 7, 0, 7, 0, 0, None, None, None),
    }
    quarantined = next(row for row in found.rows if row["quarantined"])
    assert quarantined["quarantinedByReason"] == {"id_conflict": 1}
    # Canvas sent between 13:30 and 14:30 on the 4th, and not since 13:30 on the 5th.
    keys = {key["keyLabel"]: key for key in found.summary["keys"]}
    assert {label: key["silent"] for label, key in keys.items()} == {
        "Learn": False,
        "Canvas": True,
        "Moodle": False,
    }
    assert keys["Canvas"]["lastSeenAt"] == "2024-03-05T10:10:00.000000Z"


def test_at_risk_fires_the_retention_center_rules(course: Store) -> None:
    # On the 6th: recent events S1 6, S2 2, M7 3 (mean 3.67, floor 2.93): S2 is low; grades S1
    # 70%, S2 30% (mean 50, floor 37.5): S2 is low; nobody has been away for 5 days.
    found = by_actor(report(course, "at-risk", groupId=COURSE_A, at="2024-03-06T10:00:00Z"))
    assert {actor: row["rules"] for actor, row in found.items()} == {
        S1: [],
        S2: ["activity", "grade"],
        M7: [],
    }
    assert found[S2]["atRisk"] is True
    # A week later nobody has a recent event (no activity rule against a mean of 0), everyone
    # has been away more than 5 days, and S2's grade is still low.
    a_week_later = by_actor(report(course, "at-risk", groupId=COURSE_A, at=AFTER_A_WEEK))
    assert {actor: row["rules"] for actor, row in a_week_later.items()} == {
        S1: ["no_access"],
        S2: ["no_access", "grade"],
        M7: ["no_access"],
    }


def test_csv_holds_the_rows_with_nested_values_as_json(course: Store) -> None:
    found = report(course, "student-activity", groupId=COURSE_A, at=AFTER_A_WEEK)
    lines = report_csv(found).splitlines()
    assert lines[0].startswith("actorId,name,externalId,roles,events,activeDays,visits,")
    s1 = next(line for line in lines if line.startswith(S1))
    assert '"[""Learner""]"' in s1
    assert ",true" in s1
    assert len(lines) == 1 + len(found.rows)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("student-activity", {}, "groupId"),
        ("student-activity", {"groupId": COURSE_A, "since": "yesterday"}, "since"),
        ("student-activity", {"groupId": COURSE_A, "tz": "Mars/Olympus"}, "tz"),
        ("student-activity", {"groupId": COURSE_A, "sessionGapMinutes": "0"}, "sessionGapMinutes"),
        ("courses", {"groupId": COURSE_A}, "groupId"),
        ("courses", {"since": "2024-03-05", "until": "2024-03-04"}, "until"),
        ("grades", {"groupId": COURSE_A, "color": "red"}, "color"),
    ],
)
def test_bad_parameters_are_refused_naming_them(
    course: Store, name: str, params: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidQuery) as raised:
        report(course, name, **params)
    assert raised.value.field == field


def test_an_unknown_report_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        report(store, "everything")


def test_reports_of_an_empty_store_are_empty(store: Store) -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    for name in ("courses", "sessions", "delivery"):
        found = run_report(store, name, {}, Settings(), now=now)
        assert (found.rows, found.as_of) == ([], None)


def test_overview_counts_events_per_day_and_key(course: Store) -> None:
    found = report(course, "overview", at="2024-03-06T10:00:00Z")
    assert [(row["date"], row["keyLabel"], row["events"]) for row in found.rows] == [
        ("2024-03-04", "Learn", 8),  # the first batch's 7 and the late view
        ("2024-03-04", "Canvas", 4),
        ("2024-03-04", "Moodle", 3),
        ("2024-03-05", "Learn", 4),
    ]
    assert [(key["keyLabel"], key["events"]) for key in found.summary["keys"]] == [
        ("Learn", 12),
        ("Canvas", 4),
        ("Moodle", 3),
    ]
    assert found.summary["quarantineHeld"] == {"id_conflict": 1}
    # The window is the 30 days before at.
    assert report(course, "overview", at="2024-05-01T00:00:00Z").rows == []
    # Bounds within days are counted from the events: on the 5th, only 08:00 and 09:00.
    partial = report(course, "overview", since="2024-03-04T06:00:00Z", until="2024-03-05T10:00:00Z")
    assert [(row["date"], row["keyLabel"], row["events"]) for row in partial.rows] == [
        ("2024-03-04", "Learn", 8),
        ("2024-03-04", "Canvas", 4),
        ("2024-03-04", "Moodle", 3),
        ("2024-03-05", "Learn", 2),
    ]


def test_reports_run_together_answer_as_each_alone(course: Store) -> None:
    # The dashboard's course page: three reports over one course, from one snapshot, reading
    # its events once; each must answer what it answers alone.
    wanted: list[tuple[str, dict[str, list[str]]]] = [
        ("student-activity", {"groupId": [COURSE_A], "at": [AFTER_A_WEEK]}),
        ("course-activity", {"groupId": [COURSE_A]}),
        ("at-risk", {"groupId": [COURSE_A], "at": [AFTER_A_WEEK]}),
        ("grades", {"groupId": [COURSE_A], "actorId": [S2]}),
        ("delivery", {"at": ["2024-03-05T14:30:00Z"]}),
    ]
    together = run_reports(course, wanted, Settings())
    alone = [run_report(course, name, values, Settings()) for name, values in wanted]
    assert [(found.name, found.rows, found.summary) for found in together] == [
        (found.name, found.rows, found.summary) for found in alone
    ]
    assert all(found.rows for found in together)
