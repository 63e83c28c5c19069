"""What every command shares: settings and store from the context, errors as one line, JSON out."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from caliper_store.config import (
    SETTING_FIELDS,
    Settings,
    resolve_settings,
)
from caliper_store.errors import CaliperStoreError
from caliper_store.storage import Store, open_store, utc_text

F = TypeVar("F", bound=Callable[..., Any])


def now_text() -> str:
    """Now, in the store's UTC text form."""
    return utc_text(datetime.now(UTC))


def friendly_errors(command: F) -> F:
    """Turn any CaliperStoreError into a one-line message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CaliperStoreError as error:
            raise click.ClickException(error.detail) from error

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature


def setting_options(command: F) -> F:
    """One ``--flag`` per setting, so flags, environment variables and docs cannot drift."""
    for name, setting in reversed(SETTING_FIELDS.items()):
        flag = "--database" if name == "database_url" else "--" + name.replace("_", "-")
        kind = {"int": int, "bool": bool}.get(str(setting.type), str)
        command = click.option(flag, name, type=kind, default=None, help=setting.metadata["help"])(
            command
        )
    return command


def settings_of(ctx: click.Context, **flags: object) -> Settings:
    """Settings from these flags, the environment and the ``--config`` file of the root group."""
    settings, _ = settings_and_sources_of(ctx, **flags)
    return settings


def settings_and_sources_of(ctx: click.Context, **flags: object) -> tuple[Settings, dict[str, str]]:
    """:func:`settings_of`, with where each setting came from (``config show``)."""
    config_path: Path | None = ctx.find_root().params.get("config")
    flags = {name: value for name, value in flags.items() if name in SETTING_FIELDS}
    return resolve_settings(flags, os.environ, config_path)


@contextmanager
def store_of(ctx: click.Context, database: str | None) -> Iterator[Store]:
    """The store of ``--database`` (or the settings), schema checked, closed afterwards."""
    with open_of(ctx, database) as (_, store):
        yield store


@contextmanager
def open_of(ctx: click.Context, database: str | None) -> Iterator[tuple[Settings, Store]]:
    """The settings and the store, for commands that need both; the store is closed after."""
    settings = settings_of(ctx, database_url=database)
    store = open_store(settings)
    try:
        store.require_current_schema(create_if_empty=True)
        yield settings, store
    finally:
        store.close()


database_option = click.option(
    "--database",
    default=None,
    help="Database URL (default: $CALIPER_STORE_DATABASE, else sqlite:///caliper.db).",
)


def echo_json(document: object) -> None:
    """Print indented JSON on stdout."""
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode("utf-8"))


@contextmanager
def progress_bar(length: int | None, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for ``length`` rows, or nothing when ``length`` is None."""
    if length is None:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
