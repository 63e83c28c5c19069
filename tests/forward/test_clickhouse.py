"""ClickHouse through chDB: every event once, re-sent batches still once, the same reports."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from caliper_store.config import Settings
from caliper_store.forward import ClickHouseSink, ClickHouseSource, RelayOptions, forward_once
from caliper_store.forward.clickhouse import connect
from caliper_store.reports import run_report, run_report_on
from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.polling import wait_until_readable
from tests.fixtures.server import run_cli

pytest.importorskip("chdb", reason="chDB is in the test extra: pip install -e '.[test]'")
SIZE = ("--courses", "4", "--students", "40", "--days", "3", "--first-day", "2026-11-02")


def fill(tmp_path: Path, database_url: str, store: Store) -> None:
    key, _ = store.keys.create(label="lms", now="2024-01-01T00:00:00.000000Z")
    server = start_server(tmp_path, database_url)
    for shape in ("learn", "moodle"):
        url = server.base_url + "/caliper"
        result = run_cli("loadgen", "--shape", shape, *SIZE, "--url", url, "--key", key)
        assert result.returncode == 0, result.stderr
    assert server.stop(), server.log()


def test_forwarded_events_are_in_clickhouse_once_and_reports_agree_with_the_store(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    fill(tmp_path, database_url, store)
    ch_url = f"chdb://{tmp_path / 'ch'}"
    added = run_cli(
        "forward",
        "add",
        "ch",
        "--url",
        ch_url,
        "--from-start",
        "--batch-size",
        "300",
        "--database",
        database_url,
    )
    assert added.returncode == 0, added.stderr
    destination = store.forwarding.get("ch")
    sink = ClickHouseSink.connect(ch_url)
    stored = store.stats()["events"]
    wait_until_readable(store.forwarding, destination.cursor, stored)
    read = forward_once(store.forwarding, destination, sink, RelayOptions())
    assert read == stored
    first_batch = [event.record for event in store.forwarding.events_after(destination.cursor, 300)]
    sink.deliver(first_batch)  # a batch delivered twice, as after a crash
    sink.close()

    connection, place = connect(ch_url)
    try:
        [raw_count] = connection.rows(f"SELECT count() AS n FROM {place.name}")
        [final_count] = connection.rows(f"SELECT count() AS n FROM {place.name} FINAL")
        ids = connection.rows(f"SELECT event_id FROM {place.name} FINAL")
    finally:
        connection.close()
    assert int(raw_count["n"]) == int(final_count["n"]) == stored
    assert sorted(row["event_id"] for row in ids) == sorted(store.iter_event_ids())

    settings = Settings(database_url=database_url)
    labels = {key.id: key.label for key in store.keys.list()}
    source = ClickHouseSource.connect(ch_url, labels)
    try:
        on_store = run_report(store, "courses", {}, settings)
        on_clickhouse = run_report_on(source, "courses", {}, settings)
        assert on_clickhouse.rows == on_store.rows
        assert len(on_store.rows) == 8  # four Learn courses and four Moodle courses
        for course in on_store.rows:
            values = {"groupId": [course["groupId"]]}
            expected = run_report(store, "student-activity", values, settings)
            got = run_report_on(source, "student-activity", values, settings)
            assert got.rows == expected.rows
            assert got.summary == expected.summary
            assert any(row["latestGrades"] for row in got.rows)
    finally:
        source.close()

    cli = run_cli("report", "courses", "--json", "--source", ch_url, "--database", database_url)
    assert cli.returncode == 0, cli.stderr
    assert orjson.loads(cli.stdout)["rows"] == orjson.loads(on_store.to_json_bytes())["rows"]


def test_reports_that_need_the_store_say_so_over_clickhouse(
    tmp_path: Path, sqlite_url: str
) -> None:
    result = run_cli(
        "report", "delivery", "--source", f"chdb://{tmp_path / 'ch'}", "--database", sqlite_url
    )
    assert result.returncode == 1
    assert "runs on the store only" in result.stderr
