"""Fixtures of the operations tests: a store on the SQLite file of ``sqlite_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caliper_store.storage import Store
from tests.conftest import opened_store


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    """The store of ``sqlite_url``, for tests about one backend's server only."""
    with opened_store(sqlite_url) as opened:
        yield opened
