"""What a change costs at ingest: this tree against a baseline revision, in alternating runs.

    python bench/limits.py [--baseline-rev 67d4983] [--scenario learn|canvas|all] [--rounds 3]

Written for the limits of issue 16 (which no setting switches off), and used since for any
change of the write path: the baseline is a git worktree of ``--baseline-rev``, which makes its
own schema and key (the two trees may be at other schema revisions). Each round runs
bench/ingest.py once against a server from each tree, in alternating order (A B, then B A), on
a new SQLite file, then prints each rate beside the bare SQLite ceiling measured in the same
run, and the ratio of this tree's rate to the baseline's. Run it on a quiet machine; rates move
15-20% between runs, so read the median ratio, not one pair.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson

REPO = Path(__file__).resolve().parent.parent
RESULTS_LINE = re.compile(r"logs and JSON results: (\S+)")


@dataclass(frozen=True, slots=True)
class Window:
    """How long each bench/ingest.py run measures, warms up, and times each bare ceiling.

    The defaults are bench/ingest.py's; a smoke run shortens all three.
    """

    duration_s: float = 10.0
    warmup_s: float = 2.0
    ceiling_s: float = 5.0

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """``--duration-s``, ``--warmup-s`` and ``--ceiling-s``, with these defaults."""
        default = Window()
        parser.add_argument(
            "--duration-s", type=float, default=default.duration_s, help="each measured window"
        )
        parser.add_argument(
            "--warmup-s", type=float, default=default.warmup_s, help="each run's warm-up"
        )
        parser.add_argument(
            "--ceiling-s", type=float, default=default.ceiling_s, help="each bare ceiling"
        )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> Window:
        return cls(args.duration_s, args.warmup_s, args.ceiling_s)

    def options(self) -> list[str]:
        """The same as bench/ingest.py's options."""
        return [
            "--duration-s",
            str(self.duration_s),
            "--warmup-s",
            str(self.warmup_s),
            "--ceiling-s",
            str(self.ceiling_s),
        ]


def run_ingest(
    tree: Path,
    scenario: str,
    database: str,
    results: Path,
    window: Window,
    serve_options: Sequence[str] = (),
    before_load: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """One bench/ingest.py run against a server importing caliper_store from ``tree`` (started
    with ``serve_options`` too); ``before_load`` gets the database URL once it has its schema."""
    serve = shlex.join(
        [
            "env",
            f"PYTHONPATH={tree / 'src'}",
            sys.executable,
            "-m",
            "caliper_store",
            "serve",
            *serve_options,
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
        *window.options(),
        "--server-cmd",
        serve + " --host {host} --port {port} --database {database}",
    ]
    # The schema and the key come from the tree under test: the two may be at other revisions.
    tree_cli = ["env", f"PYTHONPATH={tree / 'src'}", sys.executable, "-m", "caliper_store"]
    subprocess.run([*tree_cli, "migrate", "--database", database], check=True, capture_output=True)
    created = subprocess.run(
        [*tree_cli, "keys", "create", "--label", "bench", "--database", database],
        check=True,
        capture_output=True,
        text=True,
    )
    command += ["--api-key", created.stdout.strip()]
    if before_load is not None:
        before_load(database)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = RESULTS_LINE.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"bench/ingest.py failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    (report,) = orjson.loads((Path(found.group(1)) / "ingest.json").read_bytes())
    assert isinstance(report, dict)
    if not report["is_count_ok"]:
        raise SystemExit(f"acknowledged events missing from {database}: see {found.group(1)}")
    return report


def alternating_round(
    runs: Mapping[str, tuple[Path, Sequence[str]]],
    scenario: str,
    number: int,
    work: Path,
    window: Window,
    postgres_admin_url: str | None,
) -> dict[str, float]:
    """Round ``number`` of alternating runs: one of each (tree, serve options) on a new database,
    in turn, the order reversed every other round; events/s by name, each printed beside the
    bare ceiling of its run."""
    order = list(runs) if number % 2 == 0 else list(reversed(list(runs)))
    width = max(len(name) for name in runs)
    rates: dict[str, float] = {}
    for name in order:
        run_name = f"{scenario}-{name.replace(' ', '-')}-{number}"
        database = (
            f"sqlite:///{work / run_name}.db"
            if postgres_admin_url is None
            else new_database(postgres_admin_url, run_name)
        )
        tree, options = runs[name]
        rate, ceiling, p99 = figures(
            run_ingest(tree, scenario, database, work / "results", window, options)
        )
        rates[name] = rate
        print(
            f"  round {number + 1} {name:<{width}} {rate:9,.0f} "
            f"({rate / ceiling:.3f} of {ceiling:,.0f})  p99 {p99:7.1f} ms"
        )
    return rates


def new_database(admin_url: str, run_name: str) -> str:
    """A new, empty PostgreSQL database for one run; its URL."""
    import psycopg

    name = "limits_" + run_name.replace("-", "_")
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)  # keeps ?host=/socket/dir&port=... that a plain split would cut
    return urlunsplit(parts._replace(path="/" + name))


def figures(report: dict[str, object]) -> tuple[float, float, float]:
    """Events/s of the server, the best bare database ceiling of that run, and the p99 in ms."""
    product = report["caliper_store"]
    assert isinstance(product, dict)
    ceilings = report["db_ceilings"]
    assert isinstance(ceilings, list)
    ceiling = max(float(c["rate"]) for c in ceilings if c["unit"] == "events/s")
    p99 = product["latency_ms"]["p99"]
    if p99 is None:
        raise SystemExit("no request finished in the measured window: lengthen --duration-s")
    return float(product["events_per_s"]), ceiling, float(p99)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="67d4983", help="the code before the limits")
    parser.add_argument("--scenario", choices=["learn", "canvas", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    Window.add_arguments(parser)
    parser.add_argument("--target", type=float, default=0.98, help="the ratio the change must keep")
    parser.add_argument(
        "--postgres-admin-url",
        default=None,
        help="run on PostgreSQL: each run gets a new database made through this URL",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caliper-limits-"))
    baseline = work / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(baseline), args.baseline_rev],
        check=True,
        capture_output=True,
    )
    trees = {"baseline": baseline, "this tree": REPO}
    scenarios = ["learn", "canvas"] if args.scenario == "all" else [args.scenario]
    try:
        print(f"ingest, this tree against baseline {args.baseline_rev}; work in {work}")
        for scenario in scenarios:
            ratios = []
            print(f"\n{scenario}: events/s (fraction of bare SQLite in the same run), p99")
            for round_number in range(args.rounds):
                rates = alternating_round(
                    {name: (tree, ()) for name, tree in trees.items()},
                    scenario,
                    round_number,
                    work,
                    Window.from_arguments(args),
                    args.postgres_admin_url,
                )
                ratios.append(rates["this tree"] / rates["baseline"])
                print(f"  round {round_number + 1} this tree / baseline: {ratios[-1]:.3f}")
            print(
                f"{scenario}: median ratio {statistics.median(ratios):.3f} "
                f"(range {min(ratios):.3f}-{max(ratios):.3f}); the target is at least {args.target}"
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
