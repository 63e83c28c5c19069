"""The Caliper envelope: telling an envelope from a bare event or array, and reading its header."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caliper_store.errors import MalformedEnvelope, PayloadTooLarge, UnsupportedVersion
from caliper_store.ingest.times import parse_time
from caliper_store.storage import Reason
from caliper_store.vocab import version_of_context

ENVELOPE_KEYS = ("sensor", "sendTime", "dataVersion")


@dataclass(slots=True)
class Envelope:
    """The header of what was posted and the items it carries."""

    sensor: str | None
    send_time: str | None
    version: str | None
    data_version: str | None
    items: list[Any]
    is_envelope: bool
    warnings: list[Reason] = field(default_factory=list)


def _is_envelope(document: dict[str, Any]) -> bool:
    return "data" in document and any(key in document for key in ENVELOPE_KEYS)


def parse_envelope(
    document: Any, *, is_strict: bool, max_items: int, max_field_chars: int
) -> Envelope:
    """Read a parsed request body as an envelope, a bare event or a bare array of items.

    Args:
        document: the parsed JSON body.
        is_strict: the key is in strict mode: only a well-formed envelope is accepted.
        max_items: the most items one request may carry.
        max_field_chars: the longest string an envelope field (sensor, sendTime,
            dataVersion) may hold; the sensor is copied into every event it carries.

    Raises:
        MalformedEnvelope: not an envelope where one is required, or an envelope whose
            ``data`` is not an array.
        UnsupportedVersion: ``dataVersion`` names a version the store does not accept.
        PayloadTooLarge: more items than ``max_items``, or an envelope field longer than
            ``max_field_chars``.
    """
    if isinstance(document, dict) and _is_envelope(document):
        _check_field_lengths(document, max_field_chars)
        envelope = _read_envelope(document, is_strict=is_strict)
    elif is_strict:
        raise MalformedEnvelope(
            "strict mode: the body must be a Caliper envelope "
            "{sensor, sendTime, dataVersion, data}",
            field="body",
        )
    elif isinstance(document, dict):
        envelope = Envelope(None, None, None, None, [document], is_envelope=False)
    elif isinstance(document, list):
        envelope = Envelope(None, None, None, None, document, is_envelope=False)
    else:
        raise MalformedEnvelope(
            "the body must be a Caliper envelope, an event, or an array of events; "
            f"got a JSON {type(document).__name__}",
            field="body",
        )
    if len(envelope.items) > max_items:
        raise PayloadTooLarge(
            f"the envelope holds {len(envelope.items)} items; the limit is {max_items}",
            field="data",
        )
    return envelope


def _check_field_lengths(document: dict[str, Any], max_field_chars: int) -> None:
    # A 512 KiB sensor on a 100-event envelope once wrote 52 MB: every event keeps its sensor.
    for name in ENVELOPE_KEYS:
        value = document.get(name)
        if isinstance(value, str) and len(value) > max_field_chars:
            raise PayloadTooLarge(
                f"the envelope's {name} is {len(value)} characters long; "
                f"the limit is max_id_chars={max_field_chars}",
                field=name,
            )


def _read_envelope(document: dict[str, Any], *, is_strict: bool) -> Envelope:
    warnings: list[Reason] = []
    data_version = document.get("dataVersion")
    version: str | None = None
    if data_version is not None:
        version = version_of_context(data_version)
        if version is None:
            raise UnsupportedVersion(
                f"dataVersion {str(data_version)[:200]!r} is not a Caliper version this store "
                "accepts (1.0, 1.1, 1.2)",
                field="dataVersion",
            )
    elif is_strict:
        raise MalformedEnvelope("strict mode: the envelope has no dataVersion", field="dataVersion")

    data = document["data"]
    if isinstance(data, dict):
        if is_strict:
            raise MalformedEnvelope("strict mode: data must be an array", field="data")
        data = [data]
        warnings.append(Reason("data_not_array", "data", "data was one object, not an array"))
    elif not isinstance(data, list):
        raise MalformedEnvelope(
            f"data must be an array of events and entities; got a JSON {type(data).__name__}",
            field="data",
        )

    sensor = document.get("sensor")
    if not isinstance(sensor, str):
        if is_strict:
            raise MalformedEnvelope("strict mode: sensor must be a string IRI", field="sensor")
        if sensor is not None:
            warnings.append(Reason("invalid_sensor", "sensor", "sensor is not a string; ignored"))
        sensor = None

    send_time, _ = parse_time(document.get("sendTime"))
    if send_time is None and document.get("sendTime") is not None:
        if is_strict:
            raise MalformedEnvelope(
                "strict mode: sendTime is not an ISO 8601 time", field="sendTime"
            )
        warnings.append(Reason("invalid_send_time", "sendTime", "sendTime is not an ISO 8601 time"))

    return Envelope(
        sensor=sensor,
        send_time=send_time,
        version=version,
        data_version=data_version if isinstance(data_version, str) else None,
        items=data,
        is_envelope=True,
        warnings=warnings,
    )
