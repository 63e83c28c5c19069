"""What the forwarding commands and pages do: add destinations, show their state, replay.

Thin over ``storage.ForwardBook``: this is where a destination's keys are looked up by label,
its URL checked, and its lag and dead letters put together for people to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caliper_store.config import Settings, redact_url
from caliper_store.errors import InvalidQuery
from caliper_store.forward.relay import RelayOptions, now_text, open_sink
from caliper_store.forward.sinks import check_url
from caliper_store.storage import Destination, Store

DEFAULT_BATCH_EVENTS = 500


def relay_options(settings: Settings) -> RelayOptions:
    """The relay's timings from the settings."""
    return RelayOptions(
        poll_interval_s=settings.forward_poll_interval_ms / 1000,
        lease_s=float(settings.forward_lease_s),
        timeout_s=float(settings.forward_timeout_s),
        concurrency=settings.forward_concurrency,
    )


def add_destination(
    store: Store,
    *,
    name: str,
    url: str,
    api_key: str | None,
    event_types: Sequence[str],
    keys: Sequence[str],
    batch_events: int,
    is_from_start: bool,
) -> Destination:
    """Add a destination after checking its URL, name and keys (labels or ids).

    Raises:
        InvalidQuery: a bad URL, batch size or name, an unknown key, or an HTTP URL without
            a key.
    """
    scheme = check_url(url)
    if scheme in ("http", "https") and not api_key:
        raise InvalidQuery(
            "an HTTP destination needs the --key it issued to this store", field="key"
        )
    if not name.strip() or len(name) > 100:
        raise InvalidQuery("a destination's name must be 1 to 100 characters", field="name")
    if batch_events < 1:
        raise InvalidQuery("batch size must be positive", field="batch_size")
    return store.forwarding.add(
        name=name,
        url=url,
        api_key=api_key,
        event_types=list(event_types) or None,
        key_ids=_key_ids(store, keys) or None,
        batch_events=batch_events,
        is_from_start=is_from_start,
        now=now_text(),
    )


def _key_ids(store: Store, keys: Sequence[str]) -> list[int]:
    known = store.keys.list()
    found = []
    for given in keys:
        matches = [key.id for key in known if key.label == given or str(key.id) == given]
        if not matches:
            raise InvalidQuery(f"no API key has the label or id {given!r}", field="keys")
        found += matches
    return sorted(set(found))


@dataclass(frozen=True, slots=True)
class DestinationStatus:
    """A destination as ``forward status`` and the delivery page show it."""

    destination: Destination
    lag_events: int
    lag_seconds: float
    dead_letters: int

    def as_json(self) -> dict[str, Any]:
        """The status as JSON: no key, the URL's password masked."""
        d = self.destination
        return {
            "name": d.name,
            "url": redact_url(d.url),
            "types": list(d.event_types) if d.event_types else None,
            "keys": list(d.key_ids) if d.key_ids else None,
            "batchSize": d.batch_events,
            "paused": d.is_paused,
            "delivered": d.delivered_events,
            "lagEvents": self.lag_events,
            "lagSeconds": round(self.lag_seconds, 1),
            "deadLetters": self.dead_letters,
            "lastDeliveredAt": d.last_delivered_at,
            "lastError": d.last_error,
            "lastErrorAt": d.last_error_at,
            "cursor": d.cursor.as_text(),
        }


def destination_statuses(store: Store) -> list[DestinationStatus]:
    """Every destination with its lag and its dead letters waiting."""
    statuses = []
    for destination in store.forwarding.all():
        lag = store.forwarding.lag(destination)
        waiting = len(store.forwarding.dead_letters(destination.name))
        statuses.append(DestinationStatus(destination, lag.events, lag.seconds, waiting))
    return statuses


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay of dead letters did."""

    delivered: int
    refused: int
    gone: int


def replay_dead_letters(store: Store, name: str, settings: Settings) -> ReplayResult:
    """Send a destination's dead letters again, one at a time; those it takes are marked.

    An event erased or purged since it was parked is gone, and counted so.
    """
    destination = store.forwarding.get(name)
    letters = store.forwarding.dead_letters(name)
    records = store.forwarding.events_by_seq([letter.seq for letter in letters])
    sink = open_sink(destination, timeout_s=float(settings.forward_timeout_s))
    delivered: list[int] = []
    refused = gone = 0
    try:
        for letter in letters:
            record = records.get(letter.seq)
            if record is None:
                gone += 1
                continue
            answer = sink.deliver([record])
            if 200 <= answer.status < 300:
                delivered.append(letter.id)
            else:
                refused += 1
    finally:
        sink.close()
    store.forwarding.mark_replayed(delivered, now_text())
    return ReplayResult(len(delivered), refused, gone)
