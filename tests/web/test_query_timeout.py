"""A read past query_timeout_ms answers a 503 problem at once and the server keeps serving;
the CLI says so in one line and exits non-zero. Both backends, against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.conftest import start_server
from tests.fixtures.events import bulk_insert
from tests.fixtures.server import ServerProcess, run_cli
from tests.fixtures.slow_reads import BACKENDS, module_database

from caliper_store.config import Settings
from caliper_store.storage import Store, open_store

NOW = "2024-01-01T00:00:00.000000Z"
# edAppId has no index: a page for an application nobody used scans every event, 30-90 ms for
# 150,000 events here on either backend, while an indexed read takes well under a millisecond.
# The server's limit sits between the two, far from both.
EVENTS = 150_000
SERVER_LIMIT_MS = 10
# The CLI needs no fast read beside the slow one: its limit is set far below any scan.
# Listing quarantine by reason is no such scan: once PostgreSQL has analyzed the table it
# reads the reason index and answers in under 0.1 ms, inside any limit (CI saw it pass 1 ms);
# tests/storage/test_time_limit.py stops quarantine reads on a filter that has no index.
CLI_LIMIT_MS = 1
SLOW = {"edAppId": "urn:no-such-app"}


@dataclass
class Served:
    """The filled database, a server on it with a small read limit, and a read key."""

    database_url: str
    server: ServerProcess
    http: httpx.Client
    read_key: str
    event_id: str

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {self.read_key}"}
        )


def filled_database(url: str) -> tuple[str, str]:
    """Fill the database; return a read key and one stored event id."""
    store: Store = open_store(Settings(database_url=url))
    try:
        store.require_current_schema(create_if_empty=True)
        bulk_insert(store, EVENTS)
        key, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
        return key, next(store.iter_event_ids())
    finally:
        store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One filled database per backend and a server on it, shared by this module's tests."""
    with module_database(request, tmp_path_factory) as url:
        key, event_id = filled_database(url)
        folder = tmp_path_factory.mktemp("server")
        server = start_server(folder, url, "--query-timeout-ms", str(SERVER_LIMIT_MS))
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                yield Served(url, server, http, key, event_id)
        finally:
            assert server.stop(), server.log()


def assert_query_timeout(answer: httpx.Response, limit_ms: int = SERVER_LIMIT_MS) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "1"
    problem = answer.json()
    assert problem["type"] == "urn:caliper-store:problem:query-timeout"
    assert problem["status"] == 503
    assert problem["field"] == "query_timeout_ms"
    assert f"query_timeout_ms={limit_ms}" in problem["detail"]


def test_a_query_past_the_time_limit_answers_a_503_problem_naming_the_limit(
    served: Served,
) -> None:
    assert_query_timeout(served.get("/api/events", SLOW))
    assert_query_timeout(served.get("/api/events", {**SLOW, "order": "asc", "raw": "true"}))
    log = served.server.log()
    assert f"reading events stopped at query_timeout_ms={SERVER_LIMIT_MS}" in log, log
    assert "Traceback" not in log, log
    assert "reading events failed" not in log, log  # a timeout, not a database failure


def test_the_server_keeps_serving_right_after_a_query_is_stopped(served: Served) -> None:
    for _ in range(3):
        assert_query_timeout(served.get("/api/events", SLOW))
        assert served.http.get("/healthz").status_code == 200
        one = served.get(f"/api/events/{served.event_id}")
        assert one.status_code == 200, one.text
        page = served.get("/api/events", {"eventId": served.event_id})
        assert page.status_code == 200, page.text
        assert [event["event_id"] for event in page.json()["events"]] == [served.event_id]


def test_an_export_whose_first_batch_runs_over_answers_503(served: Served) -> None:
    for export_format in ("ndjson", "csv", "parquet"):
        assert_query_timeout(served.get("/api/export", {**SLOW, "format": export_format}))
    assert served.get("/api/export", {"eventId": served.event_id}).status_code == 200


@pytest.mark.parametrize(
    "command",
    [
        ["events", "--ed-app-id", SLOW["edAppId"]],
        ["export", "--ed-app-id", SLOW["edAppId"]],
    ],
    ids=["events", "export"],
)
def test_the_cli_prints_one_line_and_exits_non_zero_past_the_time_limit(
    served: Served, command: list[str]
) -> None:
    done = run_cli(
        *command,
        "--database",
        served.database_url,
        env={"CALIPER_STORE_QUERY_TIMEOUT_MS": str(CLI_LIMIT_MS)},
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert f"query_timeout_ms={CLI_LIMIT_MS}" in errors[0]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
