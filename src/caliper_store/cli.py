"""The ``caliper-store`` command: serve, migrate, keys, stats and quarantine."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from caliper_store.config import (
    SETTING_FIELDS,
    Settings,
    export_to_environment,
    settings_from_environment,
)
from caliper_store.errors import CaliperStoreError
from caliper_store.ingest import IngestLimits, replay_items
from caliper_store.query import (
    EXPORT_FORMATS,
    FILTER_FIELDS,
    ExportOptions,
    QueryLimits,
    build_filter,
    build_quarantine_filter,
    discard_items,
    event_json,
    export_partitioned,
    export_to_stream,
    parse_event_query,
    parse_format,
    search_page,
    show_item,
)
from caliper_store.storage import ApiKey, Store, open_store, utc_text

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("caliper_store")


def _now() -> str:
    return utc_text(datetime.now(UTC))


def _friendly_errors(command: F) -> F:
    """Turn any CaliperStoreError into a one-line message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CaliperStoreError as error:
            raise click.ClickException(error.detail) from error

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def _settings(ctx: click.Context, **flags: object) -> Settings:
    config_path: Path | None = ctx.find_root().params.get("config")
    flags = {name: value for name, value in flags.items() if name in SETTING_FIELDS}
    return settings_from_environment(flags, config_path)


def _store(ctx: click.Context, database: str | None) -> Store:
    return _open(ctx, database)[1]


def _open(ctx: click.Context, database: str | None) -> tuple[Settings, Store]:
    settings = _settings(ctx, database_url=database)
    store = open_store(settings)
    store.require_current_schema(create_if_empty=True)
    return settings, store


database_option = click.option(
    "--database",
    default=None,
    help="Database URL (default: $CALIPER_STORE_DATABASE, else sqlite:///caliper.db).",
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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Migration steps are reported by `migrate` itself; alembic's INFO lines are noise.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _setting_options(command: F) -> F:
    """One ``--flag`` per setting, so flags, environment variables and docs cannot drift."""
    for name, setting in reversed(SETTING_FIELDS.items()):
        flag = "--database" if name == "database_url" else "--" + name.replace("_", "-")
        kind = {"int": int, "bool": bool}.get(str(setting.type), str)
        command = click.option(flag, name, type=kind, default=None, help=setting.metadata["help"])(
            command
        )
    return command


@main.command()
@_setting_options
@click.pass_context
@_friendly_errors
def serve(ctx: click.Context, /, **flags: object) -> None:
    """Run the HTTP server (ingest, health) until interrupted."""
    import uvicorn

    from caliper_store.web import create_app

    settings = _settings(ctx, **flags)
    logging.getLogger().setLevel(settings.log_level.upper())
    # Fail before binding the port when the database cannot be used.
    store = open_store(settings)
    try:
        store.require_current_schema(create_if_empty=True)
    finally:
        store.close()
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": "httptools",
        "loop": "uvloop",
        # Access logs would hold client addresses: personal data stays out of logs.
        "access_log": False,
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 30,
    }
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
@click.pass_context
@_friendly_errors
def migrate(ctx: click.Context, database: str | None) -> None:
    """Bring the database schema to the current version."""
    settings = _settings(ctx, database_url=database)
    store = open_store(settings)
    try:
        _, revision = store.schema_state()
        store.migrate()
        after, head = store.schema_state()
    finally:
        store.close()
    click.echo(f"schema: {revision or 'empty'} -> {head} ({after.value})")


@main.group()
def keys() -> None:
    """Create and manage the API keys that producers send events with."""


def _key_line(key: ApiKey) -> str:
    return (
        f"{key.id:>4}  {key.prefix}…  {key.status:<8}  {'strict' if key.is_strict else '      '}  "
        f"{' '.join(key.scopes):<18}  created {key.created_at[:19]}  "
        f"last used {(key.last_used_at or 'never')[:19]:<19}  {key.label}"
    )


