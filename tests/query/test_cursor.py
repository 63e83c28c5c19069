"""Property-based: whatever a client sends as a cursor, a page request answers or refuses it.

Each example goes the whole way a request goes, through parsing and then the real store on
both backends: a cursor either continues a page or is refused with InvalidQuery naming
``cursor``; no other error (a driver's OverflowError, a time that cannot be bound) escapes.
"""

from __future__ import annotations

import base64

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.fixtures.events import ingest_generated

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery
from caliper_store.query import (
    QueryLimits,
    parse_event_query,
    parse_quarantine_query,
    quarantine_page,
    search_page,
)
from caliper_store.query.quarantine import _fingerprint, build_quarantine_filter
from caliper_store.storage import Store

LIMITS = QueryLimits.from_settings(Settings())
EVENT_PRINT = parse_event_query({}, LIMITS).filter.fingerprint()
QUARANTINE_PRINT = _fingerprint(build_quarantine_filter({}))
# One store serves every example; the examples only read it.
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
times = st.one_of(
    st.text(max_size=40),
    st.datetimes().map(lambda moment: moment.isoformat(timespec="microseconds") + "Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z"),
    json_scalars,
)
# The edges of the id columns (and of orjson, which reads integers up to 2**64 - 1), which
# uniformly drawn integers would seldom hit.
edges = st.sampled_from([0, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -1, -(2**63), -(2**63) - 1])
big_integers = edges | st.integers(-(2**64), 2**64 - 1) | json_scalars
orders = st.sampled_from(["asc", "desc", "received"]) | json_scalars


def as_cursor(payload: object) -> str:
    """Any JSON, in the dress of a cursor (orjson refuses integers past 64 bits: so do we)."""
    try:
        encoded = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        encoded = repr(payload).encode()
    return base64.urlsafe_b64encode(encoded).decode("ascii").rstrip("=")


event_cursors = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=200).map(lambda data: base64.urlsafe_b64encode(data).decode()),
    st.tuples(
        st.just(1) | json_scalars,
        times,
        big_integers,
        orders,
        st.just(EVENT_PRINT) | json_scalars,
    ).map(lambda parts: as_cursor(list(parts))),
    st.lists(json_scalars, max_size=7).map(as_cursor),
)
quarantine_cursors = st.one_of(
    st.text(max_size=300),
    big_integers.map(lambda last_id: as_cursor([1, "q", last_id, QUARANTINE_PRINT])),
    st.tuples(
        st.just(1) | json_scalars,
        st.just("q") | json_scalars,
        big_integers,
        st.just(QUARANTINE_PRINT) | json_scalars,
    ).map(lambda parts: as_cursor(list(parts))),
)


def test_arbitrary_event_cursors_continue_a_page_or_are_refused_naming_cursor(
    store: Store,
) -> None:
    _, key = store.keys.create(label="loader", now="2024-01-01T00:00:00.000000Z")
    ingest_generated(store, key, 20, seed=5)

    @EXAMPLES
    @given(cursor=event_cursors, order=st.sampled_from(["asc", "desc", "received"]))
    @example(
        cursor=as_cursor([1, "2024-01-01T00:00:00.000000Z", 2**63, "asc", EVENT_PRINT]), order="asc"
    )
    def check(cursor: str, order: str) -> None:
        try:
            query = parse_event_query({"cursor": [cursor], "order": [order]}, LIMITS)
        except InvalidQuery as refused:
            refused_field = refused.field
        else:
            search_page(store, query)
            refused_field = None
        assert refused_field in (None, "cursor")

    check()


def test_arbitrary_quarantine_cursors_continue_a_page_or_are_refused_naming_cursor(
    store: Store,
) -> None:
    @EXAMPLES
    @given(cursor=quarantine_cursors)
    @example(cursor=as_cursor([1, "q", 2**63, QUARANTINE_PRINT]))
    def check(cursor: str) -> None:
        try:
            query = parse_quarantine_query({"cursor": [cursor]}, LIMITS)
        except InvalidQuery as refused:
            refused_field = refused.field
        else:
            quarantine_page(store, query)
            refused_field = None
        assert refused_field in (None, "cursor")

    check()
