"""``caliper-store send``, ``replay`` and ``loadgen`` through the installed command."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from caliper_store.config import Settings
from caliper_store.sensor import SHAPES, new_event_id
from caliper_store.storage import Store, open_store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, corpus_dir, envelope, moodle_event
from tests.fixtures.server import ServerProcess, run_cli

SHAPE_SIZE = ("--courses", "3", "--students", "30", "--days", "2", "--first-day", "2026-11-02")


@pytest.fixture
def key(store: Store) -> str:
    created, _ = store.keys.create(label="cli", now="2024-01-01T00:00:00.000000Z")
    return created


def summary_of(*args: str) -> dict[str, Any]:
    result = run_cli(*args, "--json", "--no-progress")
    assert result.returncode == 0, result.stderr + result.stdout
    shown: dict[str, Any] = orjson.loads(result.stdout)
    return shown


def raw_by_id(export: Path) -> dict[str, bytes]:
    """Each exported event's stored raw text, exactly: the line's last value, cut out."""
    raws = {}
    for line in export.read_bytes().splitlines():
        raws[orjson.loads(line)["event_id"]] = line[line.index(b',"raw":') + 7 : -1]
    return raws


def test_send_reads_folders_json_ndjson_and_gzip_and_sums_up_the_verdicts(
    tmp_path: Path, server: ServerProcess, store: Store, key: str
) -> None:
    folder = tmp_path / "in" / "nested"
    folder.mkdir(parents=True)
    loose = [canvas_event(event_id=new_event_id()) for _ in range(5)]
    (folder / "loose.ndjson").write_bytes(b"\n".join(orjson.dumps(e) for e in loose) + b"\n")
    with gzip.open(folder / "envelope.json.gz", "wb") as packed:
        packed.write(orjson.dumps(envelope([canvas_event(event_id=new_event_id())])))
    (tmp_path / "in" / "list.json").write_bytes(orjson.dumps([moodle_event(1, 2, 3)]))
    (tmp_path / "in" / "notes.txt").write_text("not a payload")
    url = server.base_url + "/caliper"
    first = summary_of("send", str(tmp_path / "in"), "--url", url, "--key", key)
    assert (first["delivered"], first["stored"], first["quarantined"]) == (7, 7, 0)
    again = summary_of("send", str(tmp_path / "in"), "--url", url, "--key", key)
    assert (again["stored"], again["duplicates"]) == (0, 7)  # the Moodle event's id is derived
    assert len(list(store.iter_event_ids())) == 7


def test_send_exits_1_and_says_so_when_the_store_refuses(
    tmp_path: Path, server: ServerProcess
) -> None:
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(canvas_event(event_id=new_event_id())))
    url = server.base_url + "/caliper"
    result = run_cli("send", str(path), "--url", url, "--key", "wrong", "--no-progress")
    assert result.returncode == 1
    assert "rejected" in result.stdout
    assert "HTTP 401" in result.stdout


def test_send_names_the_file_and_line_of_a_broken_payload(
    tmp_path: Path, server: ServerProcess, key: str
) -> None:
    path = tmp_path / "broken.ndjson"
    path.write_bytes(orjson.dumps(canvas_event(event_id=new_event_id())) + b"\n{not json\n")
    result = run_cli("send", str(path), "--url", server.base_url + "/caliper", "--key", key)
    assert result.returncode == 1
    assert f"{path}:2 is not JSON" in result.stderr


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_loadgen_traffic_of_every_shape_is_stored_whole(
    shape: str, server: ServerProcess, store: Store, key: str
) -> None:
    url = server.base_url + "/caliper"
    shown = summary_of("loadgen", "--shape", shape, *SHAPE_SIZE, "--url", url, "--key", key)
    assert shown["delivered"] == shown["stored"] > 0
    assert (shown["quarantined"], shown["rejected"], shown["undelivered"]) == (0, 0, 0)
    stats = store.stats()
    assert stats["events"] == shown["stored"]
    again = summary_of("loadgen", "--shape", shape, *SHAPE_SIZE, "--url", url, "--key", key)
    assert again["duplicates"] == shown["stored"]  # the same seed: the same events, the same ids


def test_loadgen_learn_sends_each_days_grades_after_its_other_events(tmp_path: Path) -> None:
    out = tmp_path / "learn.ndjson"
    result = run_cli("loadgen", "--shape", "learn", *SHAPE_SIZE, "--output", str(out))
    assert result.returncode == 0, result.stderr
    envelopes = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert all(len(e["data"]) <= 100 for e in envelopes)
    kinds = [event["type"] == "GradeEvent" for e in envelopes for event in e["data"]]
    days = [event["eventTime"][:10] for e in envelopes for event in e["data"]]
    assert any(kinds)
    for day in sorted(set(days)):
        of_day = [grade for grade, d in zip(kinds, days, strict=True) if d == day]
        first_grade = of_day.index(True) if True in of_day else len(of_day)
        assert all(of_day[first_grade:]), f"a grade of {day} came before that day's other events"


def test_loadgen_output_sent_with_send_stores_the_same_events(
    tmp_path: Path, server: ServerProcess, store: Store, key: str
) -> None:
    out = tmp_path / "moodle.ndjson"
    assert (
        run_cli("loadgen", "--shape", "moodle", *SHAPE_SIZE, "--output", str(out)).returncode == 0
    )
    url = server.base_url + "/caliper"
    shown = summary_of("send", str(out), "--url", url, "--key", key)
    written = sum(len(orjson.loads(line)["data"]) for line in out.read_bytes().splitlines())
    assert shown["stored"] == written


def test_replay_of_an_export_gives_a_fresh_store_the_same_ids_and_raw_json(
    tmp_path: Path, database_url: str, store: Store, key: str
) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source_store = open_store(Settings(database_url=source_url))
    source_store.require_current_schema(create_if_empty=True)
    source_key, _ = source_store.keys.create(label="source", now="2024-01-01T00:00:00.000000Z")
    source_store.close()
    (tmp_path / "source").mkdir()
    source = start_server(tmp_path / "source", source_url)
    url = source.base_url + "/caliper"
    for shape in sorted(SHAPES):
        summary_of("loadgen", "--shape", shape, *SHAPE_SIZE, "--url", url, "--key", source_key)
    corpus = corpus_dir() / "ims" / "v1p1"
    if corpus.is_dir():
        copy = tmp_path / "corpus"
        shutil.copytree(corpus, copy)
        summary_of("send", str(copy), "--url", url, "--key", source_key)
    assert source.stop(), source.log()
    exported = tmp_path / "source.ndjson"
    assert run_cli("export", "--database", source_url, "-o", str(exported)).returncode == 0

    target = start_server(tmp_path, database_url)
    target_url = target.base_url + "/caliper"
    shown = summary_of("replay", str(exported), "--url", target_url, "--key", key)
    expected = raw_by_id(exported)
    assert shown["stored"] == len(expected)
    assert shown["quarantined"] == 0
    again = summary_of("replay", str(exported), "--url", target_url, "--key", key)
    assert again["duplicates"] == len(expected)
    assert target.stop(), target.log()
    replayed = tmp_path / "target.ndjson"
    assert run_cli("export", "--database", database_url, "-o", str(replayed)).returncode == 0
    assert raw_by_id(replayed) == expected
