"""Ingest: envelopes parsed, items normalized across Caliper versions, validated, then written."""

from caliper_store.ingest.normalize import normalize_id
from caliper_store.ingest.pipeline import (
    IngestLimits,
    Prepared,
    ingest_body,
    memory_bound,
    prepare_request,
    receipt_body,
    validate_body,
)
from caliper_store.ingest.replay import (
    ReplayOutcome,
    prepare_replay,
    replay_items,
    replay_outcome,
)

__all__ = [
    "IngestLimits",
    "Prepared",
    "ReplayOutcome",
    "ingest_body",
    "memory_bound",
    "normalize_id",
    "prepare_replay",
    "prepare_request",
    "receipt_body",
    "replay_items",
    "replay_outcome",
    "validate_body",
]
