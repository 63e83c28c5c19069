"""Reports agree with a direct computation over the raw events read back, on generated traffic.

Each example sends its own events (some envelopes twice) into courses of its own, then compares
student-activity, course-activity and courses with figures computed here, independently, from
the raw JSON the store returns for those courses, and delivery with the envelopes it sent.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.fixtures.events import ingest

from caliper_store.config import Settings
from caliper_store.reports import run_report, verify_rollups
from caliper_store.storage import ApiKey, Condition, Store

V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
START = datetime(2024, 5, 6, tzinfo=UTC)
TYPES = (
    ("NavigationEvent", "NavigatedTo"),
    ("ViewEvent", "Viewed"),
    ("AssessmentEvent", "Submitted"),
)
EXAMPLES = itertools.count()
GAP_MINUTES = 30

event_strategy = st.tuples(
    st.integers(0, 2),  # actor
    st.booleans(),  # is a Person (else a SoftwareApplication)
    st.integers(0, 1),  # course
    # Minutes since START; half of them on the half hour, so gaps of exactly the session gap occur.
    st.one_of(st.integers(0, 3 * 24 * 60), st.integers(0, 24 * 2).map(lambda n: n * 30)),
    st.integers(0, len(TYPES) - 1),
)


def _events(example: int, drawn: list[tuple[int, bool, int, int, int]]) -> list[dict[str, Any]]:
    made = []
    for number, (actor, is_person, course, minute, kind) in enumerate(drawn):
        event_type, action = TYPES[kind]
        made.append(
            {
                "@context": V1P2,
                "id": f"urn:uuid:{uuid.uuid4()}",
                "type": event_type,
                "actor": {
                    "id": f"https://p.example.edu/{example}/users/{actor}",
                    "type": "Person" if is_person else "SoftwareApplication",
                },
                "action": action,
                "object": {"id": f"https://p.example.edu/objects/{number}", "type": "WebPage"},
                "eventTime": _text(START + timedelta(minutes=minute)),
                "group": {"id": _course(example, course), "type": "CourseOffering"},
            }
        )
    return made


def _envelope(batch: list[dict[str, Any]], send_time: str) -> bytes:
    """One envelope of the test's sensor holding ``batch``."""
    return orjson.dumps(
        {
            "sensor": "https://p.example.edu",
            "sendTime": send_time,
            "dataVersion": V1P2,
            "data": batch,
        }
    )


def _text(moment: datetime) -> str:
    """An aware UTC datetime as Caliper writes a time."""
    return moment.isoformat().replace("+00:00", "Z")


def _course(example: int, course: int) -> str:
    return f"https://p.example.edu/{example}/courses/{course}"


def _read_back(store: Store, group: str) -> list[dict[str, Any]]:
    """The raw events of a course as the store returns them, parsed here."""
    found: list[dict[str, Any]] = []
    for batch in store.events.batches(
        [Condition("group_id", "in", (group,))], batch_events=1000, with_raw=True
    ):
        found.extend(orjson.loads(record.raw or "") for record in batch)
    return found


def _expected_activity(raw: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, float]]:
    """actor: (events, activeDays, visits, timeActiveSeconds), straight from the definitions."""
    times: dict[str, list[datetime]] = defaultdict(list)
    for event in raw:
        if event["actor"]["type"] == "Person":
            times[event["actor"]["id"]].append(datetime.fromisoformat(event["eventTime"]))
    expected = {}
    for actor, moments in times.items():
        moments.sort()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
        long_gaps = [gap for gap in gaps if gap > GAP_MINUTES * 60]
        expected[actor] = (
            len(moments),
            len({moment.date() for moment in moments}),
            1 + len(long_gaps),
            round(sum(gap for gap in gaps if gap <= GAP_MINUTES * 60), 2),
        )
    return expected


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=st.lists(event_strategy, min_size=1, max_size=40),
    resent=st.sets(st.integers(0, 7), max_size=3),
)
# One gap of exactly the session gap (it does not start a visit) and one a minute longer.
@example(drawn=[(0, True, 0, 0, 0), (0, True, 0, 30, 1), (0, True, 0, 61, 2)], resent={0})
def test_reports_agree_with_the_raw_events(
    store: Store, drawn: list[tuple[int, bool, int, int, int]], resent: set[int]
) -> None:
    example = next(EXAMPLES)
    key = _key(store, example)
    events = _events(example, drawn)
    envelopes = [events[start : start + 5] for start in range(0, len(events), 5)]
    for number, batch in enumerate(envelopes):
        body = _envelope(batch, "2024-05-10T00:00:00Z")
        ingest(store, key, body, f"2024-05-10T00:00:{number:02d}.000000Z")
        if number in resent:  # a retry: every event in it a duplicate
            ingest(store, key, body, f"2024-05-10T00:01:{number:02d}.000000Z")
    courses = {
        row["groupId"]: row
        for row in run_report(store, "courses", {"at": ["2024-05-10"]}, Settings()).rows
    }
    for course in {_course(example, number) for _, _, number, _, _ in drawn}:
        raw = _read_back(store, course)
        assert len(raw) == sum(1 for event in events if event["group"]["id"] == course)
        expected = _expected_activity(raw)
        found = run_report(store, "student-activity", {"groupId": [course]}, Settings())
        got = {
            row["actorId"]: (
                row["events"],
                row["activeDays"],
                row["visits"],
                row["timeActiveSeconds"],
            )
            for row in found.rows
        }
        assert got == expected
        days = run_report(store, "course-activity", {"groupId": [course]}, Settings())
        by_day = Counter(event["eventTime"][:10] for event in raw)
        assert {row["date"]: row["events"] for row in days.rows} == dict(by_day)
        assert (courses[course]["events"], courses[course]["students"]) == (len(raw), len(expected))
    assert _delivered(store, key) == _expected_delivery(events, envelopes, resent)
    assert verify_rollups(store) == []


