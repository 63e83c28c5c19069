"""Caliper envelopes and events as a sensor sends them: ids, contexts, times, the wire bytes.

Events travel as the JSON bytes they were queued with, so an event read back from an export or
a disk queue is sent byte for byte as it was (big integers, key order and spelling unchanged);
the envelope around them is spliced together rather than parsed and dumped again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from caliper_store.vocab import CORE_CONTEXTS

DataVersion = Literal["1.0", "1.1", "1.2"]
DATA_VERSIONS: Final[tuple[DataVersion, ...]] = ("1.0", "1.1", "1.2")


def new_event_id() -> str:
    """A fresh event id in the form the Caliper spec asks for (``urn:uuid:`` and a UUID 4)."""
    return f"urn:uuid:{uuid.uuid4()}"


def caliper_time(moment: datetime) -> str:
    """A UTC time as Caliper writes it: ISO 8601 with milliseconds and ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def caliper_event(
    event_type: str,
    *,
    actor: Mapping[str, Any] | str,
    action: str,
    object: Mapping[str, Any] | str,  # the Caliper property is called object
    version: Literal["1.1", "1.2"] = "1.2",
    event_time: datetime | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """Build one Caliper 1.1 or 1.2 event with its context, a fresh id and the time now.

    Further properties (``edApp``, ``group``, ``membership``, ``session``, ``generated``,
    ``extensions``...) are passed by their Caliper names and copied as given.
    """
    return {
        "@context": CORE_CONTEXTS[version],
        "id": event_id or new_event_id(),
        "type": event_type,
        "actor": actor,
        "action": action,
        "object": object,
        "eventTime": caliper_time(event_time or datetime.now(UTC)),
        **properties,
    }


def with_event_id(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with an id, given one if it has none, so a re-send keeps the same id.

    Caliper 1.0 events (``@context`` of 1.0, as Moodle sends them) are left without one: 1.0
    has no event id, and the store derives one from their content.
    """
    if event.get("id") or event.get("@context") == CORE_CONTEXTS["1.0"]:
        return event
    return {**event, "id": new_event_id()}


def event_bytes(event: Mapping[str, Any] | bytes) -> bytes:
    """The wire form of one event: bytes as given, or a mapping given an id and dumped."""
    if isinstance(event, bytes):
        return event
    return orjson.dumps(with_event_id(event))


def envelope_body(
    events: Sequence[bytes],
    *,
    sensor_id: str,
    data_version: DataVersion | None,
    send_time: datetime,
) -> bytes:
    """An envelope around events already in their wire form.

    ``data_version`` None leaves ``dataVersion`` out, as Caliper 1.0 senders (Moodle) do.
    """
    head = b'{"sensor":%s,"sendTime":%s' % (
        orjson.dumps(sensor_id),
        orjson.dumps(caliper_time(send_time)),
    )
    if data_version is not None:
        head += b',"dataVersion":%s' % orjson.dumps(CORE_CONTEXTS[data_version])
    return head + b',"data":[' + b",".join(events) + b"]}"
