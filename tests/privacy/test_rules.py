"""The rules file: every kind of broken file named by line and rule; what each action does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from caliper_store.errors import ConfigurationError
from caliper_store.privacy import (
    Pseudonymizer,
    RulesError,
    load_rules,
    parse_rules,
    recommended_rules,
    truncated_ip,
)
from caliper_store.storage import ApiKey

SECRET = Pseudonymizer(b"a test secret of enough bytes")
LEARN_KEY = ApiKey(3, "abcd", "Blackboard Learn", ("ingest",), "active", False, "", None, "")
CANVAS_KEY = ApiKey(4, "efgh", "Canvas", ("ingest",), "active", False, "", None, "")


def _problems(text: str) -> list[tuple[int, int | None, str]]:
    with pytest.raises(RulesError) as raised:
        parse_rules(text)
    return [(problem.line, problem.rule, problem.message) for problem in raised.value.problems]


@pytest.mark.parametrize(
    ("text", "line", "rule", "words"),
    [
        ('[[rule]]\nredact = ["$.a"\n', 2, 1, "not valid TOML"),
        ('[[rule]]\nredact = ["$.a"]\n\n[[rule]]\nredcat = ["$.b"]\n', 5, 2, "unknown field"),
        ('[[rule]]\ntruncate_ip = ["$.a["]\n', 2, 1, "not an RFC 9535 JSONPath"),
        ('[[rule]]\nredact = ["$"]\n', 2, 1, "whole event"),
        ("[[rule]]\nredact = []\n", 2, 1, "non-empty list"),
        ("[[rule]]\nredact = [3]\n", 2, 1, "list of strings"),
        ('[[rule]]\ndrop = { colour = ["red"] }\n', 2, 1, "cannot match 'colour'"),
        ('[[rule]]\ndrop = "ToolUseEvent"\n', 2, 1, "drop must be a table"),
        ('[[rule]]\nkeys = "Learn"\nredact = ["$.a"]\n', 2, 1, "keys must be a non-empty list"),
        ('[[rule]]\nkeys = [true]\nredact = ["$.a"]\n', 2, 1, "labels (strings) or ids"),
        ('[[rule]]\ndescription = "nothing"\n', 1, 1, "does nothing"),
        ('version = 2\n[[rule]]\nredact = ["$.a"]\n', 1, None, "unknown top-level key"),
        ("rule = 3\n", 1, None, "[[rule]] tables"),
    ],
)
def test_a_broken_rules_file_names_the_line_and_rule_of_the_error(
    text: str, line: int, rule: int | None, words: str
) -> None:
    problems = _problems(text)
    assert any(
        found_line == line and found_rule == rule and words in message
        for found_line, found_rule, message in problems
    ), problems


def test_every_problem_of_a_file_is_listed_not_only_the_first() -> None:
    text = '[[rule]]\nredact = ["$.a["]\n\n[[rule]]\nfoo = 1\nredact = ["$.b"]\n'
    assert {(line, rule) for line, rule, _ in _problems(text)} == {(2, 1), (5, 2)}


def test_a_rules_file_that_pseudonymizes_is_refused_without_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\npseudonymize = ["$.actor.id"]\n')
    with pytest.raises(ConfigurationError, match="pseudonym_key_file"):
        load_rules(str(path), None)
    assert load_rules(str(path), SECRET).needs_pseudonyms


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        Pseudonymizer(b"short")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("192.168.17.201", "192.168.17.0"),
        ("2001:db8:abcd:12:34::1", "2001:db8:abcd::"),
        ("::ffff:10.1.2.3", "::ffff:10.1.2.0"),
        ("10.0.0.9, 172.16.5.4", "10.0.0.0, 172.16.5.0"),
        ("not an address", None),
        ("10.0.0.9:443", None),
    ],
)
def test_addresses_are_cut_to_their_network(given: str, kept: str | None) -> None:
    assert truncated_ip(given) == kept


def _book(text: str) -> Any:
    from caliper_store.privacy import RuleBook

    return RuleBook(parse_rules(text), "rules.toml", text, SECRET)


def _apply(text: str, event: dict[str, Any], key: ApiKey = LEARN_KEY) -> dict[str, Any]:
    rules = _book(text).for_key(key)
    changed = copy.deepcopy(event)
    if rules is not None:
        rules.transform(changed, orjson.dumps(event).decode())
    return changed


LEARN_EVENT: dict[str, Any] = {
    "id": "urn:uuid:00000000-0000-4000-8000-000000000001",
    "type": "NavigationEvent",
    "actor": {"id": "https://lms.example.edu/users/s1", "type": "Person"},
    "action": "NavigatedTo",
    "object": {
        "id": "https://lms.example.edu/content/1",
        "type": "Attempt",
        "assignee": {"id": "https://lms.example.edu/users/s1", "type": "Person"},
    },
    "membership": {"id": "m1", "member": "https://lms.example.edu/users/s1"},
    "eventTime": "2024-03-04T10:00:00.000Z",
    "extensions": {
        "bb:user.externalId": "S-0001",
        "bb:request.headers.ipAddress": "192.168.17.201",
        "bb:request.headers.agent": "Mozilla/5.0 (X11; Linux)",
        "nested": {"deeper": {"bb:request.headers.ipAddress": "2001:db8:1:2::9"}},
    },
}


def test_redact_removes_dotted_extension_keys_at_any_depth() -> None:
    result = _apply("[[rule]]\nredact = [\"$..['bb:request.headers.agent']\"]\n", LEARN_EVENT)
    assert "bb:request.headers.agent" not in result["extensions"]
    assert result["extensions"]["bb:user.externalId"] == "S-0001"


def test_truncate_ip_keeps_the_network_everywhere_the_path_finds() -> None:
    result = _apply(
        "[[rule]]\ntruncate_ip = [\"$..['bb:request.headers.ipAddress']\"]\n", LEARN_EVENT
    )
    assert result["extensions"]["bb:request.headers.ipAddress"] == "192.168.17.0"
    nested = result["extensions"]["nested"]["deeper"]["bb:request.headers.ipAddress"]
    assert nested == "2001:db8:1::"


def test_a_pseudonym_replaces_the_value_wherever_it_appears_in_the_event() -> None:
    result = _apply('[[rule]]\npseudonymize = ["$.actor.id"]\n', LEARN_EVENT)
    pseudonym = result["actor"]["id"]
    assert pseudonym.startswith(f"urn:caliper-store:pseudonym:{SECRET.key_id}:")
    assert result["object"]["assignee"]["id"] == pseudonym
    assert result["membership"]["member"] == pseudonym
    assert "users/s1" not in orjson.dumps(result).decode()


def test_pseudonyms_are_stable_across_keys_and_idempotent() -> None:
    text = '[[rule]]\npseudonymize = ["$.actor.id"]\n'
    first = _apply(text, LEARN_EVENT, LEARN_KEY)
    assert _apply(text, LEARN_EVENT, CANVAS_KEY)["actor"]["id"] == first["actor"]["id"]
    assert _apply(text, first)["actor"]["id"] == first["actor"]["id"]  # not a pseudonym's pseudonym


def test_a_rule_for_named_keys_leaves_the_others_alone() -> None:
    text = '[[rule]]\nkeys = ["Blackboard Learn"]\nredact = ["$.extensions"]\n'
    assert "extensions" not in _apply(text, LEARN_EVENT, LEARN_KEY)
    assert _apply(text, LEARN_EVENT, CANVAS_KEY) == LEARN_EVENT
    by_id = '[[rule]]\nkeys = [4]\nredact = ["$.extensions"]\n'
    assert "extensions" not in _apply(by_id, LEARN_EVENT, CANVAS_KEY)


def test_the_recommended_rules_are_valid_and_pseudonymize() -> None:
    book = _book(recommended_rules())
    assert book.needs_pseudonyms
    assert not any(rule.drop for rule in book.rules)
