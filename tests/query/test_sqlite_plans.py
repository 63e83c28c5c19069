"""SQLite picks the selective index of every segment for a filtered page, with no ANALYZE run.

Revision 0002 seeds sqlite_stat1 with typical proportions, and the writer seeds them for each
new segment; without them SQLite would take a course's or an actor's index and the event-type
or key index as equally selective, and could walk every GradeEvent of the store to find one
course's. A page merges the segments in order (storage/segments.py): one index walk in each,
and no sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy.dialects import sqlite
from tests.fixtures.events import generated_envelopes, ingest

from caliper_store.config import Settings
from caliper_store.query import QueryLimits, parse_event_query
from caliper_store.storage import Store, open_store
from caliper_store.storage.search import Condition, OrderBy, Position, page_statement
from caliper_store.storage.segments import segment_table

LIMITS = QueryLimits.from_settings(Settings())
NOW = "2025-02-01T00:00:00.000000Z"
SEGMENTS = 3


def segmented_store(sqlite_url: str) -> Store:
    """A store whose events take SEGMENTS segments (two events each), reopened as a reader."""
    store = open_store(Settings(database_url=sqlite_url, sqlite_segment_events=2))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="sensor", now=NOW)
    # Envelopes of two, two and one: each full segment is followed by a new one.
    for body in generated_envelopes(2 * SEGMENTS - 1, seed=2, per_envelope=2):
        ingest(store, key, body, NOW)
    store.close()
    return open_store(Settings(database_url=sqlite_url))


def page_plan(
    store: Store,
    conditions: Sequence[Condition],
    *,
    after: Position | None,
    is_descending: bool = False,
    by: OrderBy = "event_time",
) -> list[str]:
    """SQLite's query plan for one page of 101 events, read on ``store``, which it closes."""
    statement = page_statement(
        conditions,
        dialect_name="sqlite",
        after=after,
        is_descending=is_descending,
        limit=101,
        with_raw=False,
        by=by,
    )
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    store.close()
    return plan


def assert_each_segment_walks(plan: list[str], index: str) -> None:
    """One walk of ``index`` (revision 0002's name) in every segment, no temporary B-tree."""
    assert not [line for line in plan if "TEMP B-TREE" in line], plan
    walks = [line for line in plan if line.startswith(("SEARCH", "SCAN"))]
    assert len(walks) == SEGMENTS, plan
    for number, walk in enumerate(walks, start=1):
        # The first segment is the events table of earlier revisions, with its index names.
        name = index if number == 1 else f"{segment_table(number)}_{index.removeprefix('events_')}"
        assert walk.split(" ")[1] == segment_table(number), plan
        assert f"USING INDEX {name} " in walk + " ", plan


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"actorId": ["a"], "keyId": ["1"]}, "events_actor_time"),
        ({"groupId": ["g"], "type": ["GradeEvent"]}, "events_group_time"),
        ({"groupId": ["g"], "keyId": ["1"], "action": ["Graded"]}, "events_group_time"),
        ({"externalId": ["s1"], "type": ["ViewEvent"]}, "events_external_id_time"),
        ({"objectId": ["o"], "groupId": ["g"]}, "events_object_time"),
        ({"objectId": ["o"]}, "events_object_time"),
        ({"type": ["ForumEvent"]}, "events_type_time"),
        ({"keyId": ["3"], "since": ["2024-01-01"]}, "events_key_time"),
        ({}, "events_event_time"),
    ],
)
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_a_filtered_page_reads_the_selective_index_in_order(
    sqlite_url: str, params: dict[str, list[str]], index: str, order: str
) -> None:
    store = segmented_store(sqlite_url)
    query = parse_event_query({**params, "order": [order]}, LIMITS)
    plan = page_plan(
        store,
        query.filter.conditions,
        after=Position("2024-06-01T00:00:00.000000Z", 10),
        is_descending=order == "desc",
    )
    assert_each_segment_walks(plan, index)


def test_an_incremental_pull_by_received_time_reads_the_received_index(sqlite_url: str) -> None:
    store = segmented_store(sqlite_url)
    query = parse_event_query({"receivedSince": ["2024-06-01"], "order": ["received"]}, LIMITS)
    plan = page_plan(
        store,
        query.filter.conditions,
        after=Position("2024-06-02T00:00:00.000000Z", 10),
        by="received_at",
    )
    assert_each_segment_walks(plan, "events_received_at")


def test_an_event_id_filter_finds_the_row_by_its_id_hash_in_every_segment(
    sqlite_url: str,
) -> None:
    """No segment has an index on the id text: the id's hash gives the seq, a rowid seek each."""
    store = segmented_store(sqlite_url)
    query = parse_event_query(
        {"eventId": ["urn:uuid:00000000-0000-4000-8000-000000000001"]}, LIMITS
    )
    plan = page_plan(store, query.filter.conditions, after=None)
    segment_walks = [line for line in plan if line.startswith(("SEARCH events_s", "SCAN events_s"))]
    assert len(segment_walks) == SEGMENTS, plan
    assert all("USING INTEGER PRIMARY KEY (rowid=?)" in line for line in segment_walks), plan


def test_a_session_filter_reads_the_session_index_of_every_sealed_segment(
    sqlite_url: str,
) -> None:
    """Sealed segments have the session index (built as each was sealed); the newest has not."""
    store = segmented_store(sqlite_url)
    query = parse_event_query({"sessionId": ["urn:s"]}, LIMITS)
    plan = page_plan(store, query.filter.conditions, after=None)
    walks = [line for line in plan if line.startswith(("SEARCH", "SCAN"))]
    assert len(walks) == SEGMENTS, plan
    for number, walk in enumerate(walks[:-1], start=1):
        index = "events_session" if number == 1 else f"{segment_table(number)}_session"
        assert walk.startswith(f"SEARCH {segment_table(number)} USING INDEX {index} "), plan
    assert "_session " not in walks[-1] + " ", plan
