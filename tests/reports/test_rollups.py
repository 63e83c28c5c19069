"""The rollups behind the course list and the overview: exact, verified, and rebuilt on upgrade."""

from __future__ import annotations

import random

import orjson
import pytest
from sqlalchemy import text
from tests.fixtures.events import ingest
from tests.fixtures.server import run_cli
from tests.reports.course_data import COURSE_A, COURSE_B, V1P1, fill_course, learn_event

from caliper_store.config import Settings
from caliper_store.reports import activity, fill_group_names, run_report, verify_rollups
from caliper_store.storage import Store, open_store
from caliper_store.storage.migrate import downgrade

WHOLE_STORE_AT = "2024-03-06T10:00:00Z"


def _courses(store: Store, **params: str) -> dict[str, dict[str, object]]:
    found = run_report(store, "courses", {k: [v] for k, v in params.items()}, Settings())
    return {str(row["groupId"]): row for row in found.rows}


def test_rollups_agree_with_the_events_after_duplicates_conflicts_and_late_events(
    store: Store,
) -> None:
    fill_course(store)
    assert verify_rollups(store) == []
    # The course list from the rollups equals the one counted from the events of all time.
    from_rollups = _courses(store, at=WHOLE_STORE_AT)
    from_events = _courses(store, since="1970-01-01", until="9000-01-01", at=WHOLE_STORE_AT)
    assert from_rollups == from_events
    assert from_rollups[COURSE_A]["name"] == "BIO-101"
    # Activity in a past window needs a look at the events for people active on both sides.
    earlier = _courses(store, at="2024-03-05T00:00:00Z")
    assert earlier[COURSE_A]["activeStudents7d"] == 4
    assert earlier[COURSE_B]["activeStudents7d"] == 1
    before_any = _courses(store, at="2024-03-04T09:30:00Z")
    assert before_any[COURSE_A]["activeStudents7d"] == 1  # only T1, at 09:00


def test_verify_names_every_difference(store: Store, database_url: str) -> None:
    fill_course(store)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE rollup_daily_keys SET events = events + 1"))
        connection.execute(text("UPDATE rollup_groups SET name = 'Wrong'"))
    differences = {difference.table for difference in verify_rollups(store)}
    assert differences == {"rollup_daily_keys", "rollup_groups.name"}
    shown = run_cli("reports", "verify", "--database", database_url)
    assert shown.returncode == 1
    assert "rollup_daily_keys" in shown.stdout
    assert "differences between rollups and events" in shown.stderr


def test_an_upgraded_store_gets_its_rollups_from_its_events(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url))
    store.migrate()
    fill_course(store)
    with store.engine.connect() as connection:
        downgrade(connection, "0006")
        connection.commit()
    store.close()
    upgraded = run_cli("migrate", "--database", database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "named 2 courses" not in upgraded.stdout  # course B's events carry no name
    assert "named 1 courses" in upgraded.stdout
    store = open_store(Settings(database_url=database_url))
    try:
        assert verify_rollups(store) == []
        assert _courses(store, at=WHOLE_STORE_AT)[COURSE_A]["events"] == 15
        assert fill_group_names(store) == 0  # nothing left to name
        verified = run_cli("reports", "verify", "--database", database_url)
        assert verified.returncode == 0, verified.stderr
        assert "agree with all" in verified.stdout
    finally:
        store.close()


def test_activity_in_a_past_window_is_exact_for_people_active_on_both_sides(store: Store) -> None:
    # X: the 1st, 11th and 21st; Y: the 1st and 21st. A week before the 16th holds only X's 11th.
    key_raw, _ = store.keys.create(label="Learn", now="2024-03-01T00:00:00.000000Z")
    key = store.keys.authenticate(key_raw)
    assert key is not None
    days = {"x": (1, 11, 21), "y": (1, 21)}
    events = [
        learn_event(
            f"https://lms.example.edu/users/{who}",
            "ViewEvent",
            "Viewed",
            f"2024-03-{day:02d}T10:00:00.000Z",
            label=f"{who}{day}",
        )
        for who, numbers in days.items()
        for day in numbers
    ]
    ingest(
        store,
        key,
        orjson.dumps(
            {"sensor": "s", "sendTime": "2024-03-21T10:00:00Z", "dataVersion": V1P1, "data": events}
        ),
        "2024-03-21T11:00:00.000000Z",
    )
    at = "2024-03-16T00:00:00Z"
    from_rollups = _courses(store, at=at)[COURSE_A]
    from_events = _courses(store, since="1970-01-01", until="9000-01-01", at=at)[COURSE_A]
    assert from_rollups["activeStudents7d"] == from_events["activeStudents7d"] == 1
    # With many such people the window's events are counted instead, to the same figure.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(activity, "MAX_SPANNING_LOOKUPS", 0)
        assert _courses(store, at=at)[COURSE_A]["activeStudents7d"] == 1


def test_people_active_in_a_past_week_are_counted_alike_over_sealed_segments(
    database_url: str,
) -> None:
    """The course list's activeStudents7d for a past ``at``, counted from the week's events.

    Over sealed SQLite segments the count is read from their ``people_time`` index alone;
    it must equal the count made from the events themselves, for every ``at``, and leave out
    a course's non-Person actors and events without a course.
    """
    store = open_store(Settings(database_url=database_url, sqlite_segment_events=25))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="lms", now="2024-01-01T00:00:00.000000Z")
    rng = random.Random(12)
    events = []
    for number in range(240):
        group = rng.choice([COURSE_A, COURSE_B, None])
        event = learn_event(
            f"https://lms.example.edu/users/u{rng.randrange(30)}",
            "ViewEvent",
            "Viewed",
            f"2024-03-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00.000Z",
            group=group,
            label=f"e{number}",
        )
        if number % 17 == 0:  # a course's software actor is no student
            event["actor"] = {
                "id": "https://lms.example.edu/apps/grader",
                "type": "SoftwareApplication",
            }
        events.append(event)
    try:
        for start in range(0, len(events), 20):  # 12 requests: segments sealed at 25 and more
            body = {"sensor": "s", "sendTime": "2024-03-29T10:00:00Z", "dataVersion": V1P1}
            batch = orjson.dumps(body | {"data": events[start : start + 20]})
            ingest(store, key, batch, "2024-03-29T11:00:00.000000Z")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(activity, "MAX_SPANNING_LOOKUPS", 0)  # always the week's events
            for day in range(2, 31, 4):
                at = f"2024-03-{day:02d}T06:00:00Z"
                from_index = _courses(store, at=at)
                from_events = _courses(store, since="1970-01-01", until="9000-01-01", at=at)
                assert {g: row["activeStudents7d"] for g, row in from_index.items()} == {
                    g: row["activeStudents7d"] for g, row in from_events.items()
                }, at
                assert any(row["activeStudents7d"] for row in from_index.values()), at
    finally:
        store.close()
