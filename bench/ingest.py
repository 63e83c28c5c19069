"""Benchmark of `POST /caliper` over real HTTP, each figure beside a ceiling measured in one run.

    python bench/ingest.py --database sqlite:////tmp/bench/caliper.db [--scenario learn|canvas|all]
                           [--duration-s 10] [--connections 64] [--workers N]

Per scenario: the bare database ceiling(s), the bare HTTP ceiling (trivial Starlette server, same
load generator, same bodies), then `caliper-store serve` under load, then a count of the rows in
`events` read straight from the database against the events acknowledged. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    # Run as `python bench/ingest.py`: import the helpers as the `bench` package mypy sees.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import ceilings, dbtarget, load, serverproc, workload

HOST = "127.0.0.1"
PATH = "/caliper"
_MIB = 1024.0
# More CPU than this used by other processes during a window makes its figures suspect.
BUSY_MACHINE_CORES = 0.25


@dataclass(frozen=True)
class Target:
    """A goal from ARCHITECTURE.md section 6."""

    events_per_s: float
    p99_ms: float | None = None


TARGETS = {
    ("learn", "sqlite"): Target(15_000),
    ("learn", "postgresql"): Target(20_000),
    ("canvas", "sqlite"): Target(5_000, p99_ms=50.0),
    ("canvas", "postgresql"): Target(5_000, p99_ms=50.0),
}
DESCRIPTIONS = {
    "learn": "Learn-style envelopes of 100 events",
    "canvas": "Canvas-style one-event envelopes",
}


@dataclass
class ScenarioReport:
    """Everything measured for one scenario."""

    scenario: str
    backend: str
    mean_event_bytes: float
    config: load.LoadConfig
    db_ceilings: list[ceilings.DbCeiling]
    http: load.LoadResult
    http_usage: serverproc.TreeUsage
    product: load.LoadResult
    product_usage: serverproc.TreeUsage
    exit_code: int
    has_died_under_load: bool
    count_before: int
    count_after: int

    @property
    def new_rows(self) -> int:
        return self.count_after - self.count_before

    @property
    def is_count_ok(self) -> bool:
        return self.new_rows == self.product.acked_events_total

    @property
    def is_server_ok(self) -> bool:
        return serverproc.is_clean_exit(self.exit_code) and not self.has_died_under_load


def main() -> int:
    args = _parse_args()
    target = dbtarget.parse_database_url(args.database)
    names = list(workload.SCENARIOS) if args.scenario == "all" else [args.scenario]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(args.results_dir) / f"ingest-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"caliper-store ingest benchmark, {target.label} at {target.url}")
    print(f"logs and JSON results: {run_dir}")
    if not args.server_cmd:
        # A database left by an older build must reach this build's schema before `serve`.
        _run_cli(["migrate", "--database", target.url], run_dir / "migrate.log")
    api_key = args.api_key or _create_api_key(target.url, run_dir)
    ids = workload.IdSource()
    reports = []
    for name in names:
        try:
            report = _run_scenario(name, args, target, api_key, ids, run_dir)
        except serverproc.ServerError as error:
            print(f"\n!!! {error}")
            return 2
        reports.append(report)
        _print_report(report)
    ok = _print_summary(reports)
    out = run_dir / "ingest.json"
    out.write_bytes(orjson.dumps([_to_json(r) for r in reports], option=orjson.OPT_INDENT_2))
    print(f"\nresults written to {out}")
    return 0 if ok else 1


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load POST /caliper over HTTP and print each figure beside its ceiling."
    )
    parser.add_argument(
        "--database", required=True, help="sqlite:////abs/path.db or postgresql://user@host/db"
    )
    parser.add_argument("--scenario", choices=[*workload.SCENARIOS, "all"], default="all")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="excluded from figures")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=None, help="passed to `caliper-store serve --workers`"
    )
    parser.add_argument(
        "--ceiling-s",
        type=float,
        default=5.0,
        help="database time spent on each bare database ceiling",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="use this key instead of running `caliper-store keys create`",
    )
    parser.add_argument(
        "--server-cmd",
        default=None,
        help="serve command template instead of `caliper-store serve ...`; placeholders"
        " {host} {port} {database}",
    )
    parser.add_argument("--results-dir", default=str(Path(__file__).with_name("results")))
    return parser.parse_args()


def _run_cli(arguments: list[str], log_path: Path) -> str:
    """Run one `caliper-store` subcommand; return its stdout, exit loudly if it fails."""
    argv = [*serverproc.product_command(), *arguments]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"`{shlex.join(argv)}` failed (exit {done.returncode}):\n{done.stderr}")
    return done.stdout


def _create_api_key(database_url: str, run_dir: Path) -> str:
    arguments = ["keys", "create", "--label", "bench", "--database", database_url]
    stdout = _run_cli(arguments, run_dir / "keys-create.log")
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1:
        raise SystemExit(f"`keys create` printed {len(lines)} lines; expected the key alone")
    return lines[0]


def _server_argv(args: argparse.Namespace, target: dbtarget.DatabaseTarget, port: int) -> list[str]:
    if args.server_cmd:
        return [
            part.format(host=HOST, port=port, database=target.url)
            for part in shlex.split(args.server_cmd)
        ]
    argv = [
        *serverproc.product_command(),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--database",
        target.url,
    ]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    return argv


def _run_scenario(
    name: str,
    args: argparse.Namespace,
    target: dbtarget.DatabaseTarget,
    api_key: str,
    ids: workload.IdSource,
    run_dir: Path,
) -> ScenarioReport:
    scenario = workload.build_scenario(name)
    source = workload.EnvelopeSource(scenario, ids)
    print(f"\n[{name}] {DESCRIPTIONS[name]}, ~{scenario.mean_event_bytes:,.0f} bytes an event")

    single = scenario.events_per_envelope == 1
    db_ceilings = ceilings.database_ceilings(
        target, source, duration_s=args.ceiling_s, with_single_row=single
    )
    for ceiling in db_ceilings:
        print(f"  {ceiling.label}: {ceiling.rate:,.0f} {ceiling.unit}", flush=True)

    config = load.LoadConfig(
        HOST, serverproc.free_port(), PATH, args.connections, args.warmup_s, args.duration_s
    )
    factory = load.make_request_factory(source, HOST, config.port, PATH, api_key)
    http, http_usage = ceilings.http_ceiling(config, factory, run_dir)
    print(f"  bare HTTP (trivial Starlette): {http.requests_per_s:,.0f} req/s", flush=True)

    count_before = dbtarget.count_events(target)
    config = dataclasses.replace(config, port=serverproc.free_port())
    factory = load.make_request_factory(source, HOST, config.port, PATH, api_key)
    server = serverproc.ServerProcess(
        "caliper-store",
        _server_argv(args, target, config.port),
        run_dir / f"caliper-store-{name}.log",
        HOST,
        config.port,
    )
    outcome = serverproc.drive(server, config, factory)
    if not serverproc.is_clean_exit(outcome.exit_code) or outcome.has_died_under_load:
        print(
            f"  !!! caliper-store exited with {outcome.exit_code}"
            f"{' while under load' if outcome.has_died_under_load else ''}\n{server.log_tail()}"
        )
    print(f"  caliper-store: {outcome.result.events_per_s:,.0f} events/s", flush=True)
    return ScenarioReport(
        name,
        target.backend,
        scenario.mean_event_bytes,
        config,
        db_ceilings,
        http,
        http_usage,
        outcome.result,
        outcome.usage,
        outcome.exit_code,
        outcome.has_died_under_load,
        count_before,
        dbtarget.count_events(target),
    )


def _fraction(value: float, ceiling: float) -> str:
    return f"{value / ceiling:.3f}" if ceiling else "n/a"


def _times(value: float, reference: float) -> str:
    ratio = value / reference if reference else math.nan
    return "-" if math.isnan(ratio) else f"{ratio:.1f}x"


def _latencies(result: load.LoadResult) -> str:
    values = (result.latency_ms(q) for q in (0.5, 0.99, 1.0))
    return " / ".join("-" if math.isnan(v) else f"{v:.1f}" for v in values)


def _mib(kib: int) -> str:
    return f"{kib / _MIB:,.1f} MiB"


def _other_cores(result: load.LoadResult, usage: serverproc.TreeUsage) -> float:
    """CPU used by neither the server nor the load generator while the window was open."""
    others = usage.window_machine_busy_s - usage.window_cpu_s - result.client_cpu_s
    return max(0.0, others / result.window_s) if result.window_s else 0.0


def _cpu(result: load.LoadResult, usage: serverproc.TreeUsage) -> str:
    server = usage.window_cpu_s / result.window_s if result.window_s else 0.0
    return (
        f"server {server:.2f}, load {result.client_cores:.2f},"
        f" other {_other_cores(result, usage):.2f}"
    )


def _print_report(r: ScenarioReport) -> None:
    target = TARGETS[(r.scenario, r.backend)]
    p, h = r.product, r.http
    batched = r.db_ceilings[0]
    rows: list[tuple[str, str, str, str, str]] = []
    verdict = "PASS" if p.events_per_s >= target.events_per_s else "MISS"
    rows.append(
        (
            "events/s acknowledged",
            f"{p.events_per_s:,.0f}",
            f"{batched.rate:,.0f} {batched.unit}, {batched.label}",
            _fraction(p.events_per_s, batched.rate),
            f">= {target.events_per_s:,.0f} "
            f"({target.events_per_s / batched.rate:.3f} of it) {verdict}"
            if batched.rate
            else "",
        )
    )
    for extra in r.db_ceilings[1:]:
        rows.append(
            (
                "",
                "",
                f"{extra.rate:,.0f} {extra.unit}, {extra.label}",
                _fraction(p.events_per_s, extra.rate),
                "",
            )
        )
    rows.append(
        (
            "requests/s (200)",
            f"{p.requests_per_s:,.0f}",
            f"{h.requests_per_s:,.0f} req/s, bare HTTP (trivial Starlette)",
            _fraction(p.requests_per_s, h.requests_per_s),
            "",
        )
    )
    p99_goal = ""
    if target.p99_ms is not None:
        p99_ok = p.latency_ms(0.99) < target.p99_ms
        p99_goal = f"p99 < {target.p99_ms:.0f} ms {'PASS' if p99_ok else 'MISS'}"
    rows.append(
        (
            "latency p50/p99/max ms",
            _latencies(p),
            f"{_latencies(h)}, bare HTTP",
            f"p99 {_times(p.latency_ms(0.99), h.latency_ms(0.99))}",
            p99_goal,
        )
    )
    rows.append(("non-200 responses", p.non_200(), f"{h.non_200()}, bare HTTP", "", ""))
    rows.append(
        (
            "server peak RSS",
            _mib(r.product_usage.peak_rss_kib),
            f"{_mib(r.http_usage.peak_rss_kib)}, trivial server",
            _times(r.product_usage.peak_rss_kib, r.http_usage.peak_rss_kib),
            "",
        )
    )
    rows.append(
        (
            "CPU in window (cores)",
            _cpu(p, r.product_usage),
            f"{_cpu(h, r.http_usage)}, bare HTTP",
            "",
            "",
        )
    )
    cfg = r.config
    print(
        f"\n== {r.scenario}: {DESCRIPTIONS[r.scenario]} (~{r.mean_event_bytes:,.0f} B an event),"
        f" {cfg.connections} connections, {cfg.duration_s:g} s measured after"
        f" {cfg.warmup_s:g} s warm-up, {r.backend}"
    )
    header = ("figure", "caliper-store", "ceiling measured in this run", "fraction", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    for label, result, usage in (
        ("caliper-store", p, r.product_usage),
        ("bare HTTP", h, r.http_usage),
    ):
        if _other_cores(result, usage) > BUSY_MACHINE_CORES:
            print(
                f"  !!! other processes used {_other_cores(result, usage):.2f} cores during the"
                f" {label} window: its figures are disturbed, rerun on a quiet machine"
            )
    print(
        f"  server processes: {r.product_usage.processes}; sum of VmHWM"
        f" {_mib(r.product_usage.hwm_sum_kib)}; exit code after SIGTERM {r.exit_code}"
    )
    print(
        f"  stored: SELECT count(*) FROM events grew by {r.new_rows:,}"
        f" ({r.count_before:,} -> {r.count_after:,}); acknowledged with 200 (warm-up and"
        f" drain included): {p.acked_events_total:,}"
    )
    if r.is_count_ok:
        print("  count check: OK, every acknowledged event is stored and nothing else")
        return
    print("  " + "!" * 78)
    print(
        f"  !!! COUNT MISMATCH: {r.new_rows:,} rows stored vs {p.acked_events_total:,}"
        f" acknowledged ({r.new_rows - p.acked_events_total:+,})"
    )
    if p.ambiguous_events:
        print(
            f"  !!! {p.ambiguous_events:,} events were in requests whose outcome is unknown"
            f" ({p.non_200()}); they may explain a surplus, never a shortfall"
        )
    print("  " + "!" * 78)


def _print_summary(reports: list[ScenarioReport]) -> bool:
    print("\n== summary")
    ok = True
    for r in reports:
        target = TARGETS[(r.scenario, r.backend)]
        p = r.product
        parts = [
            f"{p.events_per_s:,.0f} events/s (target {target.events_per_s:,.0f}:"
            f" {'PASS' if p.events_per_s >= target.events_per_s else 'MISS'})"
        ]
        if target.p99_ms is not None:
            p99 = p.latency_ms(0.99)
            parts.append(
                f"p99 {p99:.1f} ms (target < {target.p99_ms:.0f}:"
                f" {'PASS' if p99 < target.p99_ms else 'MISS'})"
            )
        parts.append("count OK" if r.is_count_ok else "COUNT MISMATCH")
        if not r.is_server_ok:
            parts.append(f"SERVER EXIT {r.exit_code}")
        ok = ok and r.is_count_ok and r.is_server_ok
        print(f"  {r.scenario:7} " + ", ".join(parts))
    return ok


def _to_json(r: ScenarioReport) -> dict[str, Any]:
    def figures(result: load.LoadResult, usage: serverproc.TreeUsage) -> dict[str, Any]:
        return {
            "events_per_s": result.events_per_s,
            "requests_per_s": result.requests_per_s,
            "latency_ms": {
                q: result.latency_ms(v) for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
            },
            "non_200": {str(k): v for k, v in result.total_statuses.items()},
            "errors": dict(result.errors),
            "acked_events_total": result.acked_events_total,
            "sent_requests_total": result.sent_requests_total,
            "ambiguous_events": result.ambiguous_events,
            "load_generator_cores": result.client_cores,
            "server_cores": usage.window_cpu_s / result.window_s,
            "other_cores": _other_cores(result, usage),
            "server_peak_rss_kib": usage.peak_rss_kib,
            "server_hwm_sum_kib": usage.hwm_sum_kib,
            "server_processes": usage.processes,
        }

    return {
        "scenario": r.scenario,
        "backend": r.backend,
        "at": datetime.now(UTC).isoformat(),
        "unix_time": time.time(),
        "config": dataclasses.asdict(r.config),
        "mean_event_bytes": r.mean_event_bytes,
        "db_ceilings": [
            {"label": c.label, "unit": c.unit, "rate": c.rate, "rows": c.rows, "seconds": c.seconds}
            for c in r.db_ceilings
        ],
        "bare_http": figures(r.http, r.http_usage),
        "caliper_store": figures(r.product, r.product_usage),
        "count_before": r.count_before,
        "count_after": r.count_after,
        "is_count_ok": r.is_count_ok,
        "exit_code": r.exit_code,
        "target": dataclasses.asdict(TARGETS[(r.scenario, r.backend)]),
    }


if __name__ == "__main__":
    sys.exit(main())
