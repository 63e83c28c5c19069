"""The ``caliper-store`` group and its server commands: serve, migrate, stats."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from caliper_store.cli.common import (
    database_option,
    friendly_errors,
    setting_options,
    settings_of,
    store_of,
)
from caliper_store.config import (
    export_to_environment,
    with_session_secret,
)
from caliper_store.observability import configure_logging
from caliper_store.privacy import load_privacy
from caliper_store.reports import fill_group_names
from caliper_store.storage import (
    DEFAULT_BATCH_EVENTS,
    Store,
    convert_plain_raw,
    open_store,
    plan_conversion,
    storage_usage,
)


@click.group()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A TOML settings file ($CALIPER_STORE_CONFIG).",
)
@click.version_option(package_name="caliper_store")
def main(config: Path | None) -> None:
    """An IMS Caliper event store: receive, keep and query learning events."""
    configure_logging("info", "auto")  # `serve` sets the level and format of its settings
    # Migration steps are reported by `migrate` itself; alembic's INFO lines are noise.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A line per request sent would drown send's progress bar and summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@main.command()
@setting_options
@click.pass_context
@friendly_errors
def serve(ctx: click.Context, /, **flags: object) -> None:
    """Run the HTTP server (ingest, health) until interrupted."""
    import uvicorn

    from caliper_store.web import create_app, serving_metrics
    from caliper_store.web.server import bounded_http_protocol

    settings = with_session_secret(settings_of(ctx, **flags))
    configure_logging(settings.log_level, settings.log_format)
    # Fail before binding the port when the database cannot be used.
    store = open_store(settings)
    try:
        store.require_current_schema(create_if_empty=True)
    finally:
        store.close()
    # A broken rules file, or one that pseudonymizes without a secret, stops the start here.
    load_privacy(settings)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # httptools, with caps on header size and count and deadlines on reading a request.
        "http": bounded_http_protocol(settings),
        "loop": "uvloop",
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # Used only by the h11 protocol; set so a change of protocol keeps the header cap.
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        # Access logs would hold client addresses: personal data stays out of logs.
        "access_log": False,
        "log_level": settings.log_level.lower(),
        # Our handler (JSON or text, with request ids), not uvicorn's own.
        "log_config": None,
        # SIGTERM: stop accepting, answer what was read (after its commit), then exit.
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
    }
    with serving_metrics(settings):
        if settings.workers > 1:
            export_to_environment(settings)
            uvicorn.run(
                "caliper_store.web:app_from_environment",
                factory=True,
                workers=settings.workers,
                **common,
            )
        else:
            uvicorn.run(create_app(settings), **common)


@main.command()
@database_option
@click.option(
    "--batch-events",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_EVENTS,
    show_default=True,
    help="Events converted in one transaction.",
)
@click.option(
    "--vacuum/--no-vacuum",
    default=True,
    show_default=True,
    help="When done, VACUUM the rows it rewrote: give the space of converted rows back to the "
    "file system; on PostgreSQL, make that of the rows revision 0011 keyed reusable.",
)
@click.pass_context
@friendly_errors
def migrate(ctx: click.Context, database: str | None, batch_events: int, vacuum: bool) -> None:
    """Bring the schema to the current version, then convert stored events to its layout.

    The conversion (raw JSON compressed with a trained dictionary) runs in batches, each its
    own transaction: stop it at any moment and run it again to go on where it stopped. The
    server can run meanwhile.
    """
    settings = settings_of(ctx, database_url=database)
    store = open_store(settings)
    try:
        _, revision = store.schema_state()
        store.migrate(progress=_progress_bar)
        after, head = store.schema_state()
        click.echo(f"schema: {revision or 'empty'} -> {head} ({after.value})")
        if revision is not None and revision < FIRST_ROLLUP_REVISION:
            # The rollups revision 0007 filled get their courses' names (from raw JSON).
            _fill_from_raw_events(
                store,
                "naming courses in the report rollups",
                lambda progress: fill_group_names(store, progress),
                "named {} courses",
            )
        if revision is not None and revision < FIRST_LOGINS_REVISION:
            _fill_from_raw_events(
                store,
                "keeping the logins of stored events",
                store.fill_actor_logins,
                "kept {} logins",
            )
        if (
            vacuum
            and store.backend == "postgresql"
            and revision is not None
            and revision < FIRST_SESSION_KEY_REVISION
        ):
            # 0011 wrote a new version of every row with a session: the old ones are dead.
            began = time.monotonic()
            store.reclaim_space()
            click.echo(f"rows rewritten by 0011 vacuumed in {time.monotonic() - began:.1f} s")
        plan = plan_conversion(store)
        if plan.plain_events == 0:
            return
        started = time.monotonic()
        done = 0
        with _bar(
            f"compressing raw events (dictionary {plan.dictionary_id})", plan.plain_events
        ) as update:
            for converted in convert_plain_raw(store, plan, batch_events=batch_events):
                update(converted)
                done += converted
        click.echo(f"converted {done} events in {time.monotonic() - started:.1f} s")
        if vacuum:
            began = time.monotonic()
            store.reclaim_space()
            click.echo(f"space reclaimed (VACUUM) in {time.monotonic() - began:.1f} s")
    finally:
        store.close()


# The revision that added the report rollups: a store migrated past it gets its courses named.
FIRST_ROLLUP_REVISION = "0007"
# The revision that added actor_logins: a store migrated past it gets the logins of its events.
FIRST_LOGINS_REVISION = "0009"
# The revision that keyed the events' sessions (on PostgreSQL an UPDATE of every such row).
FIRST_SESSION_KEY_REVISION = "0011"


@contextmanager
def _progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar on standard error for a long step of a schema revision, then its time.

    Nothing for a step with nothing to do (a new, empty database).
    """
    if not total:
        yield lambda done: None
        return
    started = time.monotonic()
    with _bar(label, total) as update:
        yield update
    click.echo(f"{label}: {total:,} events in {time.monotonic() - started:.1f} s")


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar over ``total`` events on standard error, with their count and the time left."""
    with click.progressbar(
        length=total, label=label, show_eta=True, show_pos=True, file=sys.stderr
    ) as progress:
        yield progress.update


def _fill_from_raw_events(
    store: Store, label: str, fill: Callable[[Callable[[int], None]], int], done: str
) -> None:
    """Run a fill that reads every stored event's raw JSON, with a progress bar over them.

    ``done`` says what was filled, with ``{}`` for how many.
    """
    started = time.monotonic()
    with click.progressbar(
        length=store.events.count([]), label=label, show_eta=True, file=sys.stderr
    ) as progress:
        filled = fill(progress.update)
    click.echo(f"{done.format(filled)} in {time.monotonic() - started:.1f} s")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--storage",
    "with_storage",
    is_flag=True,
    help="Also bytes on disk per event (table and indexes), compression ratio, dictionaries. "
    "Reads every page: seconds on a large store.",
)
@database_option
@click.pass_context
@friendly_errors
def stats(ctx: click.Context, as_json: bool, with_storage: bool, database: str | None) -> None:
    """What is stored: events by type and action, quarantine by reason, per key."""
    with store_of(ctx, database) as store:
        figures = store.stats()
        if with_storage:
            figures["storage"] = storage_usage(store)
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(
        f"events {figures['events']}  entities {figures['entities']}  "
        f"duplicates {figures['duplicates']}  dropped {figures['dropped']}  "
        f"quarantined {figures['quarantined']}  "
        f"receipts {figures['receipts']}"
    )
    if figures["by_type"]:
        click.echo("\nevents by type and action")
        for row in figures["by_type"]:
            click.echo(f"  {row['events']:>10}  {row['type']}  {row['action']}")
    if figures["quarantine_by_reason"]:
        click.echo("\nquarantine by reason")
        for row in figures["quarantine_by_reason"]:
            click.echo(f"  {row['items']:>10}  {row['reason']}")
    if figures["by_key"]:
        click.echo("\nper key")
        for row in figures["by_key"]:
            click.echo(
                f"  {row['key_id']:>4}  {row['prefix']}…  events {row['events']}  "
                f"duplicates {row['duplicates']}  quarantined {row['quarantined']}  {row['label']}"
            )
    if with_storage:
        _echo_storage(figures["storage"])


def _echo_storage(usage: dict[str, Any]) -> None:
    per_event = usage["per_event"]
    click.echo(
        f"\nstorage ({usage['backend']}): {usage['database_bytes']:,} bytes, "
        f"{per_event['everything']} per event (events table {per_event['events_table']}, "
        f"their indexes {per_event['event_indexes']}"
        + (
            f", event_ids {per_event['event_ids_table']}"
            if per_event["event_ids_table"] is not None
            else ""
        )
        + f"); write-ahead log {usage['wal_bytes']:,} bytes"
    )
    for relation in usage["relations"]:
        if relation["bytes"]:
            click.echo(
                f"  {relation['bytes']:>14,}  {relation['per_event'] or '':>8}  "
                f"{relation['kind']:<5}  {relation['name']}"
            )
    compression = usage["compression"]
    if compression["ratio"] is not None:
        click.echo(
            f"\nraw events: {compression['ratio']:.1%} of their size on the newest "
            f"{compression['sampled_events']:,} ({compression['raw_bytes']:,} bytes to "
            f"{compression['stored_bytes']:,})"
        )
    if compression["plain_events"]:
        click.echo(
            f"{compression['plain_events']:,} events still plain: run `caliper-store migrate`"
        )
    click.echo("\ndictionaries")
    for dictionary in usage["dictionaries"]:
        trained = dictionary["trained_ratio"]
        click.echo(
            f"  {dictionary['id']:>4}  {dictionary['events']:>12,} events  "
            + (
                f"{dictionary['bytes']:,} bytes, {trained:.1%} on its samples, "
                f"{dictionary['created_at']}"
                if trained is not None
                else "(zstd without a dictionary)"
            )
        )
