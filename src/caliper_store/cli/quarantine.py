"""``caliper-store quarantine``: list, show, replay and discard held items."""

from __future__ import annotations

import json

import click

from caliper_store.cli.common import (
    database_option,
    echo_json,
    friendly_errors,
    now_text,
    open_of,
    store_of,
)
from caliper_store.cli.main import main
from caliper_store.ingest import IngestLimits, replay_items
from caliper_store.privacy import load_privacy, take_into_use
from caliper_store.query import (
    build_quarantine_filter,
    discard_items,
    show_item,
)
from caliper_store.storage import Store


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
@friendly_errors
def quarantine_list(
    ctx: click.Context,
    limit: int,
    reason: str | None,
    status: str,
    as_json: bool,
    database: str | None,
) -> None:
    """List quarantined items with their reasons."""
    with store_of(ctx, database) as store:
        selection = build_quarantine_filter({"status": [status], "reason": [reason or ""]})
        items = store.quarantine.page(selection, before_id=None, limit=limit)
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


@quarantine.command("show")
@click.argument("item_id", type=int)
@database_option
@click.pass_context
@friendly_errors
def quarantine_show(ctx: click.Context, item_id: int, database: str | None) -> None:
    """Show one item as JSON: raw as sent, reasons, receipt and audit trail."""
    with store_of(ctx, database) as store:
        shown = show_item(store, item_id)
    echo_json(shown)


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
@friendly_errors
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
    with open_of(ctx, database) as (settings, store):
        ids = _selected_ids(store, item_ids, reasons, key_ids)
        privacy = take_into_use(load_privacy(settings), store, now_text())
        outcomes = replay_items(
            store,
            ids,
            limits=IngestLimits.from_settings(settings).items,
            actor=actor,
            now=now_text(),
            rules=privacy.rules,
        )
    if as_json:
        echo_json([outcome.as_json() for outcome in outcomes])
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
@friendly_errors
def quarantine_discard(
    ctx: click.Context,
    item_ids: tuple[int, ...],
    note: str | None,
    actor: str,
    database: str | None,
) -> None:
    """Give up on held items for good; each keeps an audit row (who, when, why)."""
    with store_of(ctx, database) as store:
        discarded = discard_items(store, list(item_ids), actor=actor, at=now_text(), note=note)
    skipped = sorted(set(item_ids) - set(discarded))
    click.echo(f"discarded {len(discarded)} items" + (f"; not held: {skipped}" if skipped else ""))
