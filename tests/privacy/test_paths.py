"""Rule paths: the fast ways of finding them agree with the JSONPath library, item by item."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import orjson
import pytest

from caliper_store.privacy import Pseudonymizer, RuleBook, parse_rules, recommended_rules
from caliper_store.privacy.paths import PathPlan, RulePath
from caliper_store.storage import ApiKey
from tests.fixtures.payloads import canvas_event, corpus_dir, corpus_files, load
from tests.reports.course_data import S1, learn_event, learn_grade

SECRET = Pseudonymizer(b"a test secret of enough bytes")
KEY = ApiKey(3, "abcd", "Blackboard Learn", ("ingest",), "active", False, "", None, "")

# Every form the fast paths take (chains, indices, descents with and without a chain after),
# and forms only the library answers (wildcards, several selectors, slices, filters).
PATHS = [
    "$.actor.id",
    "$.actor['@id']",
    "$.actor.extensions['bb:user.externalId']",
    "$.extensions['com.instructure.canvas'].client_ip",
    "$.membership.roles[0]",
    "$.membership.roles[-1]",
    "$.data[1].id",
    "$..id",
    "$..['bb:user.externalId']",
    "$..assignee.id",
    "$..extensions['com.instructure.canvas'].entity_id",
    "$.object.*",
    "$.membership['member','organization']",
    "$.membership.roles[0:2]",
    "$..[?@.type == 'Person'].id",
]


def _learn_view() -> dict[str, Any]:
    """A ViewEvent with what Learn attaches to its actor and its request."""
    event = learn_event(S1, "ViewEvent", "Viewed", "2024-03-04T10:00:00.000Z", label="c")
    event["actor"]["extensions"] = {"bb:user.id": "_4072_1", "bb:user.externalId": "s1146964"}
    event["extensions"]["bb:request.headers.ipAddress"] = "48.202.192.10"
    event["extensions"]["bb:request.headers.agent"] = "Mozilla/5.0 (Macintosh)"
    return event


def _items(leave_out: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Learn- and Canvas-shaped events, and every item of the corpus when it is there (but the
    files named in ``leave_out``)."""
    items = [
        _learn_view(),
        learn_event(S1, "NavigationEvent", "NavigatedTo", "2024-03-04T10:00:00.000Z", label="a"),
        learn_grade(S1, 7.5, "2024-03-04T11:00:00.000Z", label="b"),
        canvas_event(),
        {"data": [{"id": "first"}, {"id": "second", "extensions": {"id": 3}}], "id": "top"},
    ]
    if corpus_dir().is_dir():
        for path in corpus_files(corpus_dir()):
            if path.name in leave_out:
                continue
            payload = load(path)
            found = payload.get("data", [payload]) if isinstance(payload, dict) else payload
            items += [item for item in found if isinstance(item, dict)]
    return items


def _library_only(path: RulePath) -> RulePath:
    return dataclasses.replace(path, chain=None, descent=None)


@pytest.mark.parametrize("text", PATHS)
def test_each_path_finds_what_the_library_finds(text: str) -> None:
    path = RulePath.compile(text)
    fast = PathPlan([path])
    slow = PathPlan([_library_only(path)])
    found_any = False
    for item in _items():
        raw = orjson.dumps(item).decode()
        fast_hits = fast.find_all(item, raw).get(0, [])
        slow_hits = slow.find_all(item, raw).get(0, [])
        by_place = {hit.location: hit.container for hit in slow_hits}
        assert len(by_place) == len(slow_hits) == len(fast_hits), f"{text} in {raw[:200]}"
        assert all(by_place.get(hit.location) is hit.container for hit in fast_hits)
        found_any = found_any or bool(fast_hits)
    assert found_any, f"{text} found nothing: the comparison proved nothing"


def test_a_path_that_is_only_for_the_library_is_answered_by_it() -> None:
    assert RulePath.compile("$.object.*").chain is None
    assert RulePath.compile("$..assignee.id").descent == "assignee"
    assert RulePath.compile("$.membership.roles[-1]").chain == ("membership", "roles", -1)


RULES_IN_EVERY_ORDER = """
[[rule]]
redact = ["$.object.assignee", "$.membership.roles[0]", "$..['bb:user.externalId']"]
truncate_ip = ["$.extensions['com.instructure.canvas'].client_ip", "$.object.assignee.ip"]

[[rule]]
pseudonymize = ["$.actor.id", "$.object.assignee.id", "$.membership.roles[0]", "$..assignee"]
redact = ["$.extensions"]

[[rule]]
pseudonymize = ["$.actor", "$.actor.extensions['com.instructure.canvas'].user_login"]
"""


def test_transform_does_what_the_library_would_step_by_step() -> None:
    """Removals that take later paths' values with them, or move a list's elements, and
    pseudonyms found twice give the item the same as running the library for every step."""
    fast = RuleBook(parse_rules(RULES_IN_EVERY_ORDER), "rules.toml", "", SECRET).for_key(KEY)
    assert fast is not None
    slow = dataclasses.replace(
        fast,
        steps=tuple(
            dataclasses.replace(step, path=_library_only(step.path)) for step in fast.steps
        ),
    )
    for item in _items():
        raw = orjson.dumps(item).decode()
        by_fast, by_slow = copy.deepcopy(item), copy.deepcopy(item)
        fast.transform(by_fast, raw)
        slow.transform(by_slow, raw)
        assert by_fast == by_slow


# Where each producer puts what names a person: every value of these members must be gone.
PERSONAL_MEMBERS = {
    "bb:user.externalId",
    "bb:user.id",
    "bb:request.headers.agent",
    "user_login",
    "user_sis_id",
    "sis_id",
    "user_agent",
    "userAgent",
}
ADDRESS_MEMBERS = {"bb:request.headers.ipAddress", "client_ip", "ipAddress"}


def _values_of(node: Any, names: set[str], found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name in names and isinstance(value, str) and value:
                found.add(value)
            _values_of(value, names, found)
    elif isinstance(node, list):
        for value in node:
            _values_of(value, names, found)
    return found


def test_the_recommended_rules_leave_nothing_personal_in_producers_events() -> None:
    rules = RuleBook(
        parse_rules(recommended_rules()), "recommended", recommended_rules(), SECRET
    ).for_key(KEY)
    assert rules is not None
    checked = 0
    # IMS's example of a sensor's own extension (session.extensions.request), which no producer
    # sends: a campus whose producer puts a user agent there adds that path.
    for item in _items(frozenset({"caliperEventSessionLoggedInExtended.json"})):
        personal = _values_of(item, PERSONAL_MEMBERS, set())
        addresses = _values_of(item, ADDRESS_MEMBERS, set())
        actor = item.get("actor")
        if isinstance(actor, dict) and isinstance(actor.get("id"), str):
            personal.add(actor["id"])
        changed = copy.deepcopy(item)
        rules.transform(changed, orjson.dumps(item).decode())
        kept = orjson.dumps(changed).decode()
        for value in personal | addresses:
            assert orjson.dumps(value).decode() not in kept, (value, kept[:300])
        checked += len(personal | addresses)
    assert checked > 10
