"""Replay of quarantined items: today's ingest rules run again on an item exactly as it was sent.

After a fix or a vocabulary update, an item that failed may now pass. Replay normalizes the
stored raw item with the current rules and limits, in the context of the envelope it came in,
then hands it to the writer's ``commit_batch`` like any request: the same dedup, the same
conflict rule. The writer takes the item out of quarantine in the transaction that stores the
event, with an audit row, and only if it is still held, so a replay stores an item at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from caliper_store.errors import AlreadyResolved, CaliperStoreError, NotFound
from caliper_store.ingest.codec import parse_json
from caliper_store.ingest.limits import ItemLimits
from caliper_store.ingest.normalize import ItemContext, normalize_item
from caliper_store.privacy import RuleBook
from caliper_store.storage import (
    QuarantineRow,
    Receipt,
    Replay,
    Store,
    WriteRequest,
    commit_batch,
)
from caliper_store.vocab import version_of_context

ReplayResult = Literal[
    "stored", "duplicate", "dropped", "still_invalid", "conflict", "already_resolved"
]
# Replays committed together by the command line (one transaction each group).
REPLAY_GROUP_ITEMS = 500


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What replaying one item did."""

    quarantine_id: int
    result: ReplayResult
    event_id: str | None
    reasons: list[dict[str, str]] = field(default_factory=list)

    @property
    def has_left_quarantine(self) -> bool:
        """The item is now an event (or entity), stored by this replay or before it."""
        return self.result in ("stored", "duplicate")

    def as_json(self) -> dict[str, object]:
        """The outcome as the API and the CLI show it."""
        return {
            "id": self.quarantine_id,
            "result": self.result,
            "event_id": self.event_id,
            "reasons": self.reasons,
        }


def prepare_replay(
    store: Store,
    quarantine_id: int,
    *,
    limits: ItemLimits,
    actor: str,
    now: str,
    rules: RuleBook | None = None,
) -> WriteRequest | ReplayOutcome:
    """Run today's rules on a quarantined item: a request for the writer, or why it still fails.

    Today's ingest rules too, as for the key that sent it: they remove nothing more from an item
    they already ran on (each is idempotent), and do what a rule added since asks.

    Raises:
        NotFound: no item has this id.
    """
    found = store.quarantine.get(quarantine_id)
    if found is None:
        raise NotFound(f"no quarantined item with id {quarantine_id}")
    item, receipt, _ = found
    if item.status != "held":
        return ReplayOutcome(quarantine_id, "already_resolved", item.event_id)
    data_version = receipt.data_version if receipt is not None else None
    key_rules = rules.for_key(store.keys.get(item.api_key_id)) if rules is not None else None
    context = ItemContext(
        version_of_context(data_version) if data_version else None, limits, key_rules
    )
    normalized = normalize_item(parse_json(item.raw.encode("utf-8")), item.item_index, context)
    if isinstance(normalized, QuarantineRow):
        return ReplayOutcome(
            quarantine_id,
            "still_invalid",
            normalized.event_id,
            [reason.as_json() for reason in normalized.reasons],
        )
    return WriteRequest(
        api_key_id=item.api_key_id,
        sensor=receipt.sensor if receipt is not None else None,
        send_time=receipt.send_time if receipt is not None else None,
        data_version=data_version,
        is_envelope=receipt.is_envelope if receipt is not None else False,
        body_bytes=0,
        # The event was received when it was first sent; the replay time is in the audit row.
        received_at=item.received_at,
        items=[normalized],
        replay=Replay(quarantine_id, item.receipt_id, actor, now),
        rule_set_id=rules.rule_set_id if rules is not None else None,
    )


def replay_outcome(quarantine_id: int, outcome: Receipt | CaliperStoreError) -> ReplayOutcome:
    """Read the writer's answer to a replay request.

    Raises:
        CaliperStoreError: the write failed for another reason than the item being resolved.
    """
    if isinstance(outcome, AlreadyResolved):
        return ReplayOutcome(quarantine_id, "already_resolved", None)
    if isinstance(outcome, CaliperStoreError):
        raise outcome
    verdict = outcome.items[0]
    if verdict.verdict == "quarantined":
        reasons = [reason.as_json() for reason in verdict.reasons]
        return ReplayOutcome(quarantine_id, "conflict", verdict.id, reasons)
    return ReplayOutcome(quarantine_id, verdict.verdict, verdict.id)


def replay_items(
    store: Store,
    ids: Sequence[int],
    *,
    limits: ItemLimits,
    actor: str,
    now: str,
    rules: RuleBook | None = None,
) -> list[ReplayOutcome]:
    """Replay items straight through ``commit_batch`` (the command line has no writer thread).

    Raises:
        NotFound: one of the ids names no item (nothing after it is replayed).
    """
    outcomes: list[ReplayOutcome] = []
    for start in range(0, len(ids), REPLAY_GROUP_ITEMS):
        requests: list[WriteRequest] = []
        for quarantine_id in ids[start : start + REPLAY_GROUP_ITEMS]:
            prepared = prepare_replay(
                store, quarantine_id, limits=limits, actor=actor, now=now, rules=rules
            )
            if isinstance(prepared, ReplayOutcome):
                outcomes.append(prepared)
            else:
                requests.append(prepared)
        if requests:
            for request, outcome in zip(requests, commit_batch(store, requests), strict=True):
                assert request.replay is not None
                outcomes.append(replay_outcome(request.replay.quarantine_id, outcome))
    return sorted(outcomes, key=lambda outcome: outcome.quarantine_id)
