"""Fixtures of the operations tests: a store on the SQLite file of ``sqlite_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """The store of ``sqlite_url``, for tests about one backend's server only."""
    opened = open_store(Settings(database_url=sqlite_url))
    opened.require_current_schema(create_if_empty=True)
    yield opened
    opened.close()