@keys.command("create")
@click.option("--label", required=True, help='Who sends with this key, e.g. "Blackboard Learn".')
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["ingest", "read", "admin"]),
    default=("ingest",),
    show_default=True,
    help="What the key may do; repeat for several.",
)
@click.option("--strict", is_flag=True, help="Reject a whole envelope when any item is invalid.")
@database_option
@click.pass_context
@_friendly_errors
def keys_create(
    ctx: click.Context, label: str, scopes: tuple[str, ...], strict: bool, database: str | None
) -> None:
    """Generate a key; it is printed once, on stdout, and only its hash is kept."""
    store = _store(ctx, database)
    try:
        key, record = store.keys.create(label=label, now=_now(), scopes=scopes, is_strict=strict)
    finally:
        store.close()
    click.echo(key)
    click.echo(
        f"created key {record.id} ({record.prefix}…) for {label!r}; store it now, "
        "it cannot be shown again",
        err=True,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@database_option
@click.pass_context
@_friendly_errors
def keys_list(ctx: click.Context, as_json: bool, database: str | None) -> None:
    """List keys: id, prefix, status, scopes, created, last used, label."""
    store = _store(ctx, database)
    try:
        found = store.keys.list()
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": key.id,
                        "prefix": key.prefix,
                        "label": key.label,
                        "status": key.status,
                        "scopes": list(key.scopes),
                        "strict": key.is_strict,
                        "created_at": key.created_at,
                        "last_used_at": key.last_used_at,
                    }
                    for key in found
                ],
                indent=2,
            )
        )
        return
    for key in found:
        click.echo(_key_line(key))


def _status_command(name: str, status: str, help_text: str) -> None:
    @keys.command(name, help=help_text)
    @click.argument("key")
    @database_option
    @click.pass_context
    @_friendly_errors
    def change(ctx: click.Context, key: str, database: str | None) -> None:
        store = _store(ctx, database)
        try:
            record = store.keys.resolve(key)
            updated = store.keys.set_status(record.id, status, now=_now())  # type: ignore[arg-type]
        finally:
            store.close()
        click.echo(_key_line(updated))


_status_command("activate", "active", "Accept events from KEY (id, prefix or label) again.")
_status_command("deactivate", "inactive", "Refuse events from KEY (id, prefix or label) for now.")
_status_command("revoke", "revoked", "Refuse KEY (id, prefix or label) for good.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@database_option
@click.pass_context
@_friendly_errors
def stats(ctx: click.Context, as_json: bool, database: str | None) -> None:
    """What is stored: events by type and action, quarantine by reason, per key."""
    store = _store(ctx, database)
    try:
        figures = store.stats()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    click.echo(
        f"events {figures['events']}  entities {figures['entities']}  "
        f"duplicates {figures['duplicates']}  quarantined {figures['quarantined']}  "
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


@main.group()
def quarantine() -> None:
    """Items that could not be stored as events, kept with their reasons."""


@quarantine.command("list")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@click.option("--reason", default=None, help="Only items with this reason code.")
@click.option(
    "--status",
    type=click.Choice(["held", "replayed", "discarded", "any"]),
    default="held",
    show_default=True,
    help="Items waiting for a decision, or those already replayed or discarded.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output, raw items included."
)
@database_option
@click.pass_context
@_friendly_errors
def quarantine_list(
    ctx: click.Context,
    limit: int,
    reason: str | None,
    status: str,
    as_json: bool,
    database: str | None,
) -> None:
    """List quarantined items with their reasons."""
    store = _store(ctx, database)
    try:
        selection = build_quarantine_filter({"status": [status], "reason": [reason or ""]})
        items = store.quarantine.page(selection, before_id=None, limit=limit)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": item.id,
                        "status": item.status,
                        "receipt": item.receipt_id,
                        "key_id": item.api_key_id,
                        "index": item.item_index,
                        "event_id": item.event_id,
                        "version": item.caliper_version,
                        "reasons": item.reasons,
                        "received_at": item.received_at,
                        "raw": json.loads(item.raw),
                    }
                    for item in items
                ],
                indent=2,
            )
        )
        return
    for item in items:
        codes = ", ".join(reason["code"] for reason in item.reasons)
        click.echo(
            f"{item.id:>6}  {item.received_at[:19]}  {item.status:<9}  key {item.api_key_id}  "
            f"receipt {item.receipt_id}[{item.item_index}]  {codes}  {item.event_id or ''}"
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


def _echo_json(document: object) -> None:
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode("utf-8"))


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
@_friendly_errors
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
    settings, store = _open(ctx, database)
    params = _filter_params(filters)
    params.update(order=[order], raw=["true" if raw else "false"])
    if limit is not None:
        params["limit"] = [str(limit)]
    if cursor:
        params["cursor"] = [cursor]
    try:
        page = search_page(store, parse_event_query(params, QueryLimits.from_settings(settings)))
    finally:
        store.close()
    if as_json:
        _echo_json(
            {"events": [event_json(r) for r in page.events], "next_cursor": page.next_cursor}
        )
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
@_friendly_errors
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
    settings, store = _open(ctx, database)
    try:
        event_filter = build_filter(_filter_params(filters), max_values=settings.max_filter_values)
        options = ExportOptions.from_settings(
            settings,
            parse_format(export_format),
            with_raw=raw,
            by="received_at" if order == "received" else "event_time",
        )
        shown = sys.stderr.isatty() if progress is None else progress
        length = store.events.count(event_filter.conditions) if shown else None
        with _progress_bar(length) as on_progress:
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
    finally:
        store.close()


