"""Typed errors of caliper_store; they carry no HTTP, web/problems.py maps them to responses."""

from __future__ import annotations

from typing import Any


class CaliperStoreError(Exception):
    """Base of every error the store raises on purpose.

    Attributes:
        detail: a sentence for the person reading the error.
        field: the JSON field or setting the error is about, when there is one.
    """

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle every subclass, keyword-only arguments included (writer process outcomes)."""
        return (_restore_error, (type(self), self.args, self.__dict__))


class ConfigurationError(CaliperStoreError):
    """A setting is missing, malformed or contradicts another one."""


class Unauthorized(CaliperStoreError):
    """No API key, an unknown key, or a key that is not active."""


class MalformedRequest(CaliperStoreError):
    """The request itself is ambiguous or malformed (two Authorization headers, say)."""


class Forbidden(CaliperStoreError):
    """A valid key that lacks the scope the request needs."""


class UnsupportedMediaType(CaliperStoreError):
    """The request body is not declared as JSON."""


class PayloadTooLarge(CaliperStoreError):
    """The body, or the number of items in it, exceeds a configured limit."""


class MalformedEnvelope(CaliperStoreError):
    """The body is not JSON, or not a Caliper envelope where one is required."""

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail, field=field)
        self.errors = errors or []


class UnsupportedVersion(CaliperStoreError):
    """The envelope's dataVersion names a Caliper version the store does not accept."""


class EventConflict(CaliperStoreError):
    """Strict mode only: an event id already stored with other content."""

    def __init__(self, detail: str, *, errors: list[dict[str, str]]) -> None:
        super().__init__(detail, field="data")
        self.errors = errors


class Overloaded(CaliperStoreError):
    """The writer queue is full; the client should retry after `retry_after_s` seconds."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class StorageUnavailable(CaliperStoreError):
    """The database cannot take writes right now; nothing of the request was committed."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class QueryTimeout(CaliperStoreError):
    """A read ran past ``query_timeout_ms`` and was stopped; retry narrower, or later.

    Attributes:
        limit_ms: the limit it ran past.
        retry_after_s: seconds a client is told to wait (Retry-After).
    """

    def __init__(self, detail: str, *, limit_ms: int, retry_after_s: int) -> None:
        super().__init__(detail, field="query_timeout_ms")
        self.limit_ms = limit_ms
        self.retry_after_s = retry_after_s


class NotFound(CaliperStoreError):
    """The named key, event or quarantined item does not exist."""


class InvalidQuery(CaliperStoreError):
    """A filter, cursor, page size or export option is malformed; ``field`` names it."""


class AlreadyResolved(CaliperStoreError):
    """The quarantined item was already replayed or discarded; nothing was changed."""


class SchemaOutOfDate(CaliperStoreError):
    """The database schema is older than this code; `caliper-store migrate` upgrades it."""


class QueueFull(CaliperStoreError):
    """A sensor's queue holds ``max_queued_events`` already; nothing of this send was queued."""


class DeliveryFailed(CaliperStoreError):
    """A sensor could not deliver queued events (the store is away); they stay queued.

    Attributes:
        undelivered: how many events are still queued.
    """

    def __init__(self, detail: str, *, undelivered: int) -> None:
        super().__init__(detail)
        self.undelivered = undelivered


class DestinationUnavailable(CaliperStoreError):
    """A forwarding destination could not take a batch now (down, unreachable); try again."""


def _restore_error(
    kind: type[CaliperStoreError], args: tuple[Any, ...], state: dict[str, Any]
) -> CaliperStoreError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
