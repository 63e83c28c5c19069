"""Event filters: one table of fields serves the HTTP parameters, the CLI flags and the OpenAPI.

Values are read the way ingest stored them: event ids get ingest's one spelling (a Learn
plain UUID finds the stored ``urn:uuid:`` form), type, action and object type IRIs become their
Caliper terms, versions are ``1.0``/``1.1``/``1.2``, and times become fixed-width UTC text.
Within one field the values are alternatives (OR); different fields must all match (AND).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Literal

import orjson

from caliper_store.errors import InvalidQuery
from caliper_store.ingest import normalize_id
from caliper_store.storage import utc_text
from caliper_store.storage.search import Condition
from caliper_store.vocab import SUPPORTED_VERSIONS, term_from_iri, version_of_context

FieldKind = Literal["text", "term", "int", "version", "event_id", "since", "until"]

# The largest value each id column holds: a value beyond it makes the driver raise (SQLite:
# OverflowError past 64 bits; PostgreSQL: "integer out of range") instead of matching nothing.
# API key ids are INTEGER (32-bit on PostgreSQL); sequence numbers and receipt and quarantine ids
# are BIGINT. Ids are never negative.
KEY_ID_MAX = 2**31 - 1
ID_MAX = 2**63 - 1
# ASCII digits only: int() would also take " 7", "7_0" and other scripts' digits.
INTEGER_PATTERN = re.compile(r"[+-]?[0-9]+", re.ASCII)
# More significant digits than any 64-bit integer has: out of range without calling int()
# (whose cost grows with the length, up to Python's 4,300-digit limit).
MAX_INTEGER_DIGITS = 20


@dataclass(frozen=True, slots=True)
class FilterField:
    """One filter: its Python name (and ``--flag``), HTTP parameter, column and kind."""

    name: str
    param: str
    column: str
    kind: FieldKind
    help: str
    maximum: int = ID_MAX

    @property
    def flag(self) -> str:
        """The command-line option."""
        return "--" + self.name.replace("_", "-")

    @property
    def is_multiple(self) -> bool:
        """Whether the filter takes several values (time bounds take one)."""
        return self.kind not in ("since", "until")


FILTER_FIELDS: tuple[FilterField, ...] = (
    FilterField("event_id", "eventId", "event_id", "event_id", "Event id, as sent or as stored."),
    FilterField("actor_id", "actorId", "actor_id", "text", "Actor id (IRI)."),
    FilterField(
        "external_id",
        "externalId",
        "actor_external_id",
        "text",
        "The actor's id in the producer's SIS, as normalization extracted it (Learn's "
        "bb:user.externalId, Canvas's user_sis_id, sourcedId).",
    ),
    FilterField("object_id", "objectId", "object_id", "text", "Object id (IRI)."),
    FilterField("object_type", "objectType", "object_type", "term", "Object type (term or IRI)."),
    FilterField(
        "event_type", "type", "event_type", "term", "Event type (term or IRI), e.g. ViewEvent."
    ),
    FilterField("action", "action", "action", "term", "Action (term or IRI), e.g. Viewed."),
    FilterField("group_id", "groupId", "group_id", "text", "Group id: the course or section."),
    FilterField("session_id", "sessionId", "session_id", "text", "Session id."),
    FilterField("ed_app_id", "edAppId", "ed_app_id", "text", "edApp id: the application."),
    FilterField("sensor", "sensor", "sensor", "text", "Sensor id from the envelope."),
    FilterField(
        "key_id",
        "keyId",
        "api_key_id",
        "int",
        "Id of the API key that sent the event.",
        maximum=KEY_ID_MAX,
    ),
    FilterField(
        "version", "version", "caliper_version", "version", "Caliper version: 1.0, 1.1 or 1.2."
    ),
    FilterField(
        "since",
        "since",
        "event_time",
        "since",
        "Events whose eventTime is at or after this ISO 8601 time (or date); UTC if no offset.",
    ),
    FilterField(
        "until", "until", "event_time", "until", "Events whose eventTime is before this time."
    ),
    FilterField(
        "received_since",
        "receivedSince",
        "received_at",
        "since",
        "Events the store received at or after this time.",
    ),
    FilterField(
        "received_until",
        "receivedUntil",
        "received_at",
        "until",
        "Events the store received before this time.",
    ),
)
FIELDS_BY_PARAM: Mapping[str, FilterField] = {spec.param: spec for spec in FILTER_FIELDS}


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to return; empty tuples and None mean "any"."""

    event_id: tuple[str, ...] = ()
    actor_id: tuple[str, ...] = ()
    external_id: tuple[str, ...] = ()
    object_id: tuple[str, ...] = ()
    object_type: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ()
    action: tuple[str, ...] = ()
    group_id: tuple[str, ...] = ()
    session_id: tuple[str, ...] = ()
    ed_app_id: tuple[str, ...] = ()
    sensor: tuple[str, ...] = ()
    key_id: tuple[int, ...] = ()
    version: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    received_since: str | None = None
    received_until: str | None = None
    _conditions: tuple[Condition, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conditions: list[Condition] = []
        for spec in FILTER_FIELDS:
            value = getattr(self, spec.name)
            if spec.kind == "since" and value is not None:
                conditions.append(Condition(spec.column, ">=", (value,)))
            elif spec.kind == "until" and value is not None:
                conditions.append(Condition(spec.column, "<", (value,)))
            elif spec.is_multiple and value:
                conditions.append(Condition(spec.column, "in", tuple(value)))
        object.__setattr__(self, "_conditions", tuple(conditions))

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """The filter as storage conditions."""
        return self._conditions

    def fingerprint(self) -> str:
        """A short digest of the filter, so a cursor cannot be reused with other filters."""
        shown = [[c.column, c.op, list(c.values)] for c in self._conditions]
        return hashlib.sha256(orjson.dumps(shown)).hexdigest()[:16]


def require_in_range(number: int, name: str, *, minimum: int = 0, maximum: int = ID_MAX) -> int:
    """``number`` itself, once it is known to fit the column it will be compared with.

    Raises:
        InvalidQuery: naming the parameter.
    """
    if not minimum <= number <= maximum:
        shown = str(number) if number.bit_length() <= 128 else "a larger number"
        raise InvalidQuery(
            f"{name} must be between {minimum} and {maximum}, got {shown}", field=name
        )
    return number


def parse_int(value: str, name: str, *, minimum: int = 0, maximum: int = ID_MAX) -> int:
    """A decimal integer within ``minimum``..``maximum``, read at a cost bounded by its length.

    Raises:
        InvalidQuery: not an integer, or out of range, naming the parameter.
    """
    text = value.strip()
    if INTEGER_PATTERN.fullmatch(text) is None:
        raise InvalidQuery(f"{name} must be an integer, got {value[:80]!r}", field=name)
    if len(text.lstrip("+-").lstrip("0")) > MAX_INTEGER_DIGITS:
        raise InvalidQuery(
            f"{name} must be between {minimum} and {maximum}, got {text[:40]}...", field=name
        )
    return require_in_range(int(text), name, minimum=minimum, maximum=maximum)


def refuse_nul(value: str, name: str) -> str:
    """``value`` itself, unless it holds a NUL character, which PostgreSQL text cannot hold.

    Raises:
        InvalidQuery: naming the parameter.
    """
    if "\x00" in value:
        raise InvalidQuery(f"{name} must not contain a NUL character", field=name)
    return value


def parse_time(value: str, name: str) -> str:
    """An ISO 8601 time or date as fixed-width UTC text (naive means UTC).

    Raises:
        InvalidQuery: naming the parameter.
    """
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise InvalidQuery(
            f"{name} must be an ISO 8601 time or date, got {value[:80]!r}", field=name
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return utc_text(moment)
    except (OverflowError, ValueError) as error:
        raise InvalidQuery(f"{name} is out of range: {value[:80]!r}", field=name) from error


def _version(value: str, name: str) -> str:
    if value in SUPPORTED_VERSIONS:
        return value
    version = version_of_context(value)
    if version is None:
        raise InvalidQuery(
            f"{name} must be one of {', '.join(SUPPORTED_VERSIONS)}, got {value[:80]!r}",
            field=name,
        )
    return version


def _one_value(spec: FilterField, value: str, name: str) -> str | int:
    if spec.kind == "int":
        return parse_int(value, name, maximum=spec.maximum)
    refuse_nul(value, name)
    if spec.kind == "term":
        return term_from_iri(value)
    if spec.kind == "event_id":
        return normalize_id(value)
    if spec.kind == "version":
        return _version(value, name)
    return value


def build_filter(
    values: Mapping[str, Sequence[str]], *, max_values: int, by_param: bool = True
) -> EventFilter:
    """Read raw filter values (from the query string or the command line) into a filter.

    Args:
        values: raw strings per field, keyed by HTTP parameter (or Python name when
            ``by_param`` is false); names that are no filter are ignored here.
        max_values: the most values one field may list.
        by_param: whether the keys are HTTP parameter names.

    Raises:
        InvalidQuery: a value that cannot be read, naming its parameter.
    """
    chosen: dict[str, object] = {}
    for spec in FILTER_FIELDS:
        key = spec.param if by_param else spec.name
        name = spec.param if by_param else spec.flag
        raw = [value for value in values.get(key, ()) if value != ""]
        if not raw:
            continue
        if not spec.is_multiple:
            if len(raw) > 1:
                raise InvalidQuery(f"{name} may be given once", field=name)
            chosen[spec.name] = parse_time(raw[0], name)
            continue
        if len(raw) > max_values:
            raise InvalidQuery(
                f"{name} lists {len(raw)} values; the limit is {max_values}", field=name
            )
        chosen[spec.name] = tuple(dict.fromkeys(_one_value(spec, value, name) for value in raw))
    return EventFilter(**chosen)  # type: ignore[arg-type]  # keys are EventFilter fields


def group_params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Query-string pairs grouped by name, repeated names kept in order."""
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name, []).append(value)
    return grouped


def filter_field_names() -> set[str]:
    """The Python names of every EventFilter field (checked against FILTER_FIELDS in tests)."""
    return {f.name for f in fields(EventFilter) if not f.name.startswith("_")}
