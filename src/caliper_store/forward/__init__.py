"""Forwarding: every stored event that matches, to other stores and to ClickHouse, in order.

``Relay`` runs inside ``serve`` (one process per database, by a lease) or alone
(``caliper-store forward run``); ``manage`` is what the commands and pages call.
"""

from caliper_store.forward.clickhouse import ClickHouseSink, ClickHouseSource
from caliper_store.forward.manage import (
    DEFAULT_BATCH_EVENTS,
    DestinationStatus,
    ReplayResult,
    add_destination,
    destination_statuses,
    relay_options,
    replay_dead_letters,
)
from caliper_store.forward.relay import (
    Delivery,
    Forwarding,
    Relay,
    RelayOptions,
    forward_once,
    open_sink,
)
from caliper_store.forward.sinks import Answer, HttpSink, Sink, check_url

__all__ = [
    "DEFAULT_BATCH_EVENTS",
    "Answer",
    "ClickHouseSink",
    "ClickHouseSource",
    "Delivery",
    "DestinationStatus",
    "Forwarding",
    "HttpSink",
    "Relay",
    "RelayOptions",
    "ReplayResult",
    "Sink",
    "add_destination",
    "check_url",
    "destination_statuses",
    "forward_once",
    "open_sink",
    "relay_options",
    "replay_dead_letters",
]
