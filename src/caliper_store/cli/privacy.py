"""Privacy commands: ``rules check|test``, ``purge``, ``person export|erase``, ``audit``."""

from __future__ import annotations

import copy
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson
from tabulate import tabulate

from caliper_store.cli.common import (
    database_option,
    echo_json,
    friendly_errors,
    now_text,
    open_of,
    progress_bar,
    settings_of,
    store_of,
)
from caliper_store.cli.main import main
from caliper_store.errors import ConfigurationError
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.privacy import (
    Change,
    PersonTraces,
    Pseudonymizer,
    RetentionPolicy,
    RuleBook,
    RulesError,
    erase_person,
    export_lines,
    find_person,
    load_privacy,
    load_pseudonymizer,
    load_rules,
    plan_purge,
    purge,
    recommended_rules,
)
from caliper_store.storage import (
    AUDIT_ACTIONS,
    ApiKey,
    DroppedRow,
    EntityRow,
    EventRow,
    operator,
)


@main.group()
def rules() -> None:
    """Check an ingest rules file, or see what it does to a payload."""


@rules.command("example")
def rules_example() -> None:
    """Print the recommended rules file, a start for a GDPR-minded campus."""
    click.echo(recommended_rules(), nl=False)


@rules.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def rules_check(ctx: click.Context, path: Path) -> None:
    """Check a rules file: each error with its line and rule; exit 1 if there is any."""
    settings = settings_of(ctx)
    secret = _secret_or_none(settings.pseudonym_key_file, settings.pseudonym_key)
    book = _rules_or_exit(path, secret or Pseudonymizer(b"check-only-not-a-real-secret"))
    click.echo(f"{path}: {len(book.rules)} rules, version {book.digest[:12]}")
    if book.needs_pseudonyms and secret is None:
        click.echo(
            "note: it pseudonymizes; the server will need pseudonym_key_file "
            "(CALIPER_STORE_PSEUDONYM_KEY_FILE) to start",
            err=True,
        )


def _rules_or_exit(path: Path, secret: Pseudonymizer) -> RuleBook:
    """The rules file; else each problem on stderr (``file:line N, rule M: ...``), exit 1."""
    try:
        return load_rules(str(path), secret)
    except RulesError as error:
        for problem in error.problems:
            click.echo(f"{path}:{problem}", err=True)
        raise SystemExit(1) from error
    except ConfigurationError as error:
        raise click.ClickException(error.detail) from error


def _secret_or_none(key_file: str, key: str) -> Pseudonymizer | None:
    try:
        return load_pseudonymizer(key_file, key)
    except ConfigurationError as error:
        raise click.ClickException(error.detail) from error


@rules.command("test")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_name",
    default=None,
    help="Apply the rules as for this key (label, or id as digits); default: a key no rule names.",
)
@click.pass_context
@friendly_errors
def rules_test(ctx: click.Context, path: Path, payload: Path, key_name: str | None) -> None:
    """Show what the rules do to each item of PAYLOAD (an envelope or events), stored nothing."""
    settings = settings_of(ctx)
    secret = _secret_or_none(settings.pseudonym_key_file, settings.pseudonym_key)
    if secret is None:
        secret = Pseudonymizer(b"rules-test-throwaway-secret")
        click.echo(
            "note: no pseudonym secret is set; pseudonyms below are under a throwaway one",
            err=True,
        )
    book = _rules_or_exit(path, secret)
    key = _test_key(key_name)
    body = payload.read_bytes()
    limits = IngestLimits.from_settings(settings)
    received_at = now_text()
    before = prepare_request(body, key=key, limits=limits, received_at=received_at)
    key_rules = book.for_key(key)
    changes: list[list[Change]] = []
    for item, row in zip(before.envelope.items, before.request.items, strict=True):
        noted: list[Change] = []
        if key_rules is not None and isinstance(item, dict) and not isinstance(row, DroppedRow):
            key_rules.transform(copy.deepcopy(item), row.raw, noted)
        changes.append(noted)
    after = prepare_request(body, key=key, limits=limits, received_at=received_at, rules=book)
    shown = []
    for row, noted in zip(after.request.items, changes, strict=True):
        if isinstance(row, DroppedRow):
            verdict, result = f"dropped by rule {row.rule}", None
        elif isinstance(row, EventRow):
            verdict, result = "stored", orjson.loads(row.raw)
        elif isinstance(row, EntityRow):
            verdict, result = "stored as an entity", orjson.loads(row.raw)
        else:
            reasons = ", ".join(reason.code for reason in row.reasons)
            verdict, result = f"quarantined ({reasons})", orjson.loads(row.raw)
        shown.append(
            {
                "index": row.index,
                "verdict": verdict,
                "changes": [change._asdict() for change in noted],
                "result": result,
            }
        )
    echo_json({"rules": str(path), "version": book.digest, "key": key.label, "items": shown})


def _test_key(name: str | None) -> ApiKey:
    label = name or ""
    key_id = int(name) if name is not None and name.isdigit() else 0
    return ApiKey(key_id, "", label, ("ingest",), "active", False, now_text(), None, "")


