"""schemathesis against the served OpenAPI document, with an ingest, a read and an admin key.

It generates requests from the document (fuzzing, then stateful sequences following the
links it infers) and fails on any 5xx and on any status the document does not declare. Each
run draws new requests; a failure prints the seed and a curl line that reproduce it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from caliper_store.storage import Store
from tests.conftest import start_server
from tests.fixtures.payloads import canvas_event, envelope

NOW = "2024-01-01T00:00:00.000000Z"
# Examples per operation and phase: 20-35 s a key and backend on a 2-core machine (60 took
# 24-75 s, a sixth of the suite on a slow one). Each run draws new examples.
MAX_EXAMPLES = 30
CHECKS = "not_a_server_error,status_code_conformance"


def schemathesis_command() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (it comes with the test extra)")
    return [found]


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
def test_schemathesis_finds_no_server_error_and_no_undocumented_status(
    tmp_path: Path, database_url: str, store: Store, scope: str
) -> None:
    command = schemathesis_command()
    running = start_server(tmp_path, database_url)
    key, _ = store.keys.create(label=scope, now=NOW, scopes=(scope,))
    sender, _ = store.keys.create(label="Canvas", now=NOW)
    held = canvas_event()
    del held["actor"]
    body = orjson.dumps(envelope([canvas_event(user=n) for n in range(20)] + [held]))
    answer = httpx.post(
        running.base_url + "/caliper",
        content=body,
        headers={"Authorization": f"Bearer {sender}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    finished = subprocess.run(
        [
            *command,
            "run",
            running.base_url + "/api/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            # The coverage phase stops on an internal error of schemathesis on Python 3.11.
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-6000:] + finished.stderr[-2000:]
    assert running.stop(), running.log()
