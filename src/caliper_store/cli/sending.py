"""``caliper-store send``, ``replay`` and ``loadgen``: events into any Caliper endpoint.

Each builds a ``Sensor`` from its flags, runs one job of ``caliper_store.sensor`` and prints
what the store's receipts said. The exit code is 1 when anything was refused or undelivered.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
from tabulate import tabulate

from caliper_store.cli.common import F, echo_json, friendly_errors
from caliper_store.cli.main import main
from caliper_store.sensor import (
    SHAPES,
    Population,
    RetryPolicy,
    RunSummary,
    Sensor,
    SensorOptions,
    payload_files,
    replay_export,
    run_loadgen,
    send_files,
    shape_options,
    write_loadgen,
)

DATA_VERSION_CHOICES = ("1.0", "1.1", "1.2", "none")


def _target_options(command: F, *, is_required: bool = True) -> F:
    """Where to send and how: the flags every sending command shares."""
    options = [
        click.option(
            "--url",
            required=is_required,
            help="The Caliper endpoint, e.g. 'http://127.0.0.1:8080/caliper'.",
        ),
        click.option(
            "--key",
            required=is_required,
            envvar="CALIPER_STORE_SEND_KEY",
            help="The endpoint's API key ($CALIPER_STORE_SEND_KEY keeps it out of `ps`).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 64),
            default=4,
            show_default=True,
            help="Envelopes in flight at once.",
        ),
        click.option(
            "--batch-interval-ms",
            type=click.IntRange(0),
            default=200,
            show_default=True,
            help="Longest an event waits for its envelope to fill.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(0),
            default=8,
            show_default=True,
            help="Tries of one envelope on errors, 408, 429 and 5xx (0: for ever).",
        ),
        click.option(
            "--timeout-s",
            type=click.FloatRange(0.1),
            default=30.0,
            show_default=True,
            help="Timeout of one request.",
        ),
        click.option(
            "--queue",
            "queue_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Keep undelivered events in this SQLite file: a killed "
            "run, started again, resends them with the same ids.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar on stderr (default: when stderr is a terminal).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _options(flags: dict[str, Any], base: SensorOptions) -> SensorOptions:
    """The base options (sensor, version, batch size, key form) with the shared flags' values."""
    return dataclasses.replace(
        base,
        batch_interval_s=flags["batch_interval_ms"] / 1000,
        concurrency=flags["concurrency"],
        timeout_s=flags["timeout_s"],
        want_receipts=True,
        retry=RetryPolicy(max_attempts=flags["max_attempts"]),
    )


def _sensor(flags: dict[str, Any], options: SensorOptions) -> Sensor:
    return Sensor(flags["url"], flags["key"], options, queue=flags["queue_path"])


def _wants_progress(flags: dict[str, Any]) -> bool:
    chosen: bool | None = flags["progress"]
    return sys.stderr.isatty() if chosen is None else chosen


def _report(summary: RunSummary, *, as_json: bool) -> None:
    shown = summary.as_json()
    if as_json:
        echo_json(shown)
    else:
        click.echo(
            tabulate(
                [(name, value) for name, value in shown.items() if value is not None],
                tablefmt="plain",
            )
        )
    if not summary.is_complete:
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_target_options
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Most loose events in one envelope (envelopes in files go as they are).",
)
@click.option(
    "--sensor",
    "sensor_id",
    default="urn:caliper-store:send",
    show_default=True,
    help="The sensor of envelopes made for loose events.",
)
@click.option(
    "--data-version",
    type=click.Choice(DATA_VERSION_CHOICES),
    default="1.2",
    show_default=True,
    help="dataVersion of envelopes made for loose events (none: "
    "leave it out, as Caliper 1.0 senders do).",
)
@click.option("--bare-key", is_flag=True, help="Send the key without 'Bearer', as Moodle does.")
@friendly_errors
def send(paths: tuple[Path, ...], **flags: Any) -> None:
    """Send Caliper envelopes and events from files: JSON, NDJSON, folders, .gz.

    A JSON file holds an envelope, an event or a list of them; NDJSON one a line. Envelopes go
    as they are; loose events are batched into envelopes. Events keep the ids they have; those
    without one get theirs from the store, from their content, so sending twice stores once.
    """
    version = None if flags["data_version"] == "none" else flags["data_version"]
    options = _options(
        flags,
        SensorOptions(
            sensor_id=flags["sensor_id"],
            data_version=version,
            batch_events=flags["batch_size"],
            is_bare_key=flags["bare_key"],
        ),
    )
    files = payload_files(paths)
    total = sum(path.stat().st_size for path in files)
    with click.progressbar(
        length=total, label="sending", file=sys.stderr, hidden=not _wants_progress(flags)
    ) as bar:
        summary = send_files(files, _sensor(flags, options), bar.update)
    _report(summary, as_json=flags["as_json"])


