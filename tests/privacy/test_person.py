"""A person's export and erase, on both backends, over the hand-built course of the reports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from caliper_store.config import Settings
from caliper_store.privacy import (
    PersonTraces,
    Pseudonymizer,
    RuleBook,
    erase_person,
    export_lines,
    find_person,
    parse_rules,
)
from caliper_store.reports import run_report, verify_rollups
from caliper_store.storage import Store, open_store, utc_text
from caliper_store.storage.migrate import downgrade
from tests.fixtures.events import ingest
from tests.fixtures.server import run_cli
from tests.reports.course_data import (
    CANVAS_SENSOR,
    COURSE_A,
    S1,
    S2,
    T1,
    _body,
    canvas_event,
    fill_course,
)

NOW = "2024-03-07T00:00:00.000000Z"


def _stored(store: Store) -> dict[str, str]:
    """Every stored event's raw JSON by event id."""
    with store.snapshot(is_time_limited=False) as snapshot:
        rows = snapshot.events([], ("event_id",), with_raw=True)
        return {str(event_id): str(raw) for event_id, raw in rows}


def _quarantined(store: Store) -> dict[int, str]:
    with store.snapshot(is_time_limited=False) as snapshot:
        return {item[0]: item[5] for item in snapshot.quarantine_items()}


def _find(store: Store, given: str, secret: Pseudonymizer | None = None) -> PersonTraces:
    with store.snapshot(is_time_limited=False) as snapshot:
        return find_person(snapshot, given, secret)


def _names(raw: str, *ids: str) -> bool:
    return any(orjson.dumps(value).decode() in raw for value in ids)


def test_the_person_is_found_through_every_id_the_events_link(store: Store) -> None:
    fill_course(store)
    by_actor = _find(store, S1)
    by_external_id = _find(store, "L-s1")
    assert by_actor.ids == by_external_id.ids == {S1, "L-s1"}
    assert by_actor.event_seqs == by_external_id.event_seqs
    named = {event_id for event_id, raw in _stored(store).items() if _names(raw, S1, "L-s1")}
    with store.snapshot(is_time_limited=False) as snapshot:
        found = {
            str(row[0])
            for row in snapshot.events([], ("event_id", "seq"))
            if row[1] in by_actor.event_seqs
        }
    # Her own events, and the instructor's grades of her attempts, which name her only inside.
    assert found == named
    # The instructor's grades of her attempts name her only inside the event; they count too.
    grades = {
        event_id
        for event_id, raw in _stored(store).items()
        if orjson.loads(raw).get("type") == "GradeEvent" and _names(raw, S1)
    }
    assert len(grades) == 2
    assert grades <= found


def test_export_holds_every_event_that_names_the_person_and_nothing_else(
    store: Store, tmp_path: Path
) -> None:
    fill_course(store)
    traces = _find(store, S2)
    lines = [orjson.loads(line) for line in export_lines(store, traces)]
    exported = {line["event"]["id"] for line in lines if line["kind"] == "event"}
    named = {event_id for event_id, raw in _stored(store).items() if _names(raw, S2, "SIS2")}
    assert exported == named
    quarantined = [line for line in lines if line["kind"] == "quarantined"]
    assert [line["reasons"][0]["code"] for line in quarantined] == ["id_conflict"]


def test_erase_removes_every_trace_and_nothing_of_anybody_else(store: Store) -> None:
    fill_course(store)
    before_events = _stored(store)
    before_quarantine = _quarantined(store)
    traces = _find(store, S2)
    dry = erase_person(
        store,
        traces,
        pseudonymizer=None,
        is_dry_run=True,
        batch_events=2,
        actor="test",
        at=NOW,
    )
    assert _stored(store) == before_events  # a dry run removes nothing
    result = erase_person(
        store,
        traces,
        pseudonymizer=None,
        is_dry_run=False,
        batch_events=2,  # several batches, each its own transaction
        actor="test",
        at=NOW,
    )
    kept = {event_id: raw for event_id, raw in before_events.items() if not _names(raw, S2, "SIS2")}
    # Her four Canvas events and the grade of her attempt, which names her only inside.
    assert len(before_events) - len(kept) == 5
    assert (result.events, result.quarantined) == (dry.events, dry.quarantined) == (5, 1)
    assert _stored(store) == kept
    assert _quarantined(store) == {
        item_id: raw for item_id, raw in before_quarantine.items() if not _names(raw, S2, "SIS2")
    }
    assert verify_rollups(store) == []
    assert _find(store, S2).event_seqs == set()
    courses = run_report(store, "courses", {"at": [NOW]}, Settings()).rows
    assert {row["groupId"] for row in courses} == {COURSE_A}  # course B was only hers
    students = run_report(
        store, "student-activity", {"groupId": [COURSE_A], "at": [NOW]}, Settings()
    )
    assert S2 not in {row["actorId"] for row in students.rows}
    assert T1 in {row["actorId"] for row in students.rows}


def test_the_audit_row_names_the_erased_person_only_by_an_hmac(store: Store) -> None:
    fill_course(store)
    secret = Pseudonymizer(b"a test secret of enough bytes")
    result = erase_person(
        store,
        _find(store, S1, secret),
        pseudonymizer=secret,
        is_dry_run=False,
        batch_events=100,
        actor="test",
        at=NOW,
    )
    [entry] = store.audit_entries(limit=10, action="erase")
    assert (
        entry.target
        == f"person hmac-sha256:{secret.digest(S1)}"
        == (f"person hmac-sha256:{result.person_hmac}")
    )
    shown = orjson.dumps(entry.as_json()).decode()
    assert "users/s1" not in shown
    assert "L-s1" not in shown
    assert entry.rows == result.events + result.quarantined + result.entities


