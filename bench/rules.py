"""What the recommended ingest rules cost: the ingest rate with them, as a fraction of without.

Two measurements, each alternating runs without and with the shipped recommended rule set so
both see the same machine state (target: at least 0.9 of the rate, issue 13):

- ``--through server`` (the ingest rate as a producer sees it): bench/ingest.py loads a real
  server over HTTP, started once plain and once with ``--rules-file`` and a pseudonym key, on a
  new database each run; each rate is printed beside the bare database ceiling of its run.
- ``--through process`` (the part the rules can change, without HTTP): the same bodies are
  parsed and normalized (``prepare_request``, where the rules run) and committed
  (``commit_batch``) into a new SQLite file. The rules' share is larger here, since the
  server's own costs per event are left out.

    python bench/rules.py --through process --shape learn --rounds 3
    python bench/rules.py --through server --shape all --rounds 3 [--postgres-admin-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workload
from bench.limits import REPO, Window, alternating_round
from caliper_store.config import Settings
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.privacy import (
    Pseudonymizer,
    RuleBook,
    parse_rules,
    recommended_rules,
)
from caliper_store.storage import commit_batch, open_store, utc_text

REQUESTS_PER_COMMIT = {"learn": 10, "canvas": 64}


def _round(bodies: list[bytes], shape: str, rules: RuleBook | None, folder: Path) -> float:
    database = folder / f"rules-{time.monotonic_ns()}.db"
    store = open_store(Settings(database_url=f"sqlite:///{database}"))
    store.require_current_schema(create_if_empty=True)
    _, key = store.keys.create(label="Blackboard Learn", now=utc_text(datetime.now(UTC)))
    limits = IngestLimits.from_settings(Settings())
    per_commit = REQUESTS_PER_COMMIT[shape]
    events = 0
    began = time.perf_counter()
    for start in range(0, len(bodies), per_commit):
        requests = [
            prepare_request(
                body, key=key, limits=limits, received_at=utc_text(datetime.now(UTC)), rules=rules
            ).request
            for body in bodies[start : start + per_commit]
        ]
        events += sum(request.event_count for request in requests)
        commit_batch(store, requests)
    elapsed = time.perf_counter() - began
    store.close()
    return events / elapsed


def _through_process(shape: str, events: int, rounds: int) -> None:
    scenario = workload.build_scenario(shape)
    source = workload.EnvelopeSource(scenario, workload.IdSource())
    text = recommended_rules()
    book = RuleBook(
        parse_rules(text), "recommended", text, Pseudonymizer(b"bench secret, 32 bytes long.....")
    )
    with tempfile.TemporaryDirectory() as folder:
        plain: list[float] = []
        ruled: list[float] = []
        for number in range(rounds):
            bodies = [
                b"".join(source.next_body()[0])
                for _ in range(events // scenario.events_per_envelope)
            ]
            plain.append(_round(bodies, shape, None, Path(folder)))
            ruled.append(_round(bodies, shape, book, Path(folder)))
            print(
                f"round {number + 1}: without rules {plain[-1]:,.0f} events/s, "
                f"with the recommended rules {ruled[-1]:,.0f} ({ruled[-1] / plain[-1]:.3f})"
            )
    print(
        f"{shape} in process: median without {statistics.median(plain):,.0f} events/s, with "
        f"{statistics.median(ruled):,.0f}: "
        f"{statistics.median(ruled) / statistics.median(plain):.3f} of the rate (target 0.9)"
    )


def _through_server(
    shape: str, rounds: int, window: Window, postgres_admin_url: str | None
) -> None:
    work = Path(tempfile.mkdtemp(prefix="caliper-rules-"))
    rules_file = work / "rules.toml"
    rules_file.write_text(recommended_rules(), encoding="utf-8")
    key_file = work / "pseudonym.key"
    key_file.write_text("bench secret, 32 bytes long.....", encoding="utf-8")
    with_rules = ["--rules-file", str(rules_file), "--pseudonym-key-file", str(key_file)]
    runs: dict[str, tuple[Path, Sequence[str]]] = {
        "without": (REPO, ()),
        "with rules": (REPO, with_rules),
    }
    ratios = []
    print(f"{shape} through the server: events/s (fraction of the bare ceiling of the run), p99")
    for number in range(rounds):
        rates = alternating_round(runs, shape, number, work, window, postgres_admin_url)
        ratios.append(rates["with rules"] / rates["without"])
        print(f"  round {number + 1} with / without: {ratios[-1]:.3f}")
    print(
        f"{shape} through the server: median {statistics.median(ratios):.3f} of the rate "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}; target 0.9); work in {work}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--through", choices=["process", "server"], default="process")
    parser.add_argument("--shape", choices=[*sorted(REQUESTS_PER_COMMIT), "all"], default="learn")
    parser.add_argument("--events", type=int, default=60_000, help="each process round")
    parser.add_argument("--rounds", type=int, default=3)
    Window.add_arguments(parser)  # each server run
    parser.add_argument(
        "--postgres-admin-url",
        default=None,
        help="server runs on PostgreSQL: each gets a new database made through this URL",
    )
    args = parser.parse_args()
    shapes = sorted(REQUESTS_PER_COMMIT) if args.shape == "all" else [args.shape]
    for shape in shapes:
        if args.through == "process":
            _through_process(shape, args.events, args.rounds)
        else:
            _through_server(
                shape, args.rounds, Window.from_arguments(args), args.postgres_admin_url
            )


if __name__ == "__main__":
    main()
