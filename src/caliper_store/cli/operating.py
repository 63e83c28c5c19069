"""Commands for the people who run the store: ``config show`` and ``backup``."""

from __future__ import annotations

import time
from pathlib import Path

import click
from tabulate import tabulate

from caliper_store.cli.common import (
    database_option,
    echo_json,
    friendly_errors,
    setting_options,
    settings_and_sources_of,
    store_of,
)
from caliper_store.cli.main import main


@main.group("config")
def config_group() -> None:
    """The settings the store runs with."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@setting_options
@click.pass_context
@friendly_errors
def config_show(ctx: click.Context, /, as_json: bool, **flags: object) -> None:
    """Every setting's effective value and where it came from; secrets masked.

    Give the same flags, environment and --config file as `serve` to see what it will use.
    """
    settings, sources = settings_and_sources_of(ctx, **flags)
    shown = settings.redacted()
    if as_json:
        echo_json({name: {"value": shown[name], "source": sources[name]} for name in shown})
        return
    click.echo(
        tabulate(
            [(name, shown[name], sources[name]) for name in shown],
            headers=["setting", "value", "source"],
        )
    )


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@database_option
@click.pass_context
@friendly_errors
def backup(ctx: click.Context, path: Path, database: str | None) -> None:
    """Copy an SQLite store to PATH while it serves (SQLite's online backup).

    The copy holds every event committed before it began, is checked with PRAGMA
    quick_check, and never overwrites a file. For PostgreSQL use pg_dump or a base backup
    (docs/operations.md).
    """
    started = time.monotonic()
    with store_of(ctx, database) as store:
        copied = store.backup_to(path)
    click.echo(f"backed up {copied:,} bytes to {path} in {time.monotonic() - started:.1f} s")
