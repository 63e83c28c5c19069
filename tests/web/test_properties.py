"""Property-based: arbitrary JSON never escapes the parser, normalizer or endpoint as an error."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import Client
from tests.fixtures.payloads import canvas_event

from caliper_store.config import Settings
from caliper_store.errors import CaliperStoreError
from caliper_store.ingest import IngestLimits, prepare_request
from caliper_store.storage import ApiKey, EntityRow, EventRow, QuarantineRow

KEY = ApiKey(1, "prefix", "test", ("ingest",), "active", False, "2024-01-01", None, "hash")
STRICT_KEY = ApiKey(1, "prefix", "test", ("ingest",), "active", True, "2024-01-01", None, "hash")
LIMITS = IngestLimits.from_settings(Settings(max_nesting_depth=8, max_string_chars=200))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
caliper_keys = st.sampled_from(
    [
        "@context",
        "id",
        "@id",
        "type",
        "@type",
        "actor",
        "action",
        "object",
        "eventTime",
        "group",
        "session",
        "edApp",
        "membership",
        "data",
        "sensor",
        "dataVersion",
        "sendTime",
    ]
)
# Caliper-shaped documents: known keys with arbitrary values, mixed into real events.
caliper_like = st.dictionaries(caliper_keys, json_values, max_size=10)
mutated_event = st.builds(
    lambda base, change: {**base, **change}, st.just(canvas_event()), caliper_like
)
documents = (
    json_values
    | caliper_like
    | mutated_event
    | st.lists(mutated_event | caliper_like, max_size=5)
    | st.builds(
        lambda items, header: {**header, "data": items},
        st.lists(mutated_event | caliper_like | json_values, max_size=5),
        caliper_like,
    )
)


def body_of(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


@given(documents)
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_is_prepared_or_refused_with_a_store_error(document: Any) -> None:
    for key in (KEY, STRICT_KEY):
        try:
            prepared = prepare_request(
                body_of(document), key=key, limits=LIMITS, received_at="2024-01-01T00:00:00.000000Z"
            )
        except CaliperStoreError:
            continue
        for item in prepared.request.items:
            assert isinstance(item, EventRow | EntityRow | QuarantineRow)
            if isinstance(item, QuarantineRow):
                assert item.reasons
            orjson.loads(item.raw)


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_any_bytes_are_prepared_or_refused_with_a_store_error(body: bytes) -> None:
    with contextlib.suppress(CaliperStoreError):
        prepare_request(body, key=KEY, limits=LIMITS, received_at="2024-01-01T00:00:00.000000Z")


def test_big_integers_are_accepted_not_refused() -> None:
    body = (
        orjson.dumps(canvas_event())[:-1] + b',"extensions2":{"n":123456789012345678901234567890}}'
    )
    prepared = prepare_request(
        body, key=KEY, limits=LIMITS, received_at="2024-01-01T00:00:00.000000Z"
    )
    assert isinstance(prepared.request.items[0], EventRow)
    assert "123456789012345678901234567890" in prepared.request.items[0].raw


def test_arbitrary_json_never_gets_a_5xx_from_the_endpoint(client: Client) -> None:
    seen: set[int] = set()

    @given(documents)
    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    def post(document: Any) -> None:
        response = client.post(body_of(document))
        assert response.status_code in (200, 400, 413, 422), response.text
        if response.status_code != 200:
            assert response.headers["content-type"] == "application/problem+json"
        seen.add(response.status_code)

    post()
    assert httpx.get(client.server.base_url + "/healthz").status_code == 200
    assert {200, 400} <= seen
