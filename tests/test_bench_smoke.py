"""Every benchmark script runs to the end on a tiny load, so none rots between measurements.

A smoke run checks only that a script starts, drives the store and prints its figures; the
figures themselves belong to real runs (bench/README.md), never to a pass/fail test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.polling import wait_for
from tests.fixtures.server import free_port

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
# Scripts that are modules of the others, not benchmarks of their own.
LIBRARIES = {"__init__", "ceilings", "dbtarget", "serverproc", "trivial_app", "workload"}
# Each bench/ingest.py run that a script makes: one second, no warm-up, short bare ceilings.
# On a busy machine a request may outlast that second: the window then stays open until one
# finishes (bench/load.py), so there is always a rate and a latency to print.
SHORT_WINDOW = ["--duration-s", "1", "--warmup-s", "0", "--ceiling-s", "0.5"]
# The smallest run of each script; {db} is a new SQLite file, {dir} a scratch directory, {url}
# the benchmarks' own minimal endpoint (compare_clients.py sink), for the load clients.
SMOKE_ARGUMENTS: dict[str, list[str]] = {
    "abuse": ["--rounds", "1"],
    "compare_clients": ["aiohttp", "--url", "{url}", "--warmup-s", "0", "--duration-s", "1"],
    "erase": ["--database", "{db}", "--people", "1"],
    "forward": [
        "--part",
        "all",
        "--rounds",
        "1",
        *SHORT_WINDOW,
        "--events",
        "500",
        "--niceness",
        "0",
    ],
    "ingest": ["--database", "{db}", "--duration-s", "1", "--warmup-s", "0", "--ceiling-s", "1"],
    "limits": ["--baseline-rev", "HEAD", "--rounds", "1", *SHORT_WINDOW],
    "load": ["--url", "{url}", "--api-key", "any", "--warmup-s", "0", "--duration-s", "1"],
    "query": ["fill", "--database", "{db}", "--events", "2000"],
    "reports": ["--database", "{db}", "--repeat", "1"],
    "rules": ["--rounds", "1", *SHORT_WINDOW, "--events", "500"],
    "space": ["--database", "{db}", "--events", "2000"],
    "writer": ["learn", "--work-dir", "{dir}", "--events", "2000", "--commits", "2"],
}


# Scripts that measure a filled store: `query.py fill` fills it first.
ON_A_FILLED_STORE = {"erase", "reports"}
FILL = ["query", "fill", "--database", "{db}", "--events", "2000"]


def test_every_bench_script_has_a_smoke_run() -> None:
    scripts = {path.stem for path in BENCH.glob("*.py")} - LIBRARIES
    assert scripts == set(SMOKE_ARGUMENTS)


@pytest.fixture
def sink_url() -> Iterator[str]:
    """The benchmarks' minimal endpoint, answering 200 to every POST."""
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(BENCH / "compare_clients.py"), "sink", "--port", str(port)],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/caliper"
    wait_for(lambda: _answers(url), "the sink to listen")
    yield url
    sink.terminate()
    sink.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.post(url, content=b"{}", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("script", sorted(SMOKE_ARGUMENTS))
def test_bench_script_runs_on_a_tiny_load(
    script: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sink_url") if script in ("compare_clients", "load") else ""
    values = {"db": f"sqlite:///{tmp_path / 'bench.db'}", "dir": str(tmp_path), "url": url}
    if script in ON_A_FILLED_STORE:
        run_bench([part.format(**values) for part in FILL])
    finished = run_bench([script, *(part.format(**values) for part in SMOKE_ARGUMENTS[script])])
    assert finished.stdout.strip(), "a benchmark prints its figures"


def run_bench(command: list[str]) -> subprocess.CompletedProcess[str]:
    """``python bench/<script>.py args...``, which must exit 0."""
    script, *arguments = command
    finished = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished
