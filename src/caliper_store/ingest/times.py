"""Caliper timestamps: ISO 8601 with or without offset, normalized to fixed-width UTC text."""

from __future__ import annotations

from datetime import UTC, datetime

from caliper_store.storage import utc_text


def parse_time(value: object) -> tuple[str | None, bool]:
    """Parse a Caliper timestamp.

    Returns:
        The time as fixed-width UTC text (None when it cannot be read) and whether the value
        had no offset and was taken as UTC.
    """
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None, False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, False
    is_naive = moment.tzinfo is None
    if is_naive:
        moment = moment.replace(tzinfo=UTC)
    try:
        return utc_text(moment), is_naive
    except (OverflowError, ValueError):
        return None, False
