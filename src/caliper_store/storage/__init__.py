"""Storage: schema and migrations, the SQLite and PostgreSQL backends, the group-commit writer."""

from __future__ import annotations

from caliper_store.storage.records import (
    EntityRow,
    EventRow,
    Item,
    ItemVerdict,
    QuarantineRow,
    Reason,
    Receipt,
    WriteRequest,
    conflict_reason,
)

# Records first: the modules below import them through this package.
from caliper_store.storage.base import QuarantinedItem, Store  # noqa: E402
from caliper_store.storage.keys import ApiKey, KeyRegistry, hash_key  # noqa: E402
from caliper_store.storage.migrate import SchemaState  # noqa: E402
from caliper_store.storage.open import open_store  # noqa: E402
from caliper_store.storage.writer import GroupCommitWriter  # noqa: E402

__all__ = [
    "ApiKey",
    "EntityRow",
    "EventRow",
    "GroupCommitWriter",
    "Item",
    "ItemVerdict",
    "KeyRegistry",
    "QuarantineRow",
    "QuarantinedItem",
    "Reason",
    "Receipt",
    "SchemaState",
    "Store",
    "WriteRequest",
    "conflict_reason",
    "hash_key",
    "open_store",
]