def _delivered(store: Store, key: ApiKey) -> list[tuple[object, ...]]:
    """This example's key's rows of the delivery report for the day everything was sent."""
    found = run_report(
        store,
        "delivery",
        {"since": ["2024-05-10"], "until": ["2024-05-11"], "at": ["2024-05-11"]},
        Settings(),
    )
    return [
        (
            row["hour"],
            row["envelopes"],
            row["duplicates"],
            row["eventsStored"],
            row["lagP50Seconds"],
            row["lagP95Seconds"],
            row["lagMaxSeconds"],
        )
        for row in found.rows
        if row["keyId"] == key.id
    ]


def _expected_delivery(
    events: list[dict[str, Any]], envelopes: list[list[dict[str, Any]]], resent: set[int]
) -> list[tuple[object, ...]]:
    """One hour: every envelope, the re-sent ones' events as duplicates, and the lags of the
    events stored (received at their first envelope's time), as nearest-rank percentiles."""
    lags = sorted(
        (datetime(2024, 5, 10, 0, 0, number, tzinfo=UTC) - _moment(event)).total_seconds()
        for number, batch in enumerate(envelopes)
        for event in batch
    )
    again = [batch for number, batch in enumerate(envelopes) if number in resent]

    def rank(percent: int) -> float:
        return lags[max(1, math.ceil(percent * len(lags) / 100)) - 1]

    return [
        (
            "2024-05-10T00:00:00.000000Z",
            len(envelopes) + len(again),
            sum(len(batch) for batch in again),
            len(events),
            rank(50),
            rank(95),
            lags[-1],
        )
    ]


def _moment(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"])


def _key(store: Store, example: int) -> ApiKey:
    raw, _ = store.keys.create(label=f"producer {example}", now="2024-05-01T00:00:00.000000Z")
    key = store.keys.authenticate(raw)
    assert key is not None
    return key


def test_delivery_lag_percentiles_are_the_nearest_ranks_for_every_count(store: Store) -> None:
    # Hour h (1-60) receives h events whose lags are 1..h seconds, in a shuffled order: p50 and
    # p95 must be the ceil(p * h)-th of them, where a rank computed in floats could slip by one
    # (0.95 * 20 is 19 only if the rounding goes the right way).
    key = _key(store, next(EXAMPLES))
    day = datetime(2024, 7, 1, tzinfo=UTC)
    for hours in range(1, 61):
        received = day + timedelta(hours=hours % 24, days=hours // 24)
        lags = sorted(range(1, hours + 1), key=lambda lag: (lag * 7919) % 61)
        batch = [
            {
                "@context": V1P2,
                "id": f"urn:uuid:{uuid.uuid4()}",
                "type": "NavigationEvent",
                "actor": {"id": "https://p.example.edu/users/1", "type": "Person"},
                "action": "NavigatedTo",
                "object": {"id": "https://p.example.edu/objects/1", "type": "WebPage"},
                "eventTime": _text(received - timedelta(seconds=lag)),
            }
            for lag in lags
        ]
        body = _envelope(batch, "2024-07-01T00:00:00Z")
        ingest(store, key, body, received.isoformat().replace("+00:00", ".000000Z"))
    found = run_report(
        store,
        "delivery",
        {"since": ["2024-07-01"], "until": ["2024-07-04"], "at": ["2024-07-04"]},
        Settings(),
    )
    shown = {
        row["eventsStored"]: (row["lagP50Seconds"], row["lagP95Seconds"], row["lagMaxSeconds"])
        for row in found.rows
        if row["keyId"] == key.id
    }
    assert shown == {
        count: (math.ceil(count / 2), math.ceil(count * 95 / 100), count) for count in range(1, 61)
    }
