"""The audit log: one row per administrative action, written in the action's own transaction.

Keys created and their status changed, rules files taken into use, purges, erasures and
quarantine decisions. A row says who (an operator at the CLI, or a key by id), when, what,
on what and to how many rows; ``detail`` holds the action's counts as JSON. It never holds a
key, a secret or a person's id in clear (an erasure names the person by an HMAC).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, insert, select

from caliper_store.storage.schema import audit_log

AuditAction = Literal[
    "key_created",
    "key_activated",
    "key_deactivated",
    "key_revoked",
    "rules_changed",
    "purge",
    "erase",
    "quarantine_replayed",
    "quarantine_discarded",
]
AUDIT_ACTIONS: tuple[str, ...] = AuditAction.__args__  # type: ignore[attr-defined]

# The raw-cursor form, for the writer's own transaction (parameter marks per backend).
AUDIT_INSERT_COLUMNS = "INSERT INTO audit_log (at, actor, action, target, rows, detail)"


def replay_audit_rows(resolutions: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Audit rows (AUDIT_INSERT_COLUMNS) for the writer's quarantine resolutions.

    Each resolution is (quarantine id, action, actor, at, outcome, event id, note).
    """
    return [
        (
            at,
            actor,
            "quarantine_replayed",
            f"quarantine {item_id}",
            1,
            json.dumps({"outcome": outcome}),
        )
        for item_id, _, actor, at, outcome, _, _ in resolutions
    ]


class AuditEntry(NamedTuple):
    """One row of the audit log."""

    id: int
    at: str
    actor: str
    action: str
    target: str | None
    rows: int | None
    detail: dict[str, Any] | None

    def as_json(self) -> dict[str, Any]:
        """The entry as the API and ``caliper-store audit --json`` show it."""
        return self._asdict()


def operator() -> str:
    """Who acts at the command line: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def key_actor(key_id: int, label: str) -> str:
    """How an API call's actor is named: by its key's id and label, never the key."""
    return f"key {key_id} ({label})"


def record(
    connection: Connection,
    *,
    at: str,
    actor: str,
    action: AuditAction,
    target: str | None = None,
    rows: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one audit row in the caller's transaction."""
    connection.execute(
        insert(audit_log).values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            rows=rows,
            detail=None if detail is None else json.dumps(detail, sort_keys=True),
        )
    )


def entries(
    connection: Connection,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
) -> list[AuditEntry]:
    """The newest audit rows first, ``limit`` of them, older than ``before_id`` if given."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return [
        AuditEntry(
            row.id,
            row.at,
            row.actor,
            row.action,
            row.target,
            row.rows,
            None if row.detail is None else json.loads(row.detail),
        )
        for row in connection.execute(query)
    ]
