"""Retention: remove what is older than the store keeps, on demand or on a schedule.

Events past ``retention_events_days`` go by eventTime; quarantined items and receipts past
theirs by arrival; ``caliper-store purge`` shows it first and removes it with ``--yes``.

Events go oldest first in paced batches (``purge_batch_ms``), each its own short transaction
that also takes them out of the rollups, so ingest keeps running and waits for at most one
batch at a time; a crash between batches leaves a store that is simply less purged. The logins
kept for finding people (``actor_logins``) go with the last event that carried them. Every purge
writes one audit row with what it removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from caliper_store.config import Settings
from caliper_store.storage import Cutoffs, ExpiredCount, Store, utc_text

logger = logging.getLogger(__name__)

# Seqs read per round of an events purge: a few batches, so a round's read stays short.
SEQS_PER_ROUND_BATCHES = 10


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days (0: forever)."""

    events_days: int
    quarantine_days: int
    receipts_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy the settings give."""
        return cls(
            settings.retention_events_days,
            settings.retention_quarantine_days,
            settings.retention_receipts_days,
        )

    @property
    def is_set(self) -> bool:
        """Whether any kind of row expires."""
        return any((self.events_days, self.quarantine_days, self.receipts_days))

    def cutoffs(self, now: datetime) -> Cutoffs:
        """The time before which each kind expires, as of ``now``."""

        def before(days: int) -> str | None:
            return utc_text(now - timedelta(days=days)) if days else None

        return Cutoffs(
            before(self.events_days), before(self.quarantine_days), before(self.receipts_days)
        )


@dataclass
class PurgeResult:
    """What a purge removed."""

    cutoffs: Cutoffs
    events: int = 0
    quarantine: int = 0
    receipts: int = 0
    # The (login, actor) pairs no event within retention carried.
    login_pairs: int = 0
    events_by_key: dict[int, int] = field(default_factory=dict)
    partitions_dropped: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The result as the CLI and the audit log show it."""
        return {
            "cutoffs": self.cutoffs._asdict(),
            "events": self.events,
            "quarantine": self.quarantine,
            "receipts": self.receipts,
            "loginPairs": self.login_pairs,
            "eventsByKey": {str(key): count for key, count in sorted(self.events_by_key.items())},
            "partitionsDropped": self.partitions_dropped,
        }


def plan_purge(store: Store, policy: RetentionPolicy, now: datetime) -> list[ExpiredCount]:
    """What a purge would remove now, by kind, month and key: the dry run."""
    return store.expired(policy.cutoffs(now))


def purge(
    store: Store,
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch_events: int,
    batch_ms: int = 0,
    actor: str,
    on_events: Callable[[int], None] | None = None,
) -> PurgeResult:
    """Remove everything the policy expires as of ``now``; audited."""
    cutoffs = policy.cutoffs(now)
    result = PurgeResult(cutoffs)
    if cutoffs.events is not None:
        while seqs := store.expired_event_seqs(
            cutoffs.events, batch_events * SEQS_PER_ROUND_BATCHES
        ):
            totals = store.remove_events(
                seqs, batch_events=batch_events, batch_ms=batch_ms, on_batch=on_events
            )
            result.events += totals.events
            for key_id, count in totals.by_key.items():
                result.events_by_key[key_id] = result.events_by_key.get(key_id, 0) + count
            if totals.events == 0:  # another purge took them meanwhile
                break
        result.partitions_dropped = store.drop_past_partitions(cutoffs.events)
        result.login_pairs = store.forget_logins_before(cutoffs.events)
    if cutoffs.quarantine is not None:
        result.quarantine = store.delete_expired("quarantine", cutoffs.quarantine, batch_events)
    if cutoffs.receipts is not None:
        result.receipts = store.delete_expired("receipts", cutoffs.receipts, batch_events)
    store.record_audit(
        at=utc_text(datetime.now(now.tzinfo)),
        actor=actor,
        action="purge",
        rows=result.events + result.quarantine + result.receipts + result.login_pairs,
        detail=result.as_json(),
    )
    return result


async def purge_on_schedule(
    store: Store, settings: Settings, *, now: Callable[[], datetime]
) -> None:
    """Run the purge every ``purge_every_hours`` while the server runs (a lifespan task).

    The last purge's audit row is the schedule, so a restart does not purge again early, and
    several server processes skip a purge another one ran recently.
    """
    policy = RetentionPolicy.from_settings(settings)
    interval = timedelta(hours=settings.purge_every_hours)
    while True:
        last = await asyncio.to_thread(store.audit_entries, limit=1, action="purge")
        due = now() if not last else datetime.fromisoformat(last[0].at) + interval
        wait_s = max(0.0, (due - now()).total_seconds())
        if wait_s > 0:
            await asyncio.sleep(wait_s)
            continue
        try:
            result = await asyncio.to_thread(
                purge,
                store,
                policy,
                now(),
                batch_events=settings.purge_batch_events,
                batch_ms=settings.purge_batch_ms,
                actor="server",
            )
            logger.info(
                "purge removed %d events, %d quarantined items, %d receipts",
                result.events,
                result.quarantine,
                result.receipts,
            )
        except Exception as error:  # a failed purge waits for the next turn, as cron would
            logger.error("scheduled purge failed: %r", error)
            await asyncio.sleep(interval.total_seconds())
