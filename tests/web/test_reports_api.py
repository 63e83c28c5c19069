"""Reports through a real server and the real CLI: JSON, CSV, problems, and who may read them."""

from __future__ import annotations

import csv
import io

import httpx
import orjson
from tests.fixtures.server import ServerProcess, run_cli
from tests.reports.course_data import COURSE_A, S1, fill_course

from caliper_store.config import Settings
from caliper_store.reports import run_report
from caliper_store.storage import Store

NOW = "2024-03-01T00:00:00.000000Z"
AT = "2024-03-12T10:00:00Z"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_reports_over_http_as_json_and_csv(server: ServerProcess, store: Store) -> None:
    fill_course(store)
    reader, _ = store.keys.create(label="advisor", now=NOW, scopes=("read",))
    params = {"groupId": COURSE_A, "at": AT}
    expected = run_report(
        store, "student-activity", {k: [v] for k, v in params.items()}, Settings()
    )
    with httpx.Client(base_url=server.base_url, headers=bearer(reader), timeout=60) as http:
        answer = http.get("/api/reports/student-activity", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["rows"] == expected.rows
        assert body["courseAverages"] == expected.summary["courseAverages"]
        assert (body["report"], body["asOf"]) == ("student-activity", expected.as_of)
        assert body["method"]["parameters"]["groupId"] == COURSE_A

        as_csv = http.get("/api/reports/student-activity", params={**params, "format": "csv"})
        assert as_csv.status_code == 200
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [row["actorId"] for row in rows] == [row["actorId"] for row in expected.rows]
        s1 = next(row for row in rows if row["actorId"] == S1)
        assert (s1["visits"], s1["timeActiveSeconds"], s1["inactive"]) == ("2", "3600.0", "true")

        missing = http.get("/api/reports/student-activity")
        assert missing.status_code == 400
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["field"] == "groupId"
        bad_format = http.get("/api/reports/courses", params={"format": "xlsx"})
        assert (bad_format.status_code, bad_format.json()["field"]) == (400, "format")
        unknown = http.get("/api/reports/everything")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"


def test_an_ingest_key_cannot_read_reports_and_a_read_key_cannot_post(
    server: ServerProcess, store: Store
) -> None:
    ingest_key, _ = store.keys.create(label="Learn", now=NOW)
    reader, _ = store.keys.create(label="advisor", now=NOW, scopes=("read",))
    admin, _ = store.keys.create(label="operator", now=NOW, scopes=("admin",))
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        assert http.get("/api/reports/courses").status_code == 401
        refused = http.get("/api/reports/courses", headers=bearer(ingest_key))
        assert (refused.status_code, refused.json()["field"]) == (403, "Authorization")
        assert http.get("/api/reports/courses", headers=bearer(admin)).status_code == 200
        posted = http.post(
            "/caliper",
            content=orjson.dumps({"sensor": "s", "sendTime": NOW, "data": []}),
            headers={**bearer(reader), "Content-Type": "application/json"},
        )
        assert posted.status_code == 403


def test_report_command_prints_a_table_json_and_csv(database_url: str, store: Store) -> None:
    fill_course(store)
    shown = run_cli(
        "report",
        "student-activity",
        "--group-id",
        COURSE_A,
        "--at",
        AT,
        "--json",
        "--database",
        database_url,
    )
    assert shown.returncode == 0, shown.stderr
    expected = run_report(
        store, "student-activity", {"groupId": [COURSE_A], "at": [AT]}, Settings()
    )
    assert orjson.loads(shown.stdout)["rows"] == expected.rows
    as_csv = run_cli(
        "report", "grades", "--group-id", COURSE_A, "--csv", "--database", database_url
    )
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[0].startswith("eventId,studentId,assignableId,")
    assert len(as_csv.stdout.splitlines()) == 1 + 4
    table = run_cli("report", "courses", "--at", AT, "--database", database_url)
    assert table.returncode == 0, table.stderr
    assert "BIO-101" in table.stdout
    assert "2 rows" in table.stderr
    refused = run_cli("report", "student-activity", "--database", database_url)
    assert refused.returncode == 1
    assert "--group-id is required" in refused.stderr
