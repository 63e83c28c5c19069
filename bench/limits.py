"""What the ingest limits cost: this tree against a baseline revision, in alternating runs.

    python bench/limits.py [--baseline-rev 67d4983] [--scenario learn|canvas|all] [--rounds 3]

The limits of issue 16 (the parsed-memory bound, the in-flight budget, the envelope and column
length checks, the bounded HTTP protocol) cannot be switched off by a setting, so "without" is
the code before them: a git worktree of ``--baseline-rev``. Each round runs bench/ingest.py once
against a server from each tree, in alternating order (A B, then B A), on a new SQLite file,
then prints each rate beside the bare SQLite ceiling measured in the same run, and the ratio of
this tree's rate to the baseline's. Run it on a quiet machine; rates move 15-20% between runs,
so read the median ratio, not one pair.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
RESULTS_LINE = re.compile(r"logs and JSON results: (\S+)")


def run_ingest(
    tree: Path, scenario: str, database: str, results: Path, duration_s: float
) -> dict[str, object]:
    """One bench/ingest.py run against a server importing caliper_store from ``tree``."""
    serve = shlex.join(
        [
            "env",
            f"PYTHONPATH={tree / 'src'}",
            sys.executable,
            "-m",
            "caliper_store",
            "serve",
        ]
    )
    command = [
        sys.executable,
        str(REPO / "bench" / "ingest.py"),
        "--database",
        database,
        "--scenario",
        scenario,
        "--results-dir",
        str(results),
        "--duration-s",
        str(duration_s),
        "--server-cmd",
        serve + " --host {host} --port {port} --database {database}",
    ]
    # keys create and the schema come from this tree; the schema is the same at both revisions.
    subprocess.run(
        [sys.executable, "-m", "caliper_store", "migrate", "--database", database],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = RESULTS_LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench/ingest.py failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    (report,) = orjson.loads((Path(found.group(1)) / "ingest.json").read_bytes())
    assert isinstance(report, dict)
    if not report["is_count_ok"]:
        raise SystemExit(f"acknowledged events missing from {database}: see {found.group(1)}")
    return report


def figures(report: dict[str, object]) -> tuple[float, float, float]:
    """Events/s of the server, the best bare SQLite ceiling of that run, and the p99 in ms."""
    product = report["caliper_store"]
    assert isinstance(product, dict)
    ceilings = report["db_ceilings"]
    assert isinstance(ceilings, list)
    ceiling = max(float(c["rate"]) for c in ceilings if c["unit"] == "events/s")
    return float(product["events_per_s"]), ceiling, float(product["latency_ms"]["p99"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="67d4983", help="the code before the limits")
    parser.add_argument("--scenario", choices=["learn", "canvas", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-s", type=float, default=10.0, help="each measured window")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caliper-limits-"))
    baseline = work / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline_rev],
        check=True,
        capture_output=True,
    )
    trees = {"baseline": baseline, "limits": REPO}
    scenarios = ["learn", "canvas"] if args.scenario == "all" else [args.scenario]
    try:
        print(f"ingest with and without the limits; baseline {args.baseline_rev}, work in {work}")
        for scenario in scenarios:
            ratios = []
            print(f"\n{scenario}: events/s (fraction of bare SQLite in the same run), p99")
            for round_number in range(args.rounds):
                order = ["baseline", "limits"] if round_number % 2 == 0 else ["limits", "baseline"]
                rates: dict[str, float] = {}
                for name in order:
                    database = f"sqlite:///{work / f'{scenario}-{name}-{round_number}.db'}"
                    rate, ceiling, p99 = figures(
                        run_ingest(
                            trees[name], scenario, database, work / "results", args.duration_s
                        )
                    )
                    rates[name] = rate
                    print(
                        f"  round {round_number + 1} {name:<8} {rate:9,.0f} "
                        f"({rate / ceiling:.3f} of {ceiling:,.0f})  p99 {p99:7.1f} ms"
                    )
                ratios.append(rates["limits"] / rates["baseline"])
                print(f"  round {round_number + 1} with limits / without: {ratios[-1]:.3f}")
            print(
                f"{scenario}: median ratio {statistics.median(ratios):.3f} "
                f"(range {min(ratios):.3f}-{max(ratios):.3f}); the target is at least 0.98"
            )
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)],
            check=False,
            capture_output=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
