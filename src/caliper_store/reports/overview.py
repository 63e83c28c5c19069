"""The store at a glance: events per day and per key, and what quarantine holds."""

from __future__ import annotations

from collections import Counter

from caliper_store.reports.measures import MICROS_PER_DAY
from caliper_store.reports.params import ReportQuery
from caliper_store.reports.report import Report, ReportSettings, as_of, method_of
from caliper_store.storage import Snapshot, micros_text, utc_micros

# The period shown when none is asked for: the 30 days before at.
DEFAULT_DAYS = 30

DEFINITIONS = {
    "window": f"Events by the UTC day of their eventTime in [since, until); by default the "
    f"{DEFAULT_DAYS} UTC days that end with the day of at.",
    "source": "For whole UTC days, the daily rollup kept with the events (exact: `caliper-store "
    "reports verify` recomputes it); for other bounds, a count of the events.",
    "events": "Stored events, each once however often it was sent.",
    "quarantineHeld": "Items held in quarantine now, by their first reason (whenever they came).",
}


def overview(snapshot: Snapshot, query: ReportQuery, settings: ReportSettings) -> Report:
    """Per UTC day and key, the events stored; per key, the period's total; quarantine now."""
    today = utc_micros(query.at) // MICROS_PER_DAY
    until = query.until or micros_text((today + 1) * MICROS_PER_DAY)
    since = query.since or micros_text((today + 1 - DEFAULT_DAYS) * MICROS_PER_DAY)
    labels = snapshot.key_labels()
    first, end = utc_micros(since), utc_micros(until)
    if first % MICROS_PER_DAY == 0 and end % MICROS_PER_DAY == 0:
        first_day, last_day = first // MICROS_PER_DAY, end // MICROS_PER_DAY - 1
        counts = snapshot.daily_key_rollups(first_day, last_day)
    else:
        counts = snapshot.daily_event_counts(since, until)
    rows = [
        {"date": day, "keyId": key_id, "keyLabel": labels.get(key_id), "events": events}
        for day, key_id, events in counts
    ]
    by_key: Counter[int] = Counter()
    for _, key_id, events in counts:
        by_key[key_id] += events
    summary = {
        "keys": [
            {"keyId": key_id, "keyLabel": labels.get(key_id), "events": events}
            for key_id, events in sorted(by_key.items())
        ],
        "quarantineHeld": dict(sorted(snapshot.held_by_reason().items())),
    }
    method = method_of(query, DEFINITIONS, since=since, until=until)
    return Report("overview", rows, method, as_of(snapshot), summary)