def test_a_clear_id_finds_the_person_of_a_pseudonymized_store(store: Store) -> None:
    secret = Pseudonymizer(b"a test secret of enough bytes")
    text = (
        '[[rule]]\npseudonymize = ["$.actor.id", "$.actor[\'@id\']", '
        '"$..[\'bb:user.externalId\']", "$..assignee.id"]\n'
    )
    fill_course(store, RuleBook(parse_rules(text), "rules.toml", text, secret))
    assert not any(_names(raw, S1, "L-s1") for raw in _stored(store).values())
    traces = _find(store, S1, secret)
    assert secret.pseudonym(S1) in traces.ids
    assert secret.pseudonym("L-s1") in traces.ids
    assert len(traces.event_seqs) == 10  # as in the clear store
    erase_person(
        store, traces, pseudonymizer=secret, is_dry_run=False, batch_events=3, actor="t", at=NOW
    )
    assert not any(_names(raw, secret.pseudonym(S1)) for raw in _stored(store).values())
    assert verify_rollups(store) == []


def test_a_removed_newest_event_never_gives_its_seq_to_the_next_one(store: Store) -> None:
    keys = fill_course(store)
    with store.snapshot(is_time_limited=False) as snapshot:
        newest = max(int(str(row[0])) for row in snapshot.events([], ("seq",)))
    store.remove_events([newest], batch_events=10)
    late = canvas_event("2024-03-06T10:00:00.000Z", label="after-the-removal")
    ingest(store, keys.canvas, _body(CANVAS_SENSOR, [late]), utc_text(datetime.now(UTC)))
    with store.snapshot(is_time_limited=False) as snapshot:
        seqs = sorted(int(str(row[0])) for row in snapshot.events([], ("seq",)))
    assert newest not in seqs
    assert seqs[-1] > newest


def _logins(store: Store) -> set[tuple[str, str]]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT login, actor_id FROM actor_logins").all()
    return {(str(login), str(actor_id)) for login, actor_id in rows}


def _send_with_login(store: Store, login: str, *, label: str, time: str) -> None:
    event = canvas_event(time, label=label)
    event["actor"]["extensions"] = {"com.instructure.canvas": {"user_login": login}}
    key = next(key for key in store.keys.list() if key.label == "Canvas")
    ingest(store, key, _body(CANVAS_SENSOR, [event]), NOW)


def test_a_login_alone_finds_the_person_and_erase_forgets_it(store: Store) -> None:
    fill_course(store)
    _send_with_login(store, "s2@example.edu", label="login-1", time="2024-03-05T09:00:00.000Z")
    _send_with_login(store, "s2@example.edu", label="login-2", time="2024-03-05T11:00:00.000Z")
    assert _logins(store) == {("s2@example.edu", S2)}
    by_login = _find(store, "s2@example.edu")
    assert by_login.logins == {"s2@example.edu"}
    assert S2 in by_login.actor_ids
    assert "SIS2" in by_login.external_ids
    assert by_login.event_seqs == _find(store, S2).event_seqs  # every event of hers, not 2
    assert by_login.as_json()["logins"] == ["s2@example.edu"]
    lines = [orjson.loads(line) for line in export_lines(store, by_login)]
    assert [line for line in lines if line["kind"] == "login"] == [
        {"kind": "login", "login": "s2@example.edu", "actorId": S2}
    ]
    result = erase_person(
        store, by_login, pseudonymizer=None, is_dry_run=False, batch_events=5, actor="t", at=NOW
    )
    assert result.login_pairs == 1
    assert _logins(store) == set()
    assert _find(store, "s2@example.edu").event_seqs == set()


def test_the_login_of_a_pseudonymized_store_is_kept_as_its_pseudonym(store: Store) -> None:
    secret = Pseudonymizer(b"a test secret of enough bytes")
    text = '[[rule]]\npseudonymize = ["$.actor.id", "$..user_login"]\n'
    fill_course(store, RuleBook(parse_rules(text), "rules.toml", text, secret))
    key = next(key for key in store.keys.list() if key.label == "Canvas")
    event = canvas_event("2024-03-05T09:00:00.000Z", label="login-p")
    event["actor"]["extensions"] = {"com.instructure.canvas": {"user_login": "s2@example.edu"}}
    rules = RuleBook(parse_rules(text), "rules.toml", text, secret)
    ingest(store, key, _body(CANVAS_SENSOR, [event]), NOW, rules=rules)
    assert _logins(store) == {(secret.pseudonym("s2@example.edu"), secret.pseudonym(S2))}
    assert secret.pseudonym(S2) in _find(store, "s2@example.edu", secret).actor_ids


def test_an_upgraded_store_keeps_the_logins_of_its_events(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url))
    store.migrate()
    fill_course(store)
    _send_with_login(store, "s2@example.edu", label="login-u", time="2024-03-05T09:00:00.000Z")
    with store.engine.connect() as connection:
        downgrade(connection, "0008")
        connection.commit()
    store.close()
    upgraded = run_cli("migrate", "--database", database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "kept 1 logins" in upgraded.stdout
    store = open_store(Settings(database_url=database_url))
    try:
        assert _logins(store) == {("s2@example.edu", S2)}
        assert S2 in _find(store, "s2@example.edu").actor_ids
    finally:
        store.close()
