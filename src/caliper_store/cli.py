"""The ``caliper-store`` command: serve, migrate, keys, stats and quarantine."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from caliper_store.config import (
    SETTING_FIELDS,
    Settings,
    export_to_environment,
    settings_from_environment,
)
from caliper_store.errors import CaliperStoreError
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
    settings = _settings(ctx, database_url=database)
    store = open_store(settings)
    store.require_current_schema(create_if_empty=True)
    return store


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
    "--json", "as_json", is_flag=True, help="Machine-readable output, raw items included."
)
@database_option
@click.pass_context
@_friendly_errors
def quarantine_list(
    ctx: click.Context, limit: int, reason: str | None, as_json: bool, database: str | None
) -> None:
    """List quarantined items with their reasons."""
    store = _store(ctx, database)
    try:
        items = store.list_quarantine(limit=limit, reason=reason)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": item.id,
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
            f"{item.id:>6}  {item.received_at[:19]}  key {item.api_key_id}  "
            f"receipt {item.receipt_id}[{item.item_index}]  {codes}  {item.event_id or ''}"
        )


if __name__ == "__main__":
    sys.exit(main())
