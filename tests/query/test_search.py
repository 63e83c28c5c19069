"""Every filter, alone and combined, returns exactly the events it names; pages miss nothing.

The store is filled through the real ingest path (prepare_request, commit_batch) with the
shared corpus and generated Learn- and Canvas-like events. The expected answer of each query
is computed in Python from the full list of events, independently of the SQL.
"""

from __future__ import annotations

import random

import pytest
from tests.fixtures.events import ingest_corpus, ingest_generated

from caliper_store.config import Settings
from caliper_store.query import FILTER_FIELDS, QueryLimits, parse_event_query, search_page
from caliper_store.query.filters import FilterField
from caliper_store.storage import Store
from caliper_store.storage.search import EventRecord

LIMITS = QueryLimits.from_settings(Settings())
ALL_FIELDS = {spec.name: spec for spec in FILTER_FIELDS}


@pytest.fixture
def filled(store: Store) -> Store:
    _, key = store.keys.create(label="loader", now="2024-01-01T00:00:00.000000Z")
    _, other = store.keys.create(label="second", now="2024-01-01T00:00:00.000000Z")
    ingest_corpus(store, key)
    ingest_generated(store, key, 300, seed=1)
    ingest_generated(store, other, 100, seed=2)
    return store


def everything(store: Store) -> list[EventRecord]:
    return read_all(store, {})


def read_all(
    store: Store, params: dict[str, list[str]], page_size: int = 1000
) -> list[EventRecord]:
    """Every page of a query, following cursors."""
    found: list[EventRecord] = []
    cursor: str | None = None
    while True:
        query_params = {**params, "limit": [str(page_size)]}
        if cursor:
            query_params["cursor"] = [cursor]
        page = search_page(store, parse_event_query(query_params, LIMITS))
        found.extend(page.events)
        cursor = page.next_cursor
        if cursor is None:
            return found


def matches(record: EventRecord, spec: FilterField, values: list[str]) -> bool:
    value = getattr(record, spec.column)
    if spec.kind == "since":
        return bool(value >= values[0])
    if spec.kind == "until":
        return bool(value < values[0])
    if spec.kind == "int":
        return value in {int(v) for v in values}
    return value in values


def expected(records: list[EventRecord], chosen: dict[str, list[str]]) -> set[int]:
    return {
        record.seq
        for record in records
        if all(matches(record, ALL_FIELDS[name], values) for name, values in chosen.items())
    }


def as_params(chosen: dict[str, list[str]]) -> dict[str, list[str]]:
    return {ALL_FIELDS[name].param: values for name, values in chosen.items()}


def sample_values(records: list[EventRecord], spec: FilterField, rng: random.Random) -> list[str]:
    if spec.kind in ("since", "until"):
        times = sorted(getattr(record, spec.column) for record in records)
        return [times[rng.randrange(len(times))]]
    present = sorted({str(getattr(record, spec.column)) for record in records} - {"None"})
    return rng.sample(present, min(len(present), rng.choice((1, 1, 2))))


def test_the_store_holds_corpus_and_generated_events(filled: Store) -> None:
    records = everything(filled)
    assert len(records) > 400
    assert {r.caliper_version for r in records} == {"1.0", "1.1", "1.2"}
    assert {r.api_key_id for r in records} == {1, 2}
    assert any(r.actor_external_id and r.actor_external_id.startswith("L") for r in records)
    assert any(r.actor_external_id and r.actor_external_id.startswith("C") for r in records)


@pytest.mark.parametrize("name", [spec.name for spec in FILTER_FIELDS])
def test_each_filter_alone_returns_exactly_its_events(filled: Store, name: str) -> None:
    records = everything(filled)
    spec = ALL_FIELDS[name]
    rng = random.Random(name)
    for _ in range(4):
        chosen = {name: sample_values(records, spec, rng)}
        want = expected(records, chosen)
        got = [record.seq for record in read_all(filled, as_params(chosen), page_size=37)]
        assert len(got) == len(set(got)), "an event came twice"
        assert set(got) == want, chosen
        if spec.kind not in ("since", "until"):
            assert want, f"{chosen} should match something"


def test_filters_combined_return_the_intersection(filled: Store) -> None:
    records = everything(filled)
    rng = random.Random(5)
    names = [spec.name for spec in FILTER_FIELDS if spec.name != "event_id"]
    matched_something = 0
    for _ in range(60):
        picked = rng.sample(names, rng.choice((2, 2, 3)))
        # Draw values from one event so combinations are not all empty.
        anchor = records[rng.randrange(len(records))]
        chosen: dict[str, list[str]] = {}
        for name in picked:
            spec = ALL_FIELDS[name]
            value = getattr(anchor, spec.column)
            if value is None:
                continue
            if spec.kind == "until":
                later = [
                    getattr(r, spec.column) for r in records if getattr(r, spec.column) > value
                ]
                if later:
                    chosen[name] = [min(later)]
            else:
                chosen[name] = [str(value)]
        want = expected(records, chosen)
        got = [r.seq for r in read_all(filled, as_params(chosen), page_size=50)]
        assert sorted(got) == sorted(want), chosen
        matched_something += bool(want)
    assert matched_something > 40


def test_iri_forms_of_terms_find_the_same_events(filled: Store) -> None:
    by_term = read_all(filled, {"type": ["NavigationEvent"], "action": ["NavigatedTo"]})
    by_iri = read_all(
        filled,
        {
            "type": ["http://purl.imsglobal.org/caliper/v1/NavigationEvent"],
            "action": ["http://purl.imsglobal.org/vocab/caliper/v1/action#NavigatedTo"],
        },
    )
    assert by_term
    assert [r.seq for r in by_term] == [r.seq for r in by_iri]


@pytest.mark.parametrize("order", ["asc", "desc", "received"])
def test_pages_are_ordered_by_time_then_seq(filled: Store, order: str) -> None:
    records = read_all(filled, {"order": [order]}, page_size=23)
    keys = [(r.received_at if order == "received" else r.event_time, r.seq) for r in records]
    assert keys == sorted(keys, reverse=order == "desc")
    assert len({r.seq for r in records}) == len(records) == len(everything(filled))


def test_raw_is_returned_only_when_asked(filled: Store) -> None:
    plain = search_page(filled, parse_event_query({"limit": ["5"]}, LIMITS))
    with_raw = search_page(filled, parse_event_query({"limit": ["5"], "raw": ["1"]}, LIMITS))
    assert all(r.raw is None for r in plain.events)
    assert all(r.raw and r.raw.startswith("{") for r in with_raw.events)


@pytest.mark.parametrize("order", ["asc", "desc", "received"])
def test_pagination_returns_every_event_once_while_new_events_arrive(
    filled: Store, order: str
) -> None:
    """Events stored between pages, with times before, inside and after the pages read so
    far, never make an event repeat or go missing."""
    before = {r.seq for r in everything(filled)}
    _, key = filled.keys.create(label="late", now="2024-01-01T00:00:00.000000Z")
    seen: list[int] = []
    cursor: str | None = None
    round_number = 0
    while True:
        params = {"order": [order], "limit": ["40"]}
        if cursor:
            params["cursor"] = [cursor]
        page = search_page(filled, parse_event_query(params, LIMITS))
        seen.extend(r.seq for r in page.events)
        cursor = page.next_cursor
        if cursor is None:
            break
        round_number += 1
        # Generated events fall all over March 2024, so some land behind the cursor.
        ingest_generated(filled, key, 10, seed=100 + round_number)
    assert len(seen) == len(set(seen)), "an event came twice"
    assert before <= set(seen), "an event stored before paging began was skipped"
    assert round_number > 5
