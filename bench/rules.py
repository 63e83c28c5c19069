"""What the recommended ingest rules cost: the store's own ingest path with and without them.

Each round parses and normalizes the same bodies (``prepare_request``, where the rules run)
and commits them (``commit_batch``) into a fresh SQLite file, once without rules and once with
the shipped recommended rule set, alternating, so both see the same machine state. Printed:
events/s of each, and the rate with rules as a fraction of the rate without (target: at least
0.9, issue 13). No HTTP: the server's own costs are the same with and without rules, so this is
the part the rules can change.

    python bench/rules.py --shape learn --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workload
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shape", choices=sorted(REQUESTS_PER_COMMIT), default="learn")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scenario = workload.build_scenario(args.shape)
    source = workload.EnvelopeSource(scenario, workload.IdSource())
    text = recommended_rules()
    book = RuleBook(
        parse_rules(text), "recommended", text, Pseudonymizer(b"bench secret, 32 bytes long.....")
    )
    with tempfile.TemporaryDirectory() as folder:
        plain: list[float] = []
        ruled: list[float] = []
        for number in range(args.rounds):
            bodies = [
                b"".join(source.next_body()[0])
                for _ in range(args.events // scenario.events_per_envelope)
            ]
            plain.append(_round(bodies, args.shape, None, Path(folder)))
            ruled.append(_round(bodies, args.shape, book, Path(folder)))
            print(
                f"round {number + 1}: without rules {plain[-1]:,.0f} events/s, "
                f"with the recommended rules {ruled[-1]:,.0f} ({ruled[-1] / plain[-1]:.3f})"
            )
    print(
        f"{args.shape}: median without {statistics.median(plain):,.0f} events/s, with "
        f"{statistics.median(ruled):,.0f}: "
        f"{statistics.median(ruled) / statistics.median(plain):.3f} of the rate (target 0.9)"
    )


if __name__ == "__main__":
    main()
