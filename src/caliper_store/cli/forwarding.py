"""``caliper-store forward``: destinations that get every stored event, and the relay itself."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from tabulate import tabulate

from caliper_store.cli.common import database_option, echo_json, friendly_errors, open_of
from caliper_store.cli.main import main
from caliper_store.forward import (
    DEFAULT_BATCH_EVENTS,
    Relay,
    add_destination,
    destination_statuses,
    relay_options,
    replay_dead_letters,
)


def _split(values: str | None) -> list[str]:
    return [value.strip() for value in (values or "").split(",") if value.strip()]


@main.group()
def forward() -> None:
    """Forward every stored event that matches to other stores and to ClickHouse."""


@forward.command("add")
@click.argument("name")
@click.option(
    "--url",
    required=True,
    help="'https://store.example.edu/caliper', 'clickhouse://user:pass@host:8123/db' or "
    "'chdb:///path'.",
)
@click.option("--key", default=None, help="The API key the destination gave this store (HTTP).")
@click.option("--types", default=None, help="Only these event types, comma-separated.")
@click.option("--keys", default=None, help="Only events sent with these keys (labels or ids).")
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_EVENTS, show_default=True)
@click.option(
    "--from-start",
    is_flag=True,
    help="Deliver every event already stored too (default: from now on).",
)
@database_option
@click.pass_context
@friendly_errors
def add(ctx: click.Context, /, name: str, **flags: Any) -> None:
    """Add a destination; a running server starts delivering to it within a few seconds."""
    with open_of(ctx, flags["database"]) as (_, store):
        destination = add_destination(
            store,
            name=name,
            url=flags["url"],
            api_key=flags["key"],
            event_types=_split(flags["types"]),
            keys=_split(flags["keys"]),
            batch_events=flags["batch_size"],
            is_from_start=flags["from_start"],
        )
    since = "the start" if flags["from_start"] else "now on"
    click.echo(f"destination {destination.name!r} added; it gets the events stored from {since}")


@forward.command("list")
@click.option("--json", "as_json", is_flag=True)
@database_option
@click.pass_context
@friendly_errors
def list_destinations(ctx: click.Context, /, as_json: bool, database: str | None) -> None:
    """List the destinations: where, which events, paused or not, how far behind."""
    _show(
        ctx,
        database,
        as_json=as_json,
        columns=("name", "url", "types", "keys", "paused", "delivered", "lagEvents"),
    )


@forward.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@database_option
@click.pass_context
@friendly_errors
def status(ctx: click.Context, /, name: str | None, as_json: bool, database: str | None) -> None:
    """Each destination's lag in events and seconds, dead letters and last error."""
    _show(
        ctx,
        database,
        as_json=as_json,
        only=name,
        columns=(
            "name",
            "paused",
            "delivered",
            "lagEvents",
            "lagSeconds",
            "deadLetters",
            "lastDeliveredAt",
            "lastError",
        ),
    )


def _show(
    ctx: click.Context,
    database: str | None,
    *,
    as_json: bool,
    columns: tuple[str, ...],
    only: str | None = None,
) -> None:
    with open_of(ctx, database) as (_, store):
        if only is not None:
            store.forwarding.get(only)  # NotFound names it
        shown = [
            s.as_json() for s in destination_statuses(store) if only in (None, s.destination.name)
        ]
    if as_json:
        echo_json(shown)
        return
    rows = [[row[column] for column in columns] for row in shown]
    click.echo(
        tabulate(rows, headers=list(columns), tablefmt="simple") if rows else "no destinations"
    )


@forward.command()
@click.argument("name")
@database_option
@click.pass_context
@friendly_errors
def pause(ctx: click.Context, /, name: str, database: str | None) -> None:
    """Stop delivering to a destination; its cursor waits where it is."""
    with open_of(ctx, database) as (_, store):
        store.forwarding.set_paused(name, is_paused=True)
    click.echo(f"{name!r} paused")


@forward.command()
@click.argument("name")
@database_option
@click.pass_context
@friendly_errors
def resume(ctx: click.Context, /, name: str, database: str | None) -> None:
    """Deliver to a paused destination again, from where it stopped."""
    with open_of(ctx, database) as (_, store):
        store.forwarding.set_paused(name, is_paused=False)
    click.echo(f"{name!r} resumed")


@forward.command()
@click.argument("name")
@database_option
@click.pass_context
@friendly_errors
def remove(ctx: click.Context, /, name: str, database: str | None) -> None:
    """Forget a destination, its cursor and its dead letters."""
    with open_of(ctx, database) as (_, store):
        store.forwarding.remove(name)
    click.echo(f"{name!r} removed")


@forward.command("dead-letters")
@click.argument("name")
@click.option("--all", "with_replayed", is_flag=True, help="Those replayed since, too.")
@click.option("--json", "as_json", is_flag=True)
@database_option
@click.pass_context
@friendly_errors
def dead_letters(
    ctx: click.Context, /, name: str, with_replayed: bool, as_json: bool, database: str | None
) -> None:
    """The events a destination refused for good, with its answers."""
    with open_of(ctx, database) as (_, store):
        letters = store.forwarding.dead_letters(name, with_replayed=with_replayed)
    rows = [
        {
            "id": letter.id,
            "seq": letter.seq,
            "eventId": letter.event_id,
            "status": letter.status,
            "answer": letter.answer,
            "failedAt": letter.failed_at,
            "replayedAt": letter.replayed_at,
        }
        for letter in letters
    ]
    if as_json:
        echo_json(rows)
    else:
        click.echo(tabulate(rows, headers="keys", tablefmt="simple") if rows else "no dead letters")


@forward.command("replay")
@click.argument("name")
@database_option
@click.pass_context
@friendly_errors
def replay_dead(ctx: click.Context, /, name: str, database: str | None) -> None:
    """Send a destination's dead letters again (after it was fixed); exit 1 if any fail."""
    with open_of(ctx, database) as (settings, store):
        result = replay_dead_letters(store, name, settings)
    click.echo(f"{result.delivered} delivered, {result.refused} refused again, {result.gone} gone")
    if result.refused:
        raise click.exceptions.Exit(1)


@forward.command()
@database_option
@click.pass_context
@friendly_errors
def run(ctx: click.Context, /, database: str | None) -> None:
    """Forward in the foreground until SIGINT or SIGTERM (set forward_in_serve=false)."""
    with open_of(ctx, database) as (settings, store):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        click.echo("forwarding; stop with Ctrl-C", err=True)
        Relay(store.forwarding, relay_options(settings)).run(stop)
