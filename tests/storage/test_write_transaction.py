"""The writer's insert of event rows: known ids come back, and no row is ever dropped unseen."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.fixtures.events import event_columns

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store
from caliper_store.storage.schema import events, utc_text

NOW = datetime.now(UTC)
TIME = utc_text(NOW)


@pytest.fixture
def ready_store(store: Store) -> Store:
    """A store whose partitions for this month exist (PostgreSQL), as the server makes them."""
    store.prepare_for_traffic(NOW)
    return store


def event_row(number: int, *, content_hash: str = "a" * 64, **changes: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "event_id": f"urn:uuid:00000000-0000-4000-8000-{number:012d}",
        "content_hash": content_hash,
        "actor_id": "https://example.edu/users/1",
        "object_id": "https://example.edu/objects/1",
        "event_time": TIME,
        "received_at": TIME,
        "actor_key": 1,
        "object_key": 2,
    }
    return event_columns(**(values | changes))


def stored_count(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(events)) or 0)


def test_insert_reports_the_ids_already_stored_with_their_hashes(ready_store: Store) -> None:
    store = ready_store
    with store.write_transaction() as transaction:
        assert transaction.insert_events([event_row(1), event_row(2)]) == {}
    with store.write_transaction() as transaction:
        existing = transaction.insert_events([event_row(2, content_hash="b" * 64), event_row(3)])
    assert existing == {event_row(2)[0]: "a" * 64}
    assert stored_count(store) == 3


def test_a_row_refused_for_another_reason_fails_the_whole_batch(ready_store: Store) -> None:
    store = ready_store
    with (
        pytest.raises(Exception, match=r"constraint|null"),
        store.write_transaction() as transaction,
    ):
        transaction.insert_events([event_row(1), event_row(2, actor_id=None)])
    assert stored_count(store) == 0


def test_a_second_sqlite_writer_gives_up_after_the_lock_timeout_then_writes(
    sqlite_url: str,
) -> None:
    """Two server processes' writers on one file: the one kept waiting fails (503), never hangs."""
    holder = open_store(Settings(database_url=sqlite_url))
    holder.require_current_schema(create_if_empty=True)
    waiter = open_store(Settings(database_url=sqlite_url, write_lock_timeout_ms=200))
    try:
        with holder.write_transaction() as transaction:
            transaction.insert_events([event_row(1)])
            with (
                pytest.raises(sqlite3.OperationalError, match="locked"),
                waiter.write_transaction() as late,
            ):
                late.insert_events([event_row(2)])
        with waiter.write_transaction() as transaction:
            transaction.insert_events([event_row(2)])
        assert stored_count(waiter) == 2
    finally:
        holder.close()
        waiter.close()


def test_ids_moved_to_the_sealed_hashes_in_this_transaction_are_still_known(
    sqlite_url: str,
) -> None:
    """A second insert in one transaction finds the ids whose hashes the first one sealed."""
    # 64 events a segment: every event is due for one slice of the hash space.
    store = open_store(Settings(database_url=sqlite_url, sqlite_segment_events=64))
    store.require_current_schema(create_if_empty=True)
    rows = [event_row(number) for number in range(1, 200)]
    with store.write_transaction() as transaction:
        assert transaction.insert_events(rows) == {}
        again = transaction.insert_events(rows)
    assert again == {row[0]: "a" * 64 for row in rows}
    assert stored_count(store) == len(rows)
    store.close()
