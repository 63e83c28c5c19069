"""Shared fixtures: real SQLite files, real server processes, keys, the corpus by path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store
from tests.fixtures.payloads import corpus_dir
from tests.fixtures.server import ServerProcess


def pytest_report_header() -> list[str]:
    corpus = corpus_dir()
    shown = str(corpus) if corpus.is_dir() else f"{corpus} (absent: corpus tests skip)"
    return [f"caliper corpus: {shown}"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'caliper.db'}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(Settings(database_url=database_url))
    opened.require_current_schema(create_if_empty=True)
    yield opened
    opened.close()


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
