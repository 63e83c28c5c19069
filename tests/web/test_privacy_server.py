"""Ingest rules, a person's rights and the audit log through a real server, on both backends."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import httpx
import orjson
from tests.conftest import start_server
from tests.fixtures.server import run_cli
from tests.reports.course_data import COURSE_A, S1, learn_event

from caliper_store.privacy import recommended_rules
from caliper_store.storage import Store

IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (a very particular browser 4711)"
SECRET = "0123456789abcdef0123456789abcdef"


def _learn_body(label: str) -> bytes:
    event = learn_event(
        S1, "NavigationEvent", "NavigatedTo", "2024-03-04T10:00:00.000Z", label=label
    )
    event["extensions"]["bb:request.headers.ipAddress"] = IP
    event["extensions"]["bb:request.headers.agent"] = AGENT
    return orjson.dumps(
        {
            "sensor": "https://lms.example.edu/caliper",
            "sendTime": "2024-03-04T10:00:01.000Z",
            "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p1",
            "data": [event],
        }
    )


def _database_bytes(database_url: str) -> bytes:
    """Every byte of an SQLite store's files, the WAL too (compressed raw JSON is read back
    through the store, in _raw_texts)."""
    if not database_url.startswith("sqlite"):
        return b""
    path = database_url.removeprefix("sqlite:///")
    found = b""
    for name in glob.glob(path + "*"):
        found += Path(name).read_bytes()
    return found


def _raw_texts(store: Store) -> str:
    with store.snapshot(is_time_limited=False) as snapshot:
        raws = [str(row[-1]) for row in snapshot.events([], ("seq",), with_raw=True)]
        raws += [item[5] for item in snapshot.quarantine_items()]
    return "\n".join(raws)


def test_rules_keep_removed_values_out_of_everything_the_store_holds(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(recommended_rules())
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(SECRET)
    ingest_key, _ = store.keys.create(label="Blackboard Learn", now="2024-03-01T00:00:00.000000Z")
    admin_key, _ = store.keys.create(
        label="dpo", now="2024-03-01T00:00:00.000000Z", scopes=("admin",)
    )
    flags = ("--rules-file", str(rules), "--pseudonym-key-file", str(key_file))
    for restart in range(2):
        server = start_server(tmp_path, database_url, *flags)
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                sent = http.post(
                    "/caliper",
                    content=_learn_body(f"e{restart}"),
                    headers={
                        "Authorization": f"Bearer {ingest_key}",
                        "Content-Type": "application/json",
                    },
                    params={"receipt": "1"},
                )
                assert sent.status_code == 200, sent.text
                # A second event with the same id and other content: quarantined, filtered too.
                clash = orjson.loads(_learn_body(f"e{restart}"))
                clash["data"][0]["object"]["id"] = "https://lms.example.edu/content/other"
                assert (
                    http.post(
                        "/caliper",
                        content=orjson.dumps(clash),
                        headers={
                            "Authorization": f"Bearer {ingest_key}",
                            "Content-Type": "application/json",
                        },
                    ).status_code
                    == 200
                )
                admin = {"Authorization": f"Bearer {admin_key}"}
                page = http.get("/api/events", params={"raw": "true"}, headers=admin)
                export = http.get("/api/export", headers=admin)
                quarantined = http.get("/api/quarantine", params={"raw": "true"}, headers=admin)
                report = http.get(
                    "/api/reports/student-activity",
                    params={"groupId": COURSE_A, "at": "2024-03-07T00:00:00Z"},
                    headers=admin,
                )
        finally:
            assert server.stop(), server.log()
        for answer in (page, export, quarantined, report):
            assert answer.status_code == 200, answer.text
            for value in (IP, AGENT, S1, "L-s1"):
                assert value not in answer.text
        assert "203.0.113.0" in page.text
        # One pseudonym for her across the restart: the report counts one student.
        assert len(report.json()["rows"]) == 1
    assert "203.0.113.0" in _raw_texts(store)
    held = _raw_texts(store) + _database_bytes(database_url).decode("latin-1")
    for value in (IP, AGENT, S1, "L-s1"):
        assert value not in held
    with store.engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT DISTINCT rule_set_id FROM events").all()
        assert [row[0] for row in versions] == [1]
    [change] = store.audit_entries(limit=10, action="rules_changed")
    assert change.detail is not None
    assert change.detail["rule_set_id"] == 1


def test_a_server_whose_rules_are_broken_refuses_to_start(
    tmp_path: Path, database_url: str
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nredact = ["$.actor["]\n')
    result = run_cli("serve", "--database", database_url, "--rules-file", str(rules), "--port", "1")
    assert result.returncode != 0
    assert "line 2, rule 1" in result.stderr
    pseudonyms = tmp_path / "pseudonyms.toml"
    pseudonyms.write_text('[[rule]]\npseudonymize = ["$.actor.id"]\n')
    env = {key: value for key, value in os.environ.items() if "PSEUDONYM" not in key}
    result = run_cli(
        "serve", "--database", database_url, "--rules-file", str(pseudonyms), "--port", "1", env=env
    )
    assert result.returncode != 0
    assert "pseudonym_key_file" in result.stderr


def test_erase_and_export_over_the_api_need_admin_and_are_audited(
    tmp_path: Path, database_url: str, store: Store
) -> None:
    ingest_key, _ = store.keys.create(label="Blackboard Learn", now="2024-03-01T00:00:00.000000Z")
    reader, _ = store.keys.create(
        label="advisor", now="2024-03-01T00:00:00.000000Z", scopes=("read",)
    )
    admin_key, _ = store.keys.create(
        label="dpo", now="2024-03-01T00:00:00.000000Z", scopes=("admin",)
    )
    server = start_server(tmp_path, database_url)
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            for label in ("a", "b"):
                assert (
                    http.post(
                        "/caliper",
                        content=_learn_body(label),
                        headers={
                            "Authorization": f"Bearer {ingest_key}",
                            "Content-Type": "application/json",
                        },
                    ).status_code
                    == 200
                )
            quoted = "/api/persons/" + S1.replace(":", "%3A").replace("/", "%2F")
            assert (
                http.get(
                    quoted + "/export", headers={"Authorization": f"Bearer {reader}"}
                ).status_code
                == 403
            )
            exported = http.get(
                quoted + "/export", headers={"Authorization": f"Bearer {admin_key}"}
            )
            assert exported.status_code == 200, exported.text
            lines = [orjson.loads(line) for line in exported.text.splitlines()]
            assert [line["kind"] for line in lines] == ["event", "event"]
            dry = http.post(quoted + "/erase", headers={"Authorization": f"Bearer {admin_key}"})
            assert dry.json()["dryRun"] is True
            assert dry.json()["events"] == 2
            erased = http.post(
                quoted + "/erase",
                params={"dryRun": "false"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            assert erased.json()["dryRun"] is False
            assert erased.json()["events"] == 2
            bad = http.post(
                quoted + "/erase",
                params={"dryRun": "maybe"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            assert bad.status_code == 400
            assert bad.json()["field"] == "dryRun"
            audit = http.get("/api/audit", headers={"Authorization": f"Bearer {admin_key}"})
            assert (
                http.get("/api/audit", headers={"Authorization": f"Bearer {reader}"}).status_code
                == 403
            )
    finally:
        assert server.stop(), server.log()
    actions = [entry["action"] for entry in audit.json()["entries"]]
    assert actions[0] == "erase"
    assert actions.count("key_created") == 3
    assert S1 not in audit.text
    assert store.stats()["events"] == 0
