"""SQLite picks the selective index for a filtered page, with no ANALYZE ever run.

Revision 0002 seeds sqlite_stat1 with typical proportions; without them SQLite would take a
course's or an actor's index and the event-type or key index as equally selective, and could
walk every GradeEvent of the store to find one course's.
"""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from caliper_store.config import Settings
from caliper_store.query import QueryLimits, parse_event_query
from caliper_store.storage import open_store
from caliper_store.storage.search import Position, page_statement

LIMITS = QueryLimits.from_settings(Settings())


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
    store = open_store(Settings(database_url=sqlite_url))
    store.require_current_schema(create_if_empty=True)
    store.close()
    store = open_store(Settings(database_url=sqlite_url))
    query = parse_event_query({**params, "order": [order]}, LIMITS)
    statement = page_statement(
        query.filter.conditions,
        after=Position("2024-06-01T00:00:00.000000Z", 10),
        is_descending=order == "desc",
        limit=101,
        with_raw=False,
    )
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    store.close()
    assert len(plan) == 1, plan  # one index walk, no temporary B-tree to sort
    assert f"USING INDEX {index} " in plan[0] + " ", plan


def test_an_incremental_pull_by_received_time_reads_the_received_index(sqlite_url: str) -> None:
    store = open_store(Settings(database_url=sqlite_url))
    store.require_current_schema(create_if_empty=True)
    store.close()
    store = open_store(Settings(database_url=sqlite_url))
    query = parse_event_query({"receivedSince": ["2024-06-01"], "order": ["received"]}, LIMITS)
    statement = page_statement(
        query.filter.conditions,
        after=Position("2024-06-02T00:00:00.000000Z", 10),
        is_descending=False,
        limit=101,
        with_raw=False,
        by="received_at",
    )
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    store.close()
    assert plan == ["SEARCH events USING INDEX events_received_at (received_at>?)"]
