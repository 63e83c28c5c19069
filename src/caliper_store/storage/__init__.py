"""Storage: schema and migrations, the SQLite and PostgreSQL backends, the group-commit writer."""

from __future__ import annotations

from caliper_store.storage.audit import AUDIT_ACTIONS, AuditEntry, key_actor, operator
from caliper_store.storage.base import Store
from caliper_store.storage.convert import (
    DEFAULT_BATCH_EVENTS,
    ConversionPlan,
    convert_plain_raw,
    plain_event_count,
    plan_conversion,
)
from caliper_store.storage.dedup import content_hash
from caliper_store.storage.forwarding import (
    Cursor,
    DeadLetter,
    Destination,
    ForwardBook,
    ForwardedEvent,
    Lag,
)
from caliper_store.storage.keys import ApiKey, KeyRegistry, hash_key
from caliper_store.storage.logins import actor_login
from caliper_store.storage.migrate import ProgressBar, SchemaState
from caliper_store.storage.open import open_store
from caliper_store.storage.records import (
    DroppedRow,
    EntityRow,
    EventRow,
    Item,
    ItemVerdict,
    QuarantineRow,
    Reason,
    Receipt,
    Replay,
    WriteRequest,
    conflict_reason,
    dropped_verdict,
    event_verdict,
)
from caliper_store.storage.removal import RemovalTotals
from caliper_store.storage.retention import Cutoffs, ExpiredCount
from caliper_store.storage.rollups import group_name
from caliper_store.storage.schema import iri_key, micros_text, utc_micros, utc_text
from caliper_store.storage.search import Condition, EventRecord
from caliper_store.storage.snapshot import (
    EVENT_TIME_MICROS,
    RECEIVED_AT_MICROS,
    EventSource,
    GroupRollup,
    LagHour,
    QuarantineHour,
    ReceiptHour,
    Snapshot,
)
from caliper_store.storage.usage import storage_usage
from caliper_store.storage.writer import GroupCommitWriter, commit_batch

__all__ = [
    "AUDIT_ACTIONS",
    "DEFAULT_BATCH_EVENTS",
    "EVENT_TIME_MICROS",
    "RECEIVED_AT_MICROS",
    "ApiKey",
    "AuditEntry",
    "Condition",
    "ConversionPlan",
    "Cursor",
    "Cutoffs",
    "DeadLetter",
    "Destination",
    "DroppedRow",
    "EntityRow",
    "EventRecord",
    "EventRow",
    "EventSource",
    "ExpiredCount",
    "ForwardBook",
    "ForwardedEvent",
    "GroupCommitWriter",
    "GroupRollup",
    "Item",
    "ItemVerdict",
    "KeyRegistry",
    "Lag",
    "LagHour",
    "ProgressBar",
    "QuarantineHour",
    "QuarantineRow",
    "Reason",
    "Receipt",
    "ReceiptHour",
    "RemovalTotals",
    "Replay",
    "SchemaState",
    "Snapshot",
    "Store",
    "WriteRequest",
    "actor_login",
    "commit_batch",
    "conflict_reason",
    "content_hash",
    "convert_plain_raw",
    "dropped_verdict",
    "event_verdict",
    "group_name",
    "hash_key",
    "iri_key",
    "key_actor",
    "micros_text",
    "open_store",
    "operator",
    "plain_event_count",
    "plan_conversion",
    "storage_usage",
    "utc_micros",
    "utc_text",
]
