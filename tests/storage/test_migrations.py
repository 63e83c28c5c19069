"""Schema migrations: an old database is upgraded without losing a row; serve refuses to guess."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, insert, select, text
from tests.fixtures.events import ingest_generated
from tests.fixtures.server import run_cli

from caliper_store.config import Settings
from caliper_store.errors import SchemaOutOfDate
from caliper_store.reports import run_report
from caliper_store.storage import SchemaState, Store, open_store
from caliper_store.storage.migrate import (
    MIGRATIONS_DIR,
    downgrade,
    head_revision,
    known_revisions,
    upgrade,
)
from caliper_store.storage.schema import api_keys, events
from caliper_store.storage.search import Condition

FIRST_REVISION = "0001"
TIME = "2024-03-01T10:00:00.000000Z"


def test_the_revision_files_names_are_the_revisions_alembic_reads_in_order() -> None:
    # The schema check reads revisions off the file names, without loading Alembic.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    walked = [revision.revision for revision in script.walk_revisions()]  # newest first
    assert known_revisions() == walked[::-1]
    assert head_revision() == script.get_current_head()
    for older, newer in itertools.pairwise(known_revisions()):
        assert script.get_revision(newer).down_revision == older


def fill_first_revision(database_url: str) -> None:
    """A database as version 0001 of the schema left it, with rows in every table."""
    store = open_store(Settings(database_url=database_url))
    with store.engine.connect() as connection:
        upgrade(connection, FIRST_REVISION)
    with store.engine.begin() as connection:
        connection.execute(
            insert(api_keys).values(
                key_prefix="abcd1234",
                key_hash="0" * 64,
                label="old",
                scopes="ingest",
                status="active",
                is_strict=False,
                created_at=TIME,
            )
        )
        is_postgres = database_url.startswith("postgresql")
        if is_postgres:
            connection.execute(
                text(
                    "CREATE TABLE events_p2024_03 PARTITION OF events "
                    "FOR VALUES FROM ('2024-03-01') TO ('2024-04-01')"
                )
            )
        connection.execute(
            text(
                "INSERT INTO receipts (id, api_key_id, is_envelope, received_at, body_bytes, item_count, "
                "stored_count, duplicate_count, quarantined_count) VALUES (1, 1, true, :t, 10, 3, 2, 0, 1)"
            ),
            {"t": TIME},
        )
        for number in range(2):
            event_id = f"urn:uuid:00000000-0000-4000-8000-00000000000{number}"
            connection.execute(
                text(
                    "INSERT INTO events (event_id, has_derived_id, content_hash, caliper_version, "
                    "event_type, action, actor_id, object_id, api_key_id, receipt_id, is_extension, "
                    "event_time, received_at, raw) VALUES (:id, false, :hash, '1.1', 'ViewEvent', "
                    "'Viewed', 'https://example.edu/u/1', 'https://example.edu/o/1', 1, 1, false, :t, :t, '{}')"
                ),
                {"id": event_id, "hash": str(number) * 64, "t": TIME},
            )
            if is_postgres:
                connection.execute(
                    text("INSERT INTO event_ids VALUES (:id, :hash, :t)"),
                    {"id": event_id, "hash": str(number) * 64, "t": TIME},
                )
        connection.execute(
            text(
                "INSERT INTO quarantine (receipt_id, api_key_id, item_index, reason, reasons, received_at, raw) "
                "VALUES (1, 1, 2, 'missing_actor', '[]', :t, '{}')"
            ),
            {"t": TIME},
        )
    store.close()


def test_old_database_is_migrated_to_head_without_losing_rows(
    database_url: str, tmp_path: Path
) -> None:
    fill_first_revision(database_url)
    store = open_store(Settings(database_url=database_url))
    state, revision = store.schema_state()
    store.close()
    if head_revision() != FIRST_REVISION:
        assert (state, revision) == (SchemaState.OUTDATED, FIRST_REVISION)
        refused = run_cli("serve", "--port", "1", "--database", database_url)
        assert refused.returncode != 0
        assert "caliper-store migrate" in refused.stderr
    migrated = run_cli("migrate", "--database", database_url)
    assert migrated.returncode == 0, migrated.stderr
    assert head_revision() in migrated.stdout
    store = open_store(Settings(database_url=database_url))
    try:
        assert store.schema_state() == (SchemaState.CURRENT, head_revision())
        figures = store.stats()
        assert (figures["events"], figures["quarantined"], figures["receipts"]) == (2, 1, 1)
        assert [key.label for key in store.keys.list()] == ["old"]
        with store.engine.connect() as connection:
            times = connection.execute(select(events.c.event_time, events.c.received_at)).all()
            # The times survive every change of their storage form (revision 0003 on SQLite).
            assert [tuple(row) for row in times] == [(TIME, TIME), (TIME, TIME)]
            newer = connection.scalar(
                select(func.count()).where(events.c.event_time > "2024-02-29T23:59:59.999999Z")
            )
            assert newer == 2
    finally:
        store.close()


def test_migrate_is_idempotent_and_creates_a_new_database(database_url: str) -> None:
    for _ in range(2):
        result = run_cli("migrate", "--database", database_url)
        assert result.returncode == 0, result.stderr
        # A new database has no stored event to rewrite: no progress bar, one line.
        assert result.stdout.count("\n") == 1, result.stdout
        assert result.stderr == ""
    store = open_store(Settings(database_url=database_url))
    assert store.schema_state() == (SchemaState.CURRENT, head_revision())
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(api_keys)) == 0
    store.close()


def test_schema_newer_than_the_code_is_refused(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url))
    store.migrate()
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="newer"):
        store.require_current_schema(create_if_empty=True)
    store.close()


def test_event_times_survive_revision_0003_down_and_up(database_url: str) -> None:
    """SQLite keeps event times as integers from 0003 on; the text form before it is exact."""
    moments = ["2024-03-01T10:00:00.000001Z", "1969-12-31T23:59:59.500000Z"]
    store = open_store(Settings(database_url=database_url))
    store.migrate()
    with store.engine.begin() as connection:
        if database_url.startswith("postgresql"):
            connection.execute(text("CREATE TABLE events_old PARTITION OF events DEFAULT"))
        for number, moment in enumerate(moments):
            connection.execute(
                insert(store.plain_rows_table()).values(
                    event_id=f"urn:uuid:00000000-0000-4000-8000-00000000000{number}",
                    has_derived_id=False,
                    content_hash="0" * 64,
                    caliper_version="1.1",
                    event_type="ViewEvent",
                    action="Viewed",
                    actor_id="https://example.edu/u/1",
                    object_id="https://example.edu/o/1",
                    api_key_id=1,
                    receipt_id=1,
                    is_extension=False,
                    event_time=moment,
                    received_at=moment,
                    raw="{}",
                )
            )
    with store.engine.connect() as connection:
        downgrade(connection, "0002")
        stored = connection.scalars(text("SELECT event_time FROM events ORDER BY seq")).all()
        if database_url.startswith("sqlite"):
            assert stored == moments
        upgrade(connection)
        again = connection.execute(
            select(events.c.event_time, events.c.received_at).order_by(events.c.seq)
        ).all()
    store.close()
    assert [tuple(row) for row in again] == [(moment, moment) for moment in moments]


def _quarantine_raw(connection: Connection, raw: str) -> str | None:
    """Store ``raw`` in the quarantine and say how PostgreSQL compressed it."""
    item = connection.scalar(
        text(
            "INSERT INTO quarantine (receipt_id, api_key_id, item_index, reason, reasons, "
            "received_at, raw) VALUES (1, 1, 0, 'x', '[]', now(), :raw) RETURNING id"
        ),
        {"raw": raw},
    )
    stored = connection.execute(
        text("SELECT raw, pg_column_compression(raw) FROM quarantine WHERE id = :id"), {"id": item}
    ).one()
    assert stored[0] == raw
    return str(stored[1])


def test_raw_json_is_compressed_with_lz4_from_revision_0004(database_url: str) -> None:
    """PostgreSQL compresses raw JSON with lz4 at head and pglz before; it reads back the same."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite does not compress values")
    raw = '{"id": "urn:uuid:1", "extensions": "' + "0123456789abcdef" * 400 + '"}'
    store = open_store(Settings(database_url=database_url))
    store.migrate()
    with store.engine.connect() as connection:
        with connection.begin():
            assert _quarantine_raw(connection, raw) == "lz4"
        downgrade(connection, "0003")
        with connection.begin():
            assert _quarantine_raw(connection, raw) == "pglz"
        upgrade(connection)
    store.close()


