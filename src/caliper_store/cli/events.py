"""``caliper-store events`` and ``export``: search and export stored events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from caliper_store.cli.common import (
    F,
    database_option,
    echo_json,
    friendly_errors,
    open_of,
    progress_bar,
)
from caliper_store.cli.main import main
from caliper_store.query import (
    EXPORT_FORMATS,
    FILTER_FIELDS,
    ExportOptions,
    QueryLimits,
    build_filter,
    event_json,
    export_partitioned,
    export_to_stream,
    parse_event_query,
    parse_format,
    search_page,
)


def _filter_options(command: F) -> F:
    """One ``--flag`` per event filter, from the table the HTTP API reads too."""
    for spec in reversed(FILTER_FIELDS):
        command = click.option(spec.flag, spec.name, multiple=spec.is_multiple, help=spec.help)(
            command
        )
    return command


def _filter_params(flags: dict[str, Any]) -> dict[str, list[str]]:
    """The filter flags keyed by HTTP parameter name, as the query layer reads them."""
    params: dict[str, list[str]] = {}
    for spec in FILTER_FIELDS:
        value = flags.get(spec.name)
        values = list(value or ()) if spec.is_multiple else ([value] if value else [])
        if values:
            params[spec.param] = [str(one) for one in values]
    return params


@main.command()
@_filter_options
@click.option("--limit", type=int, default=None, help="Events per page (default_page_events).")
@click.option("--cursor", default=None, help="Continue after the page that printed this cursor.")
@click.option(
    "--order",
    type=click.Choice(["desc", "asc", "received"]),
    default="desc",
    show_default=True,
    help="By event time, newest or oldest first; or by received time (incremental pulls).",
)
@click.option("--raw", is_flag=True, help="Include each raw event as sent (JSON output).")
@click.option("--json", "as_json", is_flag=True, help="JSON output: the page as the API gives it.")
@database_option
@click.pass_context
@friendly_errors
def events(
    ctx: click.Context,
    /,
    limit: int | None,
    cursor: str | None,
    order: str,
    raw: bool,
    as_json: bool,
    database: str | None,
    **filters: Any,
) -> None:
    """Search stored events: the filters of GET /api/events, as a table or JSON."""
    params = _filter_params(filters)
    params.update(order=[order], raw=["true" if raw else "false"])
    if limit is not None:
        params["limit"] = [str(limit)]
    if cursor:
        params["cursor"] = [cursor]
    with open_of(ctx, database) as (settings, store):
        page = search_page(store, parse_event_query(params, QueryLimits.from_settings(settings)))
    if as_json:
        echo_json({"events": [event_json(r) for r in page.events], "next_cursor": page.next_cursor})
        return
    for record in page.events:
        click.echo(
            f"{record.event_time[:23]}  {record.event_type:<20}  {record.action:<14}  "
            f"{record.actor_id}  {record.object_id}"
        )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@main.command()
@_filter_options
@click.option(
    "--format",
    "export_format",
    type=click.Choice(EXPORT_FORMATS),
    default="ndjson",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (default stdout); with --partition-by, a new folder.",
)
@click.option(
    "--partition-by",
    type=click.Choice(["day"]),
    default=None,
    help="Write dt=YYYY-MM-DD/part-NNNNN files by UTC day of eventTime (DuckDB, Spark, Trino).",
)
@click.option("--raw/--no-raw", default=True, show_default=True, help="Include the raw event.")
@click.option(
    "--order",
    type=click.Choice(["asc", "received"]),
    default="asc",
    show_default=True,
    help="By event time, or by received time (incremental pulls with --received-since).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: when stderr is a terminal).",
)
@database_option
@click.pass_context
@friendly_errors
def export(
    ctx: click.Context,
    /,
    export_format: str,
    output: Path | None,
    partition_by: str | None,
    raw: bool,
    order: str,
    progress: bool | None,
    database: str | None,
    **filters: Any,
) -> None:
    """Export matching events, oldest first, as NDJSON, CSV or Parquet, streamed."""
    if partition_by and output is None:
        raise click.UsageError("--partition-by needs --output FOLDER")
    with open_of(ctx, database) as (settings, store):
        event_filter = build_filter(_filter_params(filters), max_values=settings.max_filter_values)
        options = ExportOptions.from_settings(
            settings,
            parse_format(export_format),
            with_raw=raw,
            by="received_at" if order == "received" else "event_time",
        )
        shown = sys.stderr.isatty() if progress is None else progress
        length = store.events.count(event_filter.conditions) if shown else None
        with progress_bar(length, "exporting") as on_progress:
            if partition_by and output is not None:
                summary = export_partitioned(store, event_filter, options, output, on_progress)
                click.echo(f"{summary.events} events in {len(summary.files)} files", err=True)
            elif output is None or str(output) == "-":
                total = export_to_stream(
                    store, event_filter, options, sys.stdout.buffer, on_progress
                )
                click.echo(f"{total} events", err=True)
            else:
                with output.open("wb") as sink:
                    total = export_to_stream(store, event_filter, options, sink, on_progress)
                click.echo(f"{total} events to {output}", err=True)
