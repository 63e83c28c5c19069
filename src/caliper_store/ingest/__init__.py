"""Ingest: envelopes parsed, items normalized across Caliper versions, validated, then written."""

from caliper_store.ingest.pipeline import (
    IngestLimits,
    Prepared,
    ingest_body,
    prepare_request,
    receipt_body,
    validate_body,
)

__all__ = [
    "IngestLimits",
    "Prepared",
    "ingest_body",
    "prepare_request",
    "receipt_body",
    "validate_body",
]
