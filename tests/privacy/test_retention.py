"""Retention on both backends: the dry run removes nothing, the purge exactly what expired."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caliper_store.config import Settings
from caliper_store.privacy import RetentionPolicy, plan_purge, purge
from caliper_store.reports import verify_rollups
from caliper_store.storage import Store, open_store
from tests.fixtures.events import ingest
from tests.reports.course_data import CANVAS_SENSOR, _body, canvas_event, fill_course

# The course's events are of 4 and 5 March 2024; received from the 4th to the 6th.
NOW = datetime(2024, 3, 7, tzinfo=UTC)
CUTOFF = "2024-03-05T00:00:00.000000Z"  # two days before NOW


def _events(store: Store) -> dict[str, str]:
    with store.snapshot(is_time_limited=False) as snapshot:
        rows = snapshot.events([], ("event_id", "event_time"))
        return {str(event_id): str(event_time) for event_id, event_time in rows}


def _receipts(store: Store) -> int:
    return int(store.stats()["receipts"])


def test_a_dry_run_removes_nothing_and_counts_what_the_purge_removes(store: Store) -> None:
    fill_course(store)
    before = _events(store)
    policy = RetentionPolicy(events_days=2, quarantine_days=0, receipts_days=0)
    planned = plan_purge(store, policy, NOW)
    assert _events(store) == before
    expired = {event_id for event_id, time in before.items() if time < CUTOFF}
    assert 0 < len(expired) < len(before)
    assert sum(row.rows for row in planned) == len(expired)
    assert {row.month for row in planned} == {"2024-03"}
    labels = {key.id: key.label for key in store.keys.list()}
    assert {labels[row.api_key_id] for row in planned} == {"Learn", "Canvas", "Moodle"}

    result = purge(store, policy, NOW, batch_events=3, actor="test")
    assert result.events == len(expired)
    assert _events(store) == {k: v for k, v in before.items() if k not in expired}
    assert verify_rollups(store) == []
    [entry] = store.audit_entries(limit=5, action="purge")
    assert entry.rows == len(expired)
    assert entry.actor == "test"


def test_quarantine_and_receipts_expire_by_arrival(store: Store) -> None:
    fill_course(store)
    events_before = _events(store)
    receipts_before = _receipts(store)
    # The conflict was quarantined on the 5th at 10:10: a cutoff of the 5th at noon takes it.
    policy = RetentionPolicy(events_days=0, quarantine_days=1, receipts_days=2)
    now = datetime(2024, 3, 6, 12, tzinfo=UTC)
    planned = {row.kind: row.rows for row in plan_purge(store, policy, now)}
    result = purge(store, policy, now, batch_events=2, actor="test")
    assert result.quarantine == planned["quarantine"] == 1
    assert store.stats()["quarantined"] == 0
    assert result.receipts == planned["receipts"] > 0
    assert _receipts(store) == receipts_before - result.receipts
    assert _events(store) == events_before  # events expire by their own setting only


def test_no_retention_removes_nothing(store: Store) -> None:
    fill_course(store)
    before = _events(store)
    policy = RetentionPolicy(0, 0, 0)
    assert not policy.is_set
    assert plan_purge(store, policy, NOW) == []
    purge(store, policy, NOW, batch_events=10, actor="test")
    assert _events(store) == before


@pytest.mark.postgres
def test_a_month_past_retention_is_dropped_and_written_again_later(
    database_url: str, store: Store
) -> None:
    if store.backend != "postgresql":
        pytest.skip("about PostgreSQL's monthly partitions only")
    keys = fill_course(store)
    # Another server process, which knows March 2024 has a partition.
    other = open_store(Settings(database_url=database_url))
    try:
        ingest(
            other,
            keys.canvas,
            _body(CANVAS_SENSOR, [canvas_event("2024-03-06T10:00:00.000Z", label="known-month")]),
            "2024-03-06T10:01:00.000000Z",
        )
        policy = RetentionPolicy(events_days=1, quarantine_days=0, receipts_days=0)
        result = purge(
            store, policy, datetime(2024, 4, 2, 12, tzinfo=UTC), batch_events=4, actor="test"
        )
        assert result.partitions_dropped == ["events_p2024_03"]
        assert _events(store) == {}
        assert verify_rollups(store) == []
        late = _body(CANVAS_SENSOR, [canvas_event("2024-03-06T11:00:00.000Z", label="late")])
        # The other process's first try fails (its partition is gone), and it forgets what it
        # knew; the sensor's retry is stored.
        with pytest.raises(Exception, match="no partition"):
            ingest(other, keys.canvas, late, "2024-04-02T13:00:00.000000Z")
        ingest(other, keys.canvas, late, "2024-04-02T13:00:01.000000Z")
        assert len(_events(store)) == 1
    finally:
        other.close()


def test_a_purge_forgets_the_logins_no_kept_event_carries(store: Store) -> None:
    fill_course(store)
    key = next(key for key in store.keys.list() if key.label == "Canvas")
    for label, time, login in (
        ("old", "2024-03-04T09:00:00.000Z", "old@example.edu"),
        ("new", "2024-03-05T09:00:00.000Z", "new@example.edu"),
    ):
        event = canvas_event(time, label=label)
        event["actor"]["extensions"] = {"com.instructure.canvas": {"user_login": login}}
        ingest(store, key, _body(CANVAS_SENSOR, [event]), "2024-03-05T10:00:00.000000Z")
    policy = RetentionPolicy(events_days=2, quarantine_days=0, receipts_days=0)
    result = purge(store, policy, NOW, batch_events=3, actor="test")
    assert result.login_pairs == 1
    with store.engine.connect() as connection:
        kept = connection.exec_driver_sql("SELECT login FROM actor_logins").all()
    assert [row[0] for row in kept] == ["new@example.edu"]
