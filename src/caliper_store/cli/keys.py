"""``caliper-store keys``: create, list, activate, deactivate and revoke API keys."""

from __future__ import annotations

import json

import click

from caliper_store.cli.common import (
    database_option,
    friendly_errors,
    now_text,
    store_of,
)
from caliper_store.cli.main import main
from caliper_store.storage import ApiKey


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
@friendly_errors
def keys_create(
    ctx: click.Context, label: str, scopes: tuple[str, ...], strict: bool, database: str | None
) -> None:
    """Generate a key; it is printed once, on stdout, and only its hash is kept."""
    with store_of(ctx, database) as store:
        key, record = store.keys.create(
            label=label, now=now_text(), scopes=scopes, is_strict=strict
        )
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
@friendly_errors
def keys_list(ctx: click.Context, as_json: bool, database: str | None) -> None:
    """List keys: id, prefix, status, scopes, created, last used, label."""
    with store_of(ctx, database) as store:
        found = store.keys.list()
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
    @friendly_errors
    def change(ctx: click.Context, key: str, database: str | None) -> None:
        with store_of(ctx, database) as store:
            record = store.keys.resolve(key)
            updated = store.keys.set_status(record.id, status, now=now_text())  # type: ignore[arg-type]
        click.echo(_key_line(updated))


_status_command("activate", "active", "Accept events from KEY (id, prefix or label) again.")
_status_command("deactivate", "inactive", "Refuse events from KEY (id, prefix or label) for now.")
_status_command("revoke", "revoked", "Refuse KEY (id, prefix or label) for good.")