def _events_by_session(store: Store) -> dict[str | None, list[int]]:
    """Each session id stored (and one nobody had) with the seqs a session filter finds.

    Checked against the stored events themselves, read without a filter.
    """
    everything = [
        record
        for batch in store.events.batches([], batch_events=1_000, with_raw=False)
        for record in batch
    ]
    sessions = sorted({record.session_id for record in everything if record.session_id})
    found: dict[str | None, list[int]] = {
        session: [
            record.seq
            for batch in store.events.batches(
                [Condition("session_id", "in", (session,))], batch_events=1_000, with_raw=False
            )
            for record in batch
        ]
        for session in [*sessions, "urn:no-such-session"]
    }
    assert found == {
        session: [record.seq for record in everything if record.session_id == session]
        for session in found
    }
    found[None] = [record.seq for record in everything if record.session_id is None]
    return found


def _filled_over_segments(settings: Settings, *, seed: int) -> Store:
    """A new store of 400 generated events: three SQLite segments of 150, or PostgreSQL."""
    store = open_store(settings)
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="loader", now=TIME)
    ingest_generated(store, key, 400, seed=seed)
    return store


# Migrates, and SIGKILLs itself once 0011 has keyed its first segment or month.
KILLED_AFTER_FIRST_PART = textwrap.dedent(
    """
    import contextlib, os, signal, sys
    from caliper_store.config import Settings
    from caliper_store.storage import open_store

    @contextlib.contextmanager
    def killed_after_first_part(label, total):
        yield lambda done: os.kill(os.getpid(), signal.SIGKILL)

    open_store(Settings(database_url=sys.argv[1])).migrate(progress=killed_after_first_part)
    """
)


