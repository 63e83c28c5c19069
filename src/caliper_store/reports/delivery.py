"""Delivery health: per key and sensor, per hour received, what came in and how late."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from caliper_store.reports.measures import (
    MICROS_PER_DAY,
    MICROS_PER_SECOND,
    nearest_rank,
    read_events,
    rounded,
)
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.storage import Condition, ReceiptSummary, Snapshot, micros_text, utc_micros

MICROS_PER_HOUR = 3_600 * MICROS_PER_SECOND

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


@dataclass
class _Hour:
    envelopes: int = 0
    items: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    last_seen: str | None = None
    lags: list[float] = field(default_factory=list)


def _hour_of(received_at: str) -> str:
    micros = utc_micros(received_at)
    return micros_text(micros - micros % MICROS_PER_HOUR)


def delivery(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Per key, sensor and hour: requests, items, outcomes, quarantine reasons and lag."""
    at = utc_micros(query.at)
    until = query.until or query.at
    since = query.since or micros_text(utc_micros(until) - MICROS_PER_DAY)
    silent_micros = settings.silent_after_minutes * 60 * MICROS_PER_SECOND
    yesterday_from = at - MICROS_PER_DAY - silent_micros
    read_from = min(since, micros_text(yesterday_from))
    read_until = max(until, query.at)
    receipts = snapshot.receipts(read_from, read_until)
    hours: dict[tuple[int, str | None, str], _Hour] = defaultdict(_Hour)
    sensor_of: dict[int, str | None] = {}
    for receipt in receipts:
        sensor_of[receipt.id] = receipt.sensor
        if not since <= receipt.received_at < until:
            continue
        hour = hours[receipt.api_key_id, receipt.sensor, _hour_of(receipt.received_at)]
        hour.envelopes += 1
        hour.items += receipt.item_count
        hour.stored += receipt.stored_count
        hour.duplicates += receipt.duplicate_count
        hour.quarantined += receipt.quarantined_count
        hour.last_seen = max(hour.last_seen or "", receipt.received_at)
    for item in snapshot.quarantined(since, until):
        sensor = sensor_of.get(item.receipt_id)
        hours[item.api_key_id, sensor, _hour_of(item.received_at)].reasons[item.reason] += 1
    received = [
        Condition("received_at", ">=", (since,)),
        Condition("received_at", "<", (until,)),
    ]
    for event in read_events(snapshot, received):
        lag = (utc_micros(event.received_at) - event.time_micros) / MICROS_PER_SECOND
        hour = hours[event.api_key_id, event.sensor, _hour_of(event.received_at)]
        hour.lags.append(lag)
    labels = snapshot.key_labels()
    rows = []
    for (key_id, sensor, hour_start), hour in sorted(hours.items(), key=_order):
        lags = sorted(hour.lags)
        rows.append(
            {
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
                "eventsStored": len(lags),
                "lastSeenAt": hour.last_seen,
                "lagP50Seconds": rounded(nearest_rank(lags, 50), 3),
                "lagP95Seconds": rounded(nearest_rank(lags, 95), 3),
                "lagMaxSeconds": rounded(lags[-1], 3) if lags else None,
            }
        )
    summary = {"keys": _keys(receipts, labels, at=at, silent_micros=silent_micros)}
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


def _order(entry: tuple[tuple[int, str | None, str], _Hour]) -> tuple[int, str, str]:
    (key_id, sensor, hour), _ = entry
    return key_id, sensor or "", hour


def _keys(
    receipts: list[ReceiptSummary], labels: dict[int, str], *, at: int, silent_micros: int
) -> list[dict[str, Any]]:
    """Each key that sent in the window or the day before: when it was last seen, and silent."""
    last_seen: dict[int, str] = {}
    sent_recently: set[int] = set()
    sent_yesterday: set[int] = set()
    for receipt in receipts:
        received = utc_micros(receipt.received_at)
        if received >= at:
            continue
        key_id = receipt.api_key_id
        last_seen[key_id] = max(last_seen.get(key_id, ""), receipt.received_at)
        if received >= at - silent_micros:
            sent_recently.add(key_id)
        day_before = at - MICROS_PER_DAY
        if day_before - silent_micros <= received < day_before:
            sent_yesterday.add(key_id)
    return [
        {
            "keyId": key_id,
            "keyLabel": labels.get(key_id),
            "lastSeenAt": last_seen[key_id],
            "silent": key_id in sent_yesterday and key_id not in sent_recently,
        }
        for key_id in sorted(last_seen)
    ]
