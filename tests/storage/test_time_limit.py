"""The read time limit (query_timeout_ms): reads past it raise QueryTimeout on both backends,
leave nothing behind on the pooled connection, and never bound the writer, stats or a whole
export (each batch has a limit of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.fixtures.events import bulk_insert, bulk_rows
from tests.fixtures.slow_reads import BACKENDS, module_database, quarantine_rows

from caliper_store.config import Settings
from caliper_store.errors import QueryTimeout, StorageUnavailable
from caliper_store.storage import Store, open_store
from caliper_store.storage.search import Condition, QuarantineFilter

# A scan of this many rows takes 5-15 ms on either backend here, far past a 1 ms limit, while
# the limit's own checks run about once a millisecond (SQLite) or in the server (PostgreSQL).
EVENTS = 30_000
QUARANTINED = 30_000
NO_SUCH_APP = [Condition("ed_app_id", "in", ("urn:no-such-app",))]
# api_key_id has no index on quarantine (reason has one: once autovacuum has analyzed the
# table, PostgreSQL answers a reason that is not there from that index in well under 1 ms).
NO_SUCH_KEY = QuarantineFilter(api_key_ids=(999_999,))


@pytest.fixture(scope="module", params=BACKENDS)
def filled_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of EVENTS events and QUARANTINED held items, shared by this module's tests."""
    with module_database(request, tmp_path_factory) as url:
        filling = open_store(Settings(database_url=url))
        try:
            filling.require_current_schema(create_if_empty=True)
            bulk_insert(filling, EVENTS)
            with filling.write_transaction() as transaction:
                transaction.insert_quarantine(quarantine_rows(QUARANTINED))
            # The planner's statistics as autovacuum would leave them, so its choice of plan
            # does not change with when autovacuum happens to run.
            with filling.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        finally:
            filling.close()
        yield url


def open_limited(url: str, query_timeout_ms: int) -> Store:
    return open_store(Settings(database_url=url, query_timeout_ms=query_timeout_ms))


@pytest.fixture
def limited(filled_url: str) -> Iterator[Store]:
    """The filled store with a 1 ms read limit."""
    opened = open_limited(filled_url, 1)
    yield opened
    opened.close()


def assert_stopped_at(raised: pytest.ExceptionInfo[QueryTimeout], limit_ms: int) -> None:
    error = raised.value
    assert not isinstance(error, StorageUnavailable)
    assert error.limit_ms == limit_ms
    assert error.field == "query_timeout_ms"
    assert f"query_timeout_ms={limit_ms}" in error.detail
    assert error.retry_after_s >= 1


def test_every_kind_of_read_past_the_limit_raises_query_timeout(limited: Store) -> None:
    with pytest.raises(QueryTimeout) as page:
        limited.events.page(NO_SUCH_APP, after=None, is_descending=True, limit=100, with_raw=True)
    assert_stopped_at(page, 1)
    with pytest.raises(QueryTimeout) as count:
        limited.events.count(NO_SUCH_APP)
    assert_stopped_at(count, 1)
    with pytest.raises(QueryTimeout) as batch:
        next(limited.events.batches(NO_SUCH_APP, batch_events=5_000, with_raw=True))
    assert_stopped_at(batch, 1)
    with pytest.raises(QueryTimeout) as held:
        limited.quarantine.page(NO_SUCH_KEY, before_id=None, limit=50)
    assert_stopped_at(held, 1)
    with pytest.raises(QueryTimeout) as ids:
        limited.quarantine.ids(NO_SUCH_KEY)
    assert_stopped_at(ids, 1)


def test_a_stopped_read_leaves_no_limit_on_the_pooled_connection(limited: Store) -> None:
    with pytest.raises(QueryTimeout):
        limited.events.count(NO_SUCH_APP)
    # This store's pool holds one connection: the one the read was stopped on.
    with limited.engine.connect() as connection:
        scanned = connection.execute(
            text("SELECT count(*) FROM events WHERE ed_app_id IS NULL")
        ).scalar()
    assert scanned is not None
    assert scanned >= EVENTS


def test_the_writer_and_stats_have_no_time_limit(limited: Store) -> None:
    before = limited.stats()  # counts over the whole store: far more than 1 ms
    # One transaction of 10,000 new events (their ids made new) takes far more than 1 ms too.
    rows = [(f"{row[0]}-again", *row[1:]) for row in bulk_rows(10_000)]
    with limited.write_transaction() as transaction:
        assert transaction.insert_events(rows) == {}
        transaction.insert_quarantine(quarantine_rows(1))
    after = limited.stats()
    assert after["events"] == before["events"] + 10_000
    assert after["quarantined"] == before["quarantined"] + 1
    with pytest.raises(QueryTimeout):
        limited.events.count(NO_SUCH_APP)


def test_each_export_batch_has_a_limit_of_its_own(filled_url: str) -> None:
    # 30,000 events in batches of 300: each batch is an indexed read of about a millisecond,
    # the export as a whole far more than the limit.
    store = open_limited(filled_url, 50)
    try:
        exported = sum(
            len(batch)
            for batch in store.events.batches(
                [Condition("event_time", ">=", ("2024-01-01",))],
                batch_events=300,
                with_raw=True,
            )
        )
        assert exported >= EVENTS
    finally:
        store.close()