@contextlib.contextmanager
def _progress_bar(length: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for ``length`` events, or nothing when ``length`` is None."""
    if length is None:
        yield None
        return
    with click.progressbar(length=length, label="exporting", file=sys.stderr) as bar:
        yield bar.update


@quarantine.command("show")
@click.argument("item_id", type=int)
@database_option
@click.pass_context
@_friendly_errors
def quarantine_show(ctx: click.Context, item_id: int, database: str | None) -> None:
    """Show one item as JSON: raw as sent, reasons, receipt and audit trail."""
    store = _store(ctx, database)
    try:
        shown = show_item(store, item_id)
    finally:
        store.close()
    _echo_json(shown)


def _selected_ids(
    store: Store, ids: tuple[int, ...], reasons: tuple[str, ...], key_ids: tuple[int, ...]
) -> list[int]:
    if ids:
        return list(ids)
    if not reasons and not key_ids:
        raise click.UsageError("give item ids, or --reason / --key-id to pick held items")
    params = {"reason": list(reasons), "keyId": [str(key) for key in key_ids]}
    return store.quarantine.ids(build_quarantine_filter(params))


@quarantine.command("replay")
@click.argument("item_ids", type=int, nargs=-1)
@click.option("--reason", "reasons", multiple=True, help="Every held item with this reason code.")
@click.option("--key-id", "key_ids", type=int, multiple=True, help="Every held item of this key.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who replays (audit row).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@database_option
@click.pass_context
@_friendly_errors
def quarantine_replay(
    ctx: click.Context,
    item_ids: tuple[int, ...],
    reasons: tuple[str, ...],
    key_ids: tuple[int, ...],
    actor: str,
    as_json: bool,
    database: str | None,
) -> None:
    """Run today's ingest rules on held items; those that pass now become events."""
    settings, store = _open(ctx, database)
    try:
        ids = _selected_ids(store, item_ids, reasons, key_ids)
        outcomes = replay_items(
            store,
            ids,
            limits=IngestLimits.from_settings(settings).items,
            actor=actor,
            now=_now(),
        )
    finally:
        store.close()
    if as_json:
        _echo_json([outcome.as_json() for outcome in outcomes])
        return
    for outcome in outcomes:
        codes = ", ".join(reason["code"] for reason in outcome.reasons)
        click.echo(
            f"{outcome.quarantine_id:>6}  {outcome.result:<16}  {outcome.event_id or ''}  {codes}"
        )
    moved = sum(1 for outcome in outcomes if outcome.has_left_quarantine)
    click.echo(f"{moved} of {len(outcomes)} items left quarantine", err=True)


@quarantine.command("discard")
@click.argument("item_ids", type=int, nargs=-1, required=True)
@click.option("--note", default=None, help="Why, for the audit trail.")
@click.option("--by", "actor", default="cli", show_default=True, help="Who discards (audit row).")
@database_option
@click.pass_context
@_friendly_errors
def quarantine_discard(
    ctx: click.Context,
    item_ids: tuple[int, ...],
    note: str | None,
    actor: str,
    database: str | None,
) -> None:
    """Give up on held items for good; each keeps an audit row (who, when, why)."""
    store = _store(ctx, database)
    try:
        discarded = discard_items(store, list(item_ids), actor=actor, at=_now(), note=note)
    finally:
        store.close()
    skipped = sorted(set(item_ids) - set(discarded))
    click.echo(f"discarded {len(discarded)} items" + (f"; not held: {skipped}" if skipped else ""))


if __name__ == "__main__":
    sys.exit(main())
