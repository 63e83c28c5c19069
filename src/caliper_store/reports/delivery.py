"""Delivery health: per key and sensor, per hour received, what came in and how late."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from caliper_store.reports.measures import MICROS_PER_DAY, MICROS_PER_SECOND, rounded
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.storage import LagHour, Snapshot, micros_text, utc_micros

DEFINITIONS = {
    "window": "Requests and events by the time the store received them, in [since, until); by "
    "default the 24 hours before at. Hours are UTC.",
    "envelopes": "Requests (envelopes or bare events) the store answered.",
    "items": "Events and entities those requests held.",
    "stored": "Items stored; duplicates are items already stored, counted and not stored twice.",
    "quarantined": "Items held in quarantine, by the first reason found (the receipt's count, "
    "and quarantinedByReason from the quarantine, whatever became of the item since).",
    "eventsStored": "Events received in the hour and stored.",
    "lag": "Received time minus eventTime of the events stored, in seconds: nearest-rank p50 "
    "and p95, and the maximum.",
    "silent": "A key with no request in the silentAfterMinutes before at that sent at least one "
    "in the same window the day before.",
}

# One row of the report: a key, a sensor (None when the request named none) and an hour.
HourKey = tuple[int, str | None, str]


@dataclass
class _Hour:
    envelopes: int = 0
    items: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_seen: str | None = None
    lag: LagHour | None = None


def delivery(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Per key, sensor and hour: requests, items, outcomes, quarantine reasons and lag.

    The database adds up each hour (receipts, quarantine, the events' lags), so the report
    reads a few rows per key and hour, not every request and event of the window.
    """
    at = utc_micros(query.at)
    until = query.until or query.at
    since = query.since or micros_text(utc_micros(until) - MICROS_PER_DAY)
    hours: dict[HourKey, _Hour] = {}

    def hour_of(key: HourKey) -> _Hour:
        return hours.setdefault(key, _Hour())

    for sent in snapshot.receipt_hours(since, until):
        hour = hour_of((sent.api_key_id, sent.sensor, sent.hour))
        hour.envelopes = sent.envelopes
        hour.items = sent.items
        hour.stored = sent.stored
        hour.duplicates = sent.duplicates
        hour.quarantined = sent.quarantined
        hour.last_seen = sent.last_seen
    for held in snapshot.quarantine_hours(since, until):
        hour_of((held.api_key_id, held.sensor, held.hour)).reasons[held.reason] += held.items
    for lag in snapshot.lag_hours(since, until):
        hour_of((lag.api_key_id, lag.sensor, lag.hour)).lag = lag
    labels = snapshot.key_labels()
    rows = [
        _row(key, hour, labels) for key, hour in sorted(hours.items(), key=lambda kv: _order(kv[0]))
    ]
    summary = {
        "keys": _keys(
            snapshot,
            labels,
            at=at,
            silent_micros=settings.silent_after_minutes * 60 * MICROS_PER_SECOND,
            since=since,
        )
    }
    return Report(
        "delivery",
        rows,
        method_of(
            query,
            DEFINITIONS,
            since=since,
            until=until,
            silent_after_minutes=settings.silent_after_minutes,
        ),
        as_of(snapshot),
        summary,
    )


def _row(key: HourKey, hour: _Hour, labels: dict[int, str]) -> dict[str, Any]:
    key_id, sensor, hour_start = key
    lag = hour.lag
    return {
        "keyId": key_id,
        "keyLabel": labels.get(key_id),
        "sensor": sensor,
        "hour": hour_start,
        "envelopes": hour.envelopes,
        "items": hour.items,
        "stored": hour.stored,
        "duplicates": hour.duplicates,
        "quarantined": hour.quarantined,
        "quarantinedByReason": dict(sorted(hour.reasons.items())),
        "eventsStored": 0 if lag is None else lag.events,
        "lastSeenAt": hour.last_seen,
        "lagP50Seconds": _seconds(None if lag is None else lag.p50_micros),
        "lagP95Seconds": _seconds(None if lag is None else lag.p95_micros),
        "lagMaxSeconds": _seconds(None if lag is None else lag.max_micros),
    }


def _seconds(micros: int | None) -> float | None:
    return None if micros is None else rounded(micros / MICROS_PER_SECOND, 3)


def _order(key: HourKey) -> tuple[int, str, str]:
    key_id, sensor, hour = key
    return key_id, sensor or "", hour


def _keys(
    snapshot: Snapshot, labels: dict[int, str], *, at: int, silent_micros: int, since: str
) -> list[dict[str, Any]]:
    """Each key that sent in the window or the day before: when it was last seen, and silent."""
    day_before = at - MICROS_PER_DAY

    def senders(start: int, end: int) -> dict[int, str]:
        return snapshot.key_last_seen(micros_text(start), micros_text(end))

    first = min(utc_micros(since), day_before - silent_micros)
    last_seen = senders(first, at)
    sent_recently = senders(at - silent_micros, at)
    sent_yesterday = senders(day_before - silent_micros, day_before)
    return [
        {
            "keyId": key_id,
            "keyLabel": labels.get(key_id),
            "lastSeenAt": last_seen[key_id],
            "silent": key_id in sent_yesterday and key_id not in sent_recently,
        }
        for key_id in sorted(last_seen)
    ]