@main.command("purge")
@click.option("--yes", is_flag=True, help="Remove what the policy expires; without it, only show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@database_option
@click.pass_context
@friendly_errors
def purge_command(ctx: click.Context, yes: bool, as_json: bool, database: str | None) -> None:
    """Apply the retention settings: show what expires (by month and key); remove it with --yes."""
    with open_of(ctx, database) as (settings, store):
        policy = RetentionPolicy.from_settings(settings)
        if not policy.is_set:
            raise click.ClickException(
                "no retention is set: set retention_events_days, retention_quarantine_days or "
                "retention_receipts_days (0 keeps forever)"
            )
        now = datetime.now(UTC)
        expired = plan_purge(store, policy, now)
        labels = {key.id: key.label for key in store.keys.list()}
        if not yes:
            rows = [
                {
                    "kind": row.kind,
                    "month": row.month,
                    "key": labels.get(row.api_key_id, str(row.api_key_id)),
                    "rows": row.rows,
                }
                for row in expired
            ]
            if as_json:
                echo_json(
                    {"dryRun": True, "cutoffs": policy.cutoffs(now)._asdict(), "expired": rows}
                )
                return
            if rows:
                click.echo(tabulate(rows, headers="keys", tablefmt="simple"))
            total = sum(row.rows for row in expired)
            click.echo(f"\n{total:,} rows would be removed; nothing was: add --yes to remove them")
            return
        length = sum(row.rows for row in expired if row.kind == "events")
        shown = sys.stderr.isatty() and not as_json
        with progress_bar(length if shown else None, "purging") as on_events:
            result = purge(
                store,
                policy,
                now,
                batch_events=settings.purge_batch_events,
                batch_ms=settings.purge_batch_ms,
                actor=operator(),
                on_events=on_events,
            )
    if as_json:
        echo_json(result.as_json())
        return
    click.echo(
        f"removed {result.events:,} events, {result.quarantine:,} quarantined items, "
        f"{result.receipts:,} receipts and {result.login_pairs:,} logins no longer seen"
        + (f"; dropped {', '.join(result.partitions_dropped)}" if result.partitions_dropped else "")
    )


@main.group()
def person() -> None:
    """A person's rights: export or erase everything the store holds about them."""


def _found(traces: PersonTraces) -> None:
    """Say which ids were used and what was found (on stderr: stdout may be JSON)."""
    click.echo(
        f"found by {', '.join(sorted(traces.ids))}: {len(traces.event_seqs)} events, "
        f"{len(traces.quarantine_ids)} quarantined items, {len(traces.entity_seqs)} entities, "
        f"{len(traces.logins)} logins",
        err=True,
    )


@person.command("export")
@click.argument("person_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="NDJSON file to write.",
)
@database_option
@click.pass_context
@friendly_errors
def person_export(ctx: click.Context, person_id: str, output: Path, database: str | None) -> None:
    """Write every event, quarantined item and entity that names PERSON_ID, as NDJSON."""
    with open_of(ctx, database) as (settings, store):
        privacy = load_privacy(settings)
        with store.snapshot(is_time_limited=False) as snapshot:
            traces = find_person(snapshot, person_id, privacy.pseudonymizer)
        _found(traces)
        with output.open("wb") as sink:
            for line in export_lines(store, traces):
                sink.write(line)
    click.echo(f"wrote {output}", err=True)


@person.command("erase")
@click.argument("person_id")
@click.option("--dry-run", is_flag=True, help="Only count what would be erased (the default).")
@click.option("--yes", is_flag=True, help="Erase it: events, quarantine, entities, rollups.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@database_option
@click.pass_context
@friendly_errors
def person_erase(
    ctx: click.Context,
    person_id: str,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    database: str | None,
) -> None:
    """Erase everything that names PERSON_ID; nothing is erased without --yes."""
    if dry_run and yes:
        raise click.UsageError("give --dry-run or --yes, not both")
    with open_of(ctx, database) as (settings, store):
        privacy = load_privacy(settings)
        with store.snapshot(is_time_limited=False) as snapshot:
            traces = find_person(snapshot, person_id, privacy.pseudonymizer)
        found = traces.as_json()
        if not as_json:
            _found(traces)
        result = erase_person(
            store,
            traces,
            pseudonymizer=privacy.pseudonymizer,
            is_dry_run=not yes,
            batch_events=settings.purge_batch_events,
            batch_ms=settings.purge_batch_ms,
            actor=operator(),
            at=now_text(),
        )
    if as_json:
        echo_json({**found, **result.as_json()})
    elif yes:
        click.echo(
            f"erased {result.events} events, {result.quarantined} quarantined items, "
            f"{result.entities} entities and {result.login_pairs} logins; audit names the "
            f"person as hmac-sha256:{result.person_hmac[:16]}…"
        )
    else:
        click.echo("dry run: nothing was erased; add --yes to erase it")


@main.command("audit")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--action", type=click.Choice(AUDIT_ACTIONS), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@database_option
@click.pass_context
@friendly_errors
def audit_command(
    ctx: click.Context, limit: int, action: str | None, as_json: bool, database: str | None
) -> None:
    """The audit log, newest first: keys, rules, purges, erasures, quarantine decisions."""
    with store_of(ctx, database) as store:
        entries = store.audit_entries(limit=limit, action=action)
    if as_json:
        echo_json([entry.as_json() for entry in entries])
        return
    rows = [
        (
            entry.id,
            entry.at,
            entry.actor,
            entry.action,
            entry.target or "",
            "" if entry.rows is None else entry.rows,
        )
        for entry in entries
    ]
    click.echo(
        tabulate(rows, headers=["id", "at", "who", "action", "on", "rows"], tablefmt="simple")
    )
