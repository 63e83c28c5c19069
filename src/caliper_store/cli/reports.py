"""``caliper-store report NAME``: a report as a table, JSON or CSV, by the code the API runs."""

from __future__ import annotations

import sys

import click

from caliper_store.cli.common import F, database_option, friendly_errors, open_of
from caliper_store.cli.main import main
from caliper_store.forward import ClickHouseSource
from caliper_store.reports import (
    MAX_SHOWN_DIFFERENCES,
    REPORT_PARAMS,
    REPORTS,
    report_csv,
    report_table,
    run_report,
    run_report_on,
    verify_rollups,
)


def _report_options(command: F) -> F:
    """One ``--flag`` per report parameter, from the table the HTTP API reads too."""
    for spec in reversed(REPORT_PARAMS):
        command = click.option(spec.flag, spec.name, default=None, help=spec.help)(command)
    return command


def _help() -> str:
    lines = ["Print a report: a table, or --json (as the API answers), or --csv.", ""]
    lines.append("\b")
    for spec in REPORTS:
        taken = ", ".join(spec.params) or "none"
        lines.append(f"{spec.name}: {spec.help} Parameters: {taken}.")
    return "\n".join(lines)


@main.command(help=_help())
@click.argument("name", type=click.Choice([spec.name for spec in REPORTS]))
@_report_options
@click.option("--json", "as_json", is_flag=True, help="The report as GET /api/reports answers.")
@click.option("--csv", "as_csv", is_flag=True, help="The rows as CSV (what format=csv gives).")
@click.option(
    "--source",
    default=None,
    help="Compute from a ClickHouse destination instead of the store: 'chdb:///path' or "
    "'clickhouse://user:pass@host:8123/db' (student-activity and courses; key labels are "
    "read from the store).",
)
@database_option
@click.pass_context
@friendly_errors
def report(
    ctx: click.Context,
    /,
    name: str,
    as_json: bool,
    as_csv: bool,
    source: str | None,
    database: str | None,
    **params: str | None,
) -> None:
    """Print a report (help text built by ``_help``)."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    values = {key: [value] for key, value in params.items() if value is not None}
    with open_of(ctx, database) as (settings, store):
        if source is None:
            found = run_report(store, name, values, settings, by_param=False)
        else:
            labels = {key.id: key.label for key in store.keys.list()}
            events = ClickHouseSource.connect(source, labels)
            try:
                found = run_report_on(events, name, values, settings, by_param=False)
            finally:
                events.close()
    if as_json:
        click.echo(found.to_json_bytes().decode("utf-8"))
    elif as_csv:
        click.echo(report_csv(found), nl=False)
    else:
        click.echo(report_table(found))
        click.echo(f"{len(found.rows)} rows; as of {found.as_of or 'no events'}", err=True)


@main.group()
def reports() -> None:
    """The rollups behind the reports: check them against the stored events."""


@reports.command()
@database_option
@click.pass_context
@friendly_errors
def verify(ctx: click.Context, database: str | None) -> None:
    """Recount every rollup from the stored events and print each difference (exit 1 if any).

    Reads every event once, in one snapshot (no time limit); the server may run meanwhile.
    """
    with open_of(ctx, database) as (_, store):
        total = store.events.count([])
        with click.progressbar(
            length=total, label="recounting from the events", file=sys.stderr
        ) as progress:
            differences = verify_rollups(store, progress.update)
    shown: dict[str, int] = {}
    for difference in differences:
        shown[difference.table] = shown.get(difference.table, 0) + 1
        if shown[difference.table] <= MAX_SHOWN_DIFFERENCES:
            click.echo(str(difference))
    for table, count in shown.items():
        if count > MAX_SHOWN_DIFFERENCES:
            click.echo(f"{table}: {count - MAX_SHOWN_DIFFERENCES} more differences")
    if differences:
        raise click.ClickException(f"{len(differences)} differences between rollups and events")
    click.echo(f"the rollups agree with all {total} events")