@main.command()
@click.argument("export", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_target_options
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Most events in one envelope.",
)
@friendly_errors
def replay(export: Path, **flags: Any) -> None:
    """Re-send an NDJSON export (caliper-store export) to a Caliper endpoint.

    Each raw event goes byte for byte as stored, with its id, in an envelope of the sensor and
    Caliper version it came with, so the target stores each once and counts the rest as
    duplicates.
    """
    options = _options(
        flags, SensorOptions(sensor_id="urn:caliper-store:replay", batch_events=flags["batch_size"])
    )
    with click.progressbar(
        length=export.stat().st_size,
        label="replaying",
        file=sys.stderr,
        hidden=not _wants_progress(flags),
    ) as bar:
        summary = replay_export(export, options, lambda o: _sensor(flags, o), bar.update)
    _report(summary, as_json=flags["as_json"])


@main.command()
@click.option(
    "--shape",
    type=click.Choice(sorted(SHAPES)),
    required=True,
    help="Whose traffic: Learn's 100-event envelopes and nightly grades, Canvas's "
    "one event an envelope, Moodle's Caliper 1.0 without ids and with the bare key.",
)
@click.option("--courses", type=click.IntRange(1), default=20, show_default=True)
@click.option("--students", type=click.IntRange(1), default=500, show_default=True)
@click.option(
    "--days",
    type=click.IntRange(1),
    default=7,
    show_default=True,
    help="Days simulated, ending today (UTC) unless --first-day is given.",
)
@click.option("--first-day", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="The same seed makes the same events with the same ids.",
)
@click.option(
    "--rate",
    "rate_events_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="At most this many events a second (default: as fast as the store takes them).",
)
@click.option(
    "--output",
    type=click.File("wb"),
    default=None,
    help="Write the envelopes as NDJSON here ('-' for stdout) instead of sending.",
)
@functools.partial(_target_options, is_required=False)
@friendly_errors
def loadgen(**flags: Any) -> None:
    """Generate realistic Caliper traffic: a term of courses, students and their days.

    Students log in, visit their courses, navigate, view and submit; instructors grade. The
    events go as the chosen producer sends them. Without --url, --output writes them.
    """
    shape = SHAPES[flags["shape"]]
    first_day: date | None = flags["first_day"].date() if flags["first_day"] else None
    population = Population(
        courses=flags["courses"],
        students=flags["students"],
        days=flags["days"],
        first_day=first_day,
        seed=flags["seed"],
    )
    if flags["output"] is not None:
        written = write_loadgen(shape, population, flags["output"])
        click.echo(f"{written} events written", err=True)
        return
    if not flags["url"] or not flags["key"]:
        raise click.UsageError("give --url and --key to send, or --output to write")
    options = _options(flags, shape_options(shape))
    with click.progressbar(
        length=population.days, label="days", file=sys.stderr, hidden=not _wants_progress(flags)
    ) as bar:
        summary = run_loadgen(
            shape,
            population,
            _sensor(flags, options),
            rate_events_s=flags["rate_events_s"],
            on_day=bar.update,
        )
    _report(summary, as_json=flags["as_json"])
