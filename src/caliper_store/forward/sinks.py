"""Where forwarded events go: another Caliper endpoint over HTTP, or ClickHouse.

A sink takes a batch of stored events and answers like an HTTP server would (a status, maybe
``Retry-After``, a body), or raises on a connection error; the relay decides from that, with
the sensor's retry rule, whether to wait and send again, split the batch, or park an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from caliper_store.errors import InvalidQuery
from caliper_store.sensor import DataVersion, envelope_body
from caliper_store.storage import EventRecord

HTTP_SCHEMES = ("http", "https")
CLICKHOUSE_SCHEMES = ("clickhouse", "clickhouses", "chdb")
# The envelope's sensor for events that came without one.
FORWARDER_SENSOR = "urn:caliper-store:forwarder"


@dataclass(frozen=True, slots=True)
class Answer:
    """What a destination said to one batch."""

    status: int
    retry_after: str | None = None
    body: bytes = b""


class Sink(Protocol):
    """A destination's connection: deliver a batch, say how it went."""

    def deliver(self, records: Sequence[EventRecord]) -> Answer:
        """Send the events; raise ``OSError``/``httpx.TransportError`` when unreachable."""

    def close(self) -> None:
        """Release connections."""


def check_url(url: str) -> str:
    """A destination URL's scheme, checked: http(s), clickhouse(s) or chdb.

    Raises:
        InvalidQuery: any other URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in HTTP_SCHEMES and parts.netloc:
        return scheme
    if scheme in CLICKHOUSE_SCHEMES and (parts.netloc or parts.path):
        return scheme
    raise InvalidQuery(
        f"destination URL {url!r} must be http(s)://host/path, clickhouse://user:pass@host:8123/db "
        "or chdb:///path",
        field="url",
    )


def _data_version(version: str) -> DataVersion | None:
    """The envelope's dataVersion for events of this version; 1.0 goes without, as Moodle's."""
    return "1.1" if version == "1.1" else "1.2" if version == "1.2" else None


class HttpSink:
    """Another Caliper endpoint (another caliper-store, a vendor's store) over keep-alive HTTP.

    Each run of events with the same sensor and Caliper version goes in one envelope of that
    sensor and version, so the destination stores what this store stored; the raw events are
    spliced in byte for byte.
    """

    def __init__(self, url: str, key: str | None, *, timeout_s: float) -> None:
        self._url = url
        headers = {"Content-Type": "application/json", "User-Agent": "caliper-store-forwarder"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(timeout=timeout_s, headers=headers)

    def deliver(self, records: Sequence[EventRecord]) -> Answer:
        """Post one envelope per run of sensor and version; the first failure answers."""
        now = datetime.now(UTC)
        for (sensor, version), run in groupby(
            records, key=lambda record: (record.sensor, record.caliper_version)
        ):
            body = envelope_body(
                [(record.raw or "").encode("utf-8") for record in run],
                sensor_id=sensor or FORWARDER_SENSOR,
                data_version=_data_version(version),
                send_time=now,
            )
            response = self._http.post(self._url, content=body)
            if not 200 <= response.status_code < 300:
                return Answer(
                    response.status_code, response.headers.get("retry-after"), response.content
                )
        return Answer(200)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