def test_events_stored_before_revision_0011_are_found_by_session_id(database_url: str) -> None:
    """0011 keys the stored events' sessions for its index: a filter finds the same events.

    Killed halfway, it leaves the store at 0010; run again, it keys every event.
    """
    settings = Settings(database_url=database_url, sqlite_segment_events=150)
    store = _filled_over_segments(settings, seed=11)
    try:
        before = _events_by_session(store)
        with store.engine.connect() as connection:
            downgrade(connection, "0010")
            columns = connection.execute(text("SELECT * FROM events LIMIT 0")).keys()
            assert "session_key" not in columns
    finally:
        store.close()
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_PART, database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Killed with a segment or a month keyed: nothing of 0011 was committed.
    store = open_store(settings)
    try:
        assert store.schema_state() == (SchemaState.OUTDATED, "0010")
        with store.engine.connect() as connection:
            columns = connection.execute(text("SELECT * FROM events LIMIT 0")).keys()
            assert "session_key" not in columns
    finally:
        store.close()
    migrated = run_cli("migrate", "--no-vacuum", "--database", database_url)
    assert migrated.returncode == 0, migrated.stderr
    # Under a progress bar, then its total: every event over SQLite's segments, those with a
    # session on PostgreSQL's months.
    keyed = [line for line in migrated.stdout.splitlines() if "by session id" in line]
    assert len(keyed) == 1, migrated.stdout
    total = sum(
        len(seqs) for session, seqs in before.items() if session or store.backend == "sqlite"
    )
    assert f": {total:,} events in " in keyed[0], (keyed, total)
    assert "keying events by session id" in migrated.stderr
    store = open_store(settings)
    try:
        after = _events_by_session(store)
    finally:
        store.close()
    # Five sessions and events without one, over three SQLite segments.
    assert len(before) == 7
    assert all(before[session] for session in before if session != "urn:no-such-session")
    assert before["urn:no-such-session"] == []
    assert after == before


def _people_time_indexes(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT tbl_name FROM sqlite_master WHERE type = 'index' "
                    "AND name LIKE '%people_time' ORDER BY tbl_name"
                )
            )
        )


def test_revision_0012_indexes_every_sealed_segment_and_the_course_list_stays(
    sqlite_url: str,
) -> None:
    """0012 builds the people_time index on each sealed SQLite segment (the writer builds the
    newest's when it seals it); the course list of a past week reads the same after it."""
    settings = Settings(database_url=sqlite_url, sqlite_segment_events=150)
    store = _filled_over_segments(settings, seed=12)
    try:
        sealed = _people_time_indexes(store)
        assert len(sealed) >= 2  # every segment but the newest
        at = {"at": ["2025-02-01T00:30:00Z"]}
        before = run_report(store, "courses", at, settings).rows
        with store.engine.connect() as connection:
            downgrade(connection, "0011")
        assert _people_time_indexes(store) == []
    finally:
        store.close()
    migrated = run_cli("migrate", "--no-vacuum", "--database", sqlite_url)
    assert migrated.returncode == 0, migrated.stderr
    assert "indexing who was active when" in migrated.stdout, migrated.stdout
    store = open_store(settings)
    try:
        assert _people_time_indexes(store) == sealed
        assert run_report(store, "courses", at, settings).rows == before
    finally:
        store.close()
