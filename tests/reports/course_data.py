"""A small course built for the report tests: every figure in test_reports.py is worked out by
hand from what this module sends (see the comments there).

Course A gets events from Blackboard Learn (Caliper 1.1 batches, grades sent at night, one
batch re-sent, one event sent a day late), Canvas (one event per envelope, one conflicting
re-send that lands in quarantine) and Moodle (Caliper 1.0 without ids, an OutcomeEvent grade).
Course B gets one Canvas event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from tests.fixtures.events import ingest as ingest_body

from caliper_store.privacy import RuleBook
from caliper_store.storage import ApiKey, Store

V1P0 = "http://purl.imsglobal.org/ctx/caliper/v1/Context"
V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
COURSE_A = "https://lms.example.edu/courses/A"
COURSE_B = "https://lms.example.edu/courses/B"
S1 = "https://lms.example.edu/users/s1"  # a Learn student
S2 = "urn:instructure:canvas:user:2"  # a Canvas student
T1 = "https://lms.example.edu/users/t1"  # the instructor, who grades in Learn
M7 = "https://moodle.example.edu/user/profile.php?id=7"  # a Moodle student
ASSIGNMENT = "https://lms.example.edu/courses/A/assignments/x"
MOODLE_QUIZ = "https://moodle.example.edu/mod/quiz/view.php?id=3"
LEARN_SENSOR = "https://lms.example.edu/caliper"
CANVAS_SENSOR = "https://canvas.example.edu/"
MOODLE_SENSOR = "https://moodle.example.edu"
LEARN_SESSION = "https://lms.example.edu/sessions/ls1"
CANVAS_SESSION = "urn:instructure:canvas:session:cs2"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


def _id(label: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, label)}"


def learn_event(
    actor: str,
    event_type: str,
    action: str,
    time: str,
    *,
    group: str | None = COURSE_A,
    role: str = "Learner",
    session: str | None = None,
    label: str,
) -> dict[str, Any]:
    """A Learn-shaped 1.1 event (the group carries a courseNumber, as Learn's do)."""
    event: dict[str, Any] = {
        "@context": V1P1,
        "id": _id(label),
        "type": event_type,
        "actor": {"id": actor, "type": "Person"},
        "action": action,
        "object": {"id": f"https://lms.example.edu/content/{label}", "type": "WebPage"},
        "eventTime": time,
        "edApp": {"id": "https://lms.example.edu", "type": "SoftwareApplication"},
        "extensions": {"bb:user.externalId": "L-" + actor.rsplit("/", 1)[-1]},
    }
    if group is not None:
        event["group"] = {"id": group, "type": "CourseSection", "courseNumber": "BIO-101"}
        event["membership"] = {
            "id": f"{group}/members/{label}",
            "type": "Membership",
            "member": actor,
            "organization": group,
            "roles": [role],
        }
    if session is not None:
        event["session"] = {"id": session, "type": "Session"}
    return event


def learn_grade(student: str, score: float, time: str, *, label: str) -> dict[str, Any]:
    """A GradeEvent of the instructor's: the student is the Attempt's assignee."""
    return {
        "@context": V1P1,
        "id": _id(label),
        "type": "GradeEvent",
        "actor": {"id": T1, "type": "Person"},
        "action": "Graded",
        "object": {
            "id": f"{ASSIGNMENT}/attempts/{label}",
            "type": "Attempt",
            "assignee": {"id": student, "type": "Person"},
            "assignable": {"id": ASSIGNMENT, "type": "AssignableDigitalResource"},
        },
        "generated": {
            "id": f"{ASSIGNMENT}/attempts/{label}/score",
            "type": "Score",
            "scoreGiven": score,
            "maxScore": 10.0,
            "scoredBy": T1,
        },
        "eventTime": time,
        "group": {"id": COURSE_A, "type": "CourseSection"},
        "membership": {
            "id": f"{COURSE_A}/members/t1",
            "type": "Membership",
            "member": T1,
            "organization": COURSE_A,
            "roles": ["Instructor"],
        },
    }


def canvas_event(
    action_time: str,
    *,
    group: str = COURSE_A,
    event_type: str = "NavigationEvent",
    action: str = "NavigatedTo",
    label: str,
) -> dict[str, Any]:
    """A Canvas-shaped 1.1 event of S2's, in session CANVAS_SESSION."""
    event: dict[str, Any] = {
        "@context": V1P1,
        "id": _id(label),
        "type": event_type,
        "actor": {"id": S2, "type": "Person"},
        "action": action,
        "object": {"id": f"urn:instructure:canvas:wiki_page:{label}", "type": "Page"},
        "eventTime": action_time,
        "edApp": {"id": CANVAS_SENSOR, "type": "SoftwareApplication"},
        "session": {"id": CANVAS_SESSION, "type": "Session"},
        "extensions": {"com.instructure.canvas": {"user_sis_id": "SIS2"}},
    }
    if event_type != "SessionEvent":
        event["group"] = {"id": group, "type": "CourseOffering"}
        event["membership"] = {
            "id": f"urn:instructure:canvas:membership:{label}",
            "type": "Membership",
            "member": S2,
            "organization": group,
            "roles": ["Learner"],
        }
    return event


def moodle_event(time: str, *, graded: float | None = None) -> dict[str, Any]:
    """A Moodle-shaped Caliper 1.0 event of M7's (no id; IRI types and actions)."""
    event: dict[str, Any] = {
        "@context": V1P0,
        "@type": "http://purl.imsglobal.org/caliper/v1/NavigationEvent",
        "actor": {
            "@id": M7,
            "@type": "http://purl.imsglobal.org/caliper/v1/lis/Person",
            "name": "Seven Student",
        },
        "action": "http://purl.imsglobal.org/vocab/caliper/v1/action#NavigatedTo",
        "object": {
            "@id": MOODLE_QUIZ,
            "@type": "http://purl.imsglobal.org/caliper/v1/DigitalResource",
        },
        "eventTime": time,
        "edApp": {
            "@id": MOODLE_SENSOR,
            "@type": "http://purl.imsglobal.org/caliper/v1/SoftwareApplication",
        },
        "group": {
            "@id": COURSE_A,
            "@type": "http://purl.imsglobal.org/caliper/v1/lis/CourseOffering",
            "name": "Biology 101 (Moodle)",
        },
        "membership": {
            "@id": f"{COURSE_A}/members/m7",
            "@type": "http://purl.imsglobal.org/caliper/v1/lis/Membership",
            "member": M7,
            "organization": COURSE_A,
            "roles": [MEMBERSHIP + "Learner"],
        },
    }
    if graded is not None:
        event["@type"] = "http://purl.imsglobal.org/caliper/v1/OutcomeEvent"
        event["action"] = "http://purl.imsglobal.org/vocab/caliper/v1/action#Graded"
        event["object"] = {
            "@id": f"{MOODLE_QUIZ}/attempt/1",
            "@type": "http://purl.imsglobal.org/caliper/v1/Attempt",
            "assignable": MOODLE_QUIZ,
            "actor": M7,
            "count": 1,
        }
        event["generated"] = {
            "@id": f"{MOODLE_QUIZ}/attempt/1/result",
            "@type": "http://purl.imsglobal.org/caliper/v1/Result",
            "assignable": MOODLE_QUIZ,
            "actor": M7,
            "totalScore": graded,
            "scoredBy": {
                "@id": MOODLE_SENSOR,
                "@type": "http://purl.imsglobal.org/caliper/v1/SoftwareApplication",
            },
        }
    return event


def _body(sensor: str, events: list[dict[str, Any]], *, data_version: bool = True) -> bytes:
    envelope: dict[str, Any] = {
        "sensor": sensor,
        "sendTime": events[0]["eventTime"],
        "data": events,
    }
    if data_version:
        envelope["dataVersion"] = V1P1
    return orjson.dumps(envelope)


@dataclass(frozen=True)
class CourseKeys:
    """The three producers' keys."""

    learn: ApiKey
    canvas: ApiKey
    moodle: ApiKey


def _key(store: Store, label: str) -> ApiKey:
    raw, _ = store.keys.create(label=label, now="2024-03-01T00:00:00.000000Z")
    key = store.keys.authenticate(raw)
    assert key is not None
    return key


def fill_course(store: Store, rules: RuleBook | None = None) -> CourseKeys:
    """Send the course's traffic (times are 2024-03-04 and -05 UTC unless said).

    With ``rules``, every request goes through those ingest rules.
    """
    keys = CourseKeys(_key(store, "Learn"), _key(store, "Canvas"), _key(store, "Moodle"))

    def ingest(store: Store, key: ApiKey, body: bytes, received_at: str) -> None:
        ingest_body(store, key, body, received_at, rules)

    first_batch = _body(
        LEARN_SENSOR,
        [
            learn_event(
                T1,
                "ViewEvent",
                "Viewed",
                "2024-03-04T09:00:00.000Z",
                role="Instructor",
                label="t1-view",
            ),
            learn_event(
                S1,
                "SessionEvent",
                "LoggedIn",
                "2024-03-04T09:55:00.000Z",
                group=None,
                session=LEARN_SESSION,
                label="s1-in",
            ),
            learn_event(
                S1,
                "NavigationEvent",
                "NavigatedTo",
                "2024-03-04T10:00:00.000Z",
                session=LEARN_SESSION,
                label="s1-nav",
            ),
            learn_event(S1, "ViewEvent", "Viewed", "2024-03-04T10:10:00.000Z", label="s1-view"),
            learn_event(
                S1, "AssessmentEvent", "Started", "2024-03-04T10:50:00.000Z", label="s1-start"
            ),
            learn_event(
                S1, "AssessmentEvent", "Submitted", "2024-03-04T11:00:00.000Z", label="s1-submit"
            ),
            learn_event(
                S1,
                "SessionEvent",
                "LoggedOut",
                "2024-03-04T11:05:00.000Z",
                group=None,
                session=LEARN_SESSION,
                label="s1-out",
            ),
        ],
    )
    ingest(store, keys.learn, first_batch, "2024-03-04T12:00:00.000000Z")
    for label, time, received in (
        ("s2-in", "2024-03-04T10:00:00.000Z", "2024-03-04T10:01:00.000000Z"),
        ("s2-nav1", "2024-03-04T10:05:00.000Z", "2024-03-04T10:06:00.000000Z"),
        ("s2-nav2", "2024-03-04T10:20:00.000Z", "2024-03-04T10:21:00.000000Z"),
    ):
        kind = (
            ("SessionEvent", "LoggedIn") if label == "s2-in" else ("NavigationEvent", "NavigatedTo")
        )
        event = canvas_event(time, event_type=kind[0], action=kind[1], label=label)
        ingest(store, keys.canvas, _body(CANVAS_SENSOR, [event]), received)
    course_b = canvas_event("2024-03-04T14:00:00.000Z", group=COURSE_B, label="s2-b")
    del course_b["session"]
    ingest(store, keys.canvas, _body(CANVAS_SENSOR, [course_b]), "2024-03-04T14:05:00.000000Z")
    moodle = [
        moodle_event("2024-03-04T10:00:00.000Z"),
        moodle_event("2024-03-04T10:45:00.000Z"),
        moodle_event("2024-03-04T16:00:00.000Z", graded=8.0),
    ]
    ingest(
        store,
        keys.moodle,
        _body(MOODLE_SENSOR, moodle, data_version=False),
        "2024-03-04T16:30:00.000000Z",
    )
    next_day = learn_event(
        S1, "NavigationEvent", "NavigatedTo", "2024-03-05T09:00:00.000Z", label="s1-nav-next"
    )
    ingest(store, keys.learn, _body(LEARN_SENSOR, [next_day]), "2024-03-05T09:30:00.000000Z")
    # The same id as s2-nav1 with other content: a conflict, held in quarantine.
    conflicting = canvas_event("2024-03-04T10:05:00.000Z", label="s2-nav1")
    conflicting["object"]["id"] = "urn:instructure:canvas:wiki_page:other"
    ingest(store, keys.canvas, _body(CANVAS_SENSOR, [conflicting]), "2024-03-05T10:10:00.000000Z")
    # Sent a day late: it fills the gap between 10:10 and 10:50 on the 4th.
    late = learn_event(S1, "ViewEvent", "Viewed", "2024-03-04T10:30:00.000Z", label="s1-late")
    ingest(store, keys.learn, _body(LEARN_SENSOR, [late]), "2024-03-05T12:00:00.000000Z")
    # Learn re-sends its first batch: every event a duplicate.
    ingest(store, keys.learn, first_batch, "2024-03-05T13:00:00.000000Z")
    # Grades, sent at night; the earlier-given 5/10 arrives after the 7/10.
    nightly = [
        learn_grade(S1, 7.0, "2024-03-05T12:00:00.000Z", label="g-s1-7"),
        learn_grade(S2, 3.0, "2024-03-05T12:30:00.000Z", label="g-s2-3"),
    ]
    ingest(store, keys.learn, _body(LEARN_SENSOR, nightly), "2024-03-06T02:00:00.000000Z")
    older = learn_grade(S1, 5.0, "2024-03-05T08:00:00.000Z", label="g-s1-5")
    ingest(store, keys.learn, _body(LEARN_SENSOR, [older]), "2024-03-06T03:00:00.000000Z")
    return keys
