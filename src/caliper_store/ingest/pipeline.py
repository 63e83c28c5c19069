"""The ingest pipeline: body → envelope → normalized items → the writer → a receipt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from caliper_store.config import Settings, same_named
from caliper_store.errors import MalformedEnvelope, PayloadTooLarge
from caliper_store.ingest.codec import parse_json, parsed_memory_bound
from caliper_store.ingest.envelope import Envelope, parse_envelope
from caliper_store.ingest.limits import ItemLimits
from caliper_store.ingest.normalize import ItemContext, normalize_item
from caliper_store.privacy import RuleBook
from caliper_store.storage import (
    ApiKey,
    DroppedRow,
    EntityRow,
    EventRow,
    GroupCommitWriter,
    ItemVerdict,
    QuarantineRow,
    Receipt,
    Store,
    WriteRequest,
    dropped_verdict,
    event_verdict,
)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """Every limit the ingest path enforces, from the settings of the same names."""

    max_body_bytes: int
    max_items_per_envelope: int
    max_request_memory_bytes: int
    items: ItemLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        """Take the limits out of the settings."""
        return same_named(cls, settings, items=same_named(ItemLimits, settings))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready for the writer, and the envelope it came from."""

    request: WriteRequest
    envelope: Envelope


def memory_bound(body: bytes, limits: IngestLimits) -> int:
    """The most memory the body's parsed JSON can take, checked before anything parses it.

    Sixteen MiB of ``{}`` once took a server from 186 to 658 MiB before the item count refused
    it; bounding the parse by the body's separators refuses it first.

    Raises:
        PayloadTooLarge: the bound is past ``max_request_memory_bytes``.
    """
    bound = parsed_memory_bound(body)
    if bound > limits.max_request_memory_bytes:
        raise PayloadTooLarge(
            f"the body's JSON values could take {bound} bytes once parsed; the limit is "
            f"max_request_memory_bytes={limits.max_request_memory_bytes}",
            field="body",
        )
    return bound


def prepare_request(
    body: bytes,
    *,
    key: ApiKey,
    limits: IngestLimits,
    received_at: str,
    is_bounded: bool = False,
    rules: RuleBook | None = None,
) -> Prepared:
    """Parse, split and normalize a request body into rows for the writer.

    Args:
        body: the request body.
        key: the key that sent it.
        limits: the ingest limits.
        received_at: when the body arrived, as the store's UTC text.
        is_bounded: the caller already took :func:`memory_bound` of this body.
        rules: the server's ingest rules, if it has a rules file.

    Raises:
        MalformedEnvelope: not JSON, not an envelope where one is required, or (strict mode)
            an item that would be quarantined.
        UnsupportedVersion: the envelope's dataVersion is not 1.0, 1.1 or 1.2.
        PayloadTooLarge: the parsed body could take more memory than the limit, more items
            than the limit, or an envelope field longer than the limit.
    """
    if not is_bounded:
        memory_bound(body, limits)
    document = parse_json(body)
    envelope = parse_envelope(
        document,
        is_strict=key.is_strict,
        max_items=limits.max_items_per_envelope,
        max_field_chars=limits.items.max_id_chars,
    )
    context = ItemContext(
        envelope.version, limits.items, rules.for_key(key) if rules is not None else None
    )
    items = [normalize_item(item, index, context) for index, item in enumerate(envelope.items)]
    if key.is_strict:
        invalid = [item for item in items if isinstance(item, QuarantineRow)]
        if invalid:
            raise MalformedEnvelope(
                f"strict mode: {len(invalid)} of {len(items)} items are not valid Caliper",
                field="data",
                errors=[reason.as_json() for item in invalid for reason in item.reasons],
            )
    request = WriteRequest(
        api_key_id=key.id,
        sensor=envelope.sensor,
        send_time=envelope.send_time,
        data_version=envelope.data_version,
        is_envelope=envelope.is_envelope,
        body_bytes=len(body),
        received_at=received_at,
        items=items,
        is_strict=key.is_strict,
        rule_set_id=rules.rule_set_id if rules is not None else None,
    )
    return Prepared(request, envelope)


async def ingest_body(
    body: bytes,
    *,
    key: ApiKey,
    limits: IngestLimits,
    writer: GroupCommitWriter,
    received_at: str,
    rules: RuleBook | None = None,
) -> tuple[Receipt, Envelope]:
    """Store what a request carries; returns once it is committed."""
    prepared = prepare_request(body, key=key, limits=limits, received_at=received_at, rules=rules)
    receipt = await writer.submit(prepared.request)
    return receipt, prepared.envelope


def receipt_body(receipt: Receipt, envelope: Envelope) -> dict[str, Any]:
    """The JSON receipt, with envelope-level warnings when there are any."""
    shown = receipt.as_json()
    if envelope.warnings:
        shown["warnings"] = [warning.as_json() for warning in envelope.warnings]
    return shown


def validate_body(
    body: bytes,
    *,
    key: ApiKey,
    limits: IngestLimits,
    store: Store,
    received_at: str,
    is_bounded: bool = False,
    rules: RuleBook | None = None,
) -> dict[str, Any]:
    """Run every ingest check on a body without storing anything; say what would happen.

    Envelope-level errors raise exactly as ingest would; item-level verdicts, including
    duplicates and conflicts against what is already stored, are returned.
    """
    prepared = prepare_request(
        body,
        key=key,
        limits=limits,
        received_at=received_at,
        is_bounded=is_bounded,
        rules=rules,
    )
    items = prepared.request.items
    stored = store.lookup_event_hashes(
        [item.event_id for item in items if isinstance(item, EventRow)]
    )
    verdicts: list[ItemVerdict] = []
    seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, EventRow):
            reference = stored.get(item.event_id, seen.get(item.event_id))
            seen.setdefault(item.event_id, item.content_hash)
            verdicts.append(event_verdict(item, reference))
        elif isinstance(item, DroppedRow):
            verdicts.append(dropped_verdict(item))
        elif isinstance(item, EntityRow):
            verdicts.append(
                ItemVerdict(
                    item.index, "entity", item.entity_id, "stored", (), tuple(item.warnings)
                )
            )
        else:
            verdicts.append(
                ItemVerdict(
                    item.index, "invalid", item.event_id, "quarantined", tuple(item.reasons)
                )
            )
    receipt = Receipt(0, prepared.envelope.is_envelope, tuple(verdicts))
    shown = receipt_body(receipt, prepared.envelope)
    del shown["receipt"]
    shown["dryRun"] = True
    shown["valid"] = all(verdict.verdict != "quarantined" for verdict in verdicts)
    return shown
