"""Shared fixtures: real SQLite files, real server processes, keys, the corpus by path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store
from tests.fixtures.payloads import corpus_dir
from tests.fixtures.postgres import (
    TEST_URL_ENV,
    PostgresCluster,
    create_database,
    drop_database,
    postgres_bin,
    require_postgres,
)
from tests.fixtures.server import STARTED, ServerProcess


def pytest_report_header() -> list[str]:
    corpus = corpus_dir()
    shown = str(corpus) if corpus.is_dir() else f"{corpus} (absent: corpus tests skip)"
    if os.environ.get(TEST_URL_ENV):
        postgres = f"PostgreSQL from ${TEST_URL_ENV}"
    elif postgres_bin() is not None:
        postgres = f"PostgreSQL: a throwaway cluster from {postgres_bin()}"
    else:
        postgres = f"PostgreSQL: none (set ${TEST_URL_ENV}); PostgreSQL tests SKIP"
    return [f"caliper corpus: {shown}", f"backends: SQLite file; {postgres}"]


@pytest.fixture(autouse=True, scope="session")
def no_leaked_servers() -> Iterator[None]:
    """Kill any server a failing test left running, so none outlives the run."""
    yield
    for running in STARTED:
        if running.is_running():
            running.kill()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """A PostgreSQL server to create test databases on: from the environment, or started here."""
    if os.environ.get(TEST_URL_ENV):
        yield os.environ[TEST_URL_ENV]
        return
    bin_dir = postgres_bin()
    if bin_dir is None:
        yield None
        return
    cluster = PostgresCluster.create(bin_dir)
    cluster.start()
    try:
        yield cluster.admin_url
    finally:
        cluster.stop()
        cluster.remove()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'caliper.db'}"
        return
    admin_url = require_postgres(request.getfixturevalue("postgres_admin_url"))
    url = create_database(admin_url)
    yield url
    drop_database(admin_url, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite file, for what is about SQLite itself."""
    return f"sqlite:///{tmp_path / 'caliper.db'}"


@contextmanager
def opened_store(url: str) -> Iterator[Store]:
    """The store at ``url``, with the current schema, closed afterwards."""
    opened = open_store(Settings(database_url=url))
    try:
        opened.require_current_schema(create_if_empty=True)
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with opened_store(database_url) as opened:
        yield opened


@dataclass
class Client:
    """An HTTP client bound to a running server, with a key of its own."""

    server: ServerProcess
    http: httpx.Client
    key: str

    def post(
        self,
        body: object,
        *,
        path: str = "/caliper",
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a JSON document (or raw bytes) with this client's key."""
        sent = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        sent.update(headers or {})
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return self.http.post(path, content=content, headers=sent, params=params)


def start_server(tmp_path: Path, database_url: str, *flags: str) -> ServerProcess:
    return ServerProcess(database_url, tmp_path / "server.log", list(flags)).start()


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    running = start_server(tmp_path, database_url)
    yield running
    assert running.stop(), running.log()


@pytest.fixture
def client(server: ServerProcess, store: Store) -> Iterator[Client]:
    key, _ = store.keys.create(label="test sensor", now="2024-01-01T00:00:00.000000Z")
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        yield Client(server, http, key)
