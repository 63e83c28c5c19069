"""Ingest rules: a TOML file of rules that drop, redact, truncate and pseudonymize events.

Rules run in the web process on each parsed item, before it is read into columns, so the raw
JSON, the columns, the rollups and the quarantine all hold what the rules left (ingest
normalizes the item after :meth:`KeyRules.transform`). A rule applies to every key, or to the
keys it names by label or id. Within one rule its actions run in the order redact, truncate_ip,
pseudonymize; rules run in file order. ``drop`` is decided on the event as it would be stored,
by the first drop rule that matches.

Paths are RFC 9535 JSONPath queries relative to each item (``jsonpath-rfc9535``), found as
:mod:`caliper_store.privacy.paths` plans them: all paths of a key's rules are looked up in one
pass over each item, then each step acts on what its path found, in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import socket
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jsonpath_rfc9535
import orjson

from caliper_store.config import Settings
from caliper_store.errors import ConfigurationError
from caliper_store.privacy.paths import Found, Hit, Location, PathPlan, Removed, RulePath
from caliper_store.privacy.pseudonyms import Pseudonymizer, load_pseudonymizer
from caliper_store.storage import ApiKey, EventRow, Store
from caliper_store.vocab import term_from_iri

Action = Literal["redact", "truncate_ip", "pseudonymize"]
ACTIONS: tuple[Action, ...] = ("redact", "truncate_ip", "pseudonymize")
RULE_FIELDS = frozenset({"keys", "drop", "description", *ACTIONS})
# drop's fields, and the EventRow column each is matched against.
DROP_FIELDS: Mapping[str, str] = {
    "type": "event_type",
    "action": "action",
    "edApp": "ed_app_id",
    "objectType": "object_type",
}
# Terms are compared as Caliper terms, so a rule may give the full IRI of a type or action.
TERM_FIELDS = frozenset({"type", "action", "objectType"})

_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_DECODE_LINE = re.compile(r"at line (\d+)")


class RulesProblem(NamedTuple):
    """One error in a rules file: where it is and what is wrong."""

    line: int
    rule: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", rule {self.rule}" if self.rule is not None else "")
        return f"{where}: {self.message}"


class RulesError(ConfigurationError):
    """A rules file that cannot be used; every problem found is listed."""

    def __init__(self, path: str, problems: list[RulesProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(problem) for problem in problems)
        super().__init__(f"rules file {path}: {shown}", field="rules_file")


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]`` of the file."""

    number: int
    line: int
    key_labels: frozenset[str] | None
    key_ids: frozenset[int]
    drop: Mapping[str, frozenset[str]] | None
    paths: Mapping[Action, tuple[RulePath, ...]]

    def applies_to(self, key: ApiKey) -> bool:
        """Whether the rule is for this key (every key when it names none)."""
        if self.key_labels is None:
            return True
        return key.id in self.key_ids or key.label in self.key_labels

    def drops(self, row: EventRow) -> bool:
        """Whether this rule drops the event (every field it gives matches)."""
        if self.drop is None:
            return False
        return all(getattr(row, DROP_FIELDS[name]) in values for name, values in self.drop.items())


class Change(NamedTuple):
    """What one rule did to one value of an item (for ``rules test``)."""

    rule: int
    action: str
    path: str


@dataclass(frozen=True, slots=True)
class _Step:
    rule: int
    action: Action
    path: RulePath


def _json_path(location: Location) -> str:
    return "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f"[{orjson.dumps(part).decode()}]"
        for part in location
    )


# IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) are cut as the IPv4 address they carry.
_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def truncated_ip(value: str) -> str | None:
    """The address (or comma-separated addresses) cut to /24 of IPv4 and /48 of IPv6.

    None when any part is no IP address: such a value is removed rather than kept whole.
    The C library's strict parser (no leading zeros, no short forms) reads each address,
    several times faster than :mod:`ipaddress` on a path every event takes.
    """
    kept = []
    for part in value.split(","):
        text = part.strip()
        try:
            packed = socket.inet_pton(socket.AF_INET, text)
            kept.append(socket.inet_ntop(socket.AF_INET, packed[:3] + bytes(1)))
            continue
        except (OSError, ValueError):  # ValueError: an embedded NUL
            pass
        try:
            packed = socket.inet_pton(socket.AF_INET6, text)
        except (OSError, ValueError):
            return None
        if packed.startswith(_MAPPED_PREFIX):
            kept.append("::ffff:" + socket.inet_ntop(socket.AF_INET, packed[12:15] + bytes(1)))
        else:
            kept.append(socket.inet_ntop(socket.AF_INET6, packed[:6] + bytes(10)))
    return ", ".join(kept)


def _remove(hits: Iterable[Hit]) -> None:
    # Indices of one list go from the last, so removing one does not move the others.
    def position(hit: Hit) -> int:
        return hit.name if isinstance(hit.name, int) else -1

    for hit in sorted(hits, key=position, reverse=True):
        container, name = hit.container, hit.name
        if isinstance(container, dict):
            container.pop(str(name), None)
        elif isinstance(name, int) and name < len(container):
            del container[name]


def _replace(hit: Hit, value: Any) -> None:
    hit.container[hit.name] = value  # type: ignore[index]  # a list's name is an int


def _replace_everywhere(node: Any, replaced: Mapping[Any, str]) -> Any:
    """``node`` with every scalar value equal to a replaced one swapped for its pseudonym."""
    if isinstance(node, dict):
        for name, value in node.items():
            if isinstance(value, dict | list):
                _replace_everywhere(value, replaced)
            elif isinstance(value, str | int) and not isinstance(value, bool) and value in replaced:
                node[name] = replaced[value]
    elif isinstance(node, list):
        for position, value in enumerate(node):
            if isinstance(value, dict | list):
                _replace_everywhere(value, replaced)
            elif isinstance(value, str | int) and not isinstance(value, bool) and value in replaced:
                node[position] = replaced[value]
    return node


@dataclass(frozen=True, slots=True)
class KeyRules:
    """The rules that apply to one key, ready to run on its items."""

    rule_set_id: int | None
    steps: tuple[_Step, ...]
    drop_rules: tuple[Rule, ...]
    pseudonymizer: Pseudonymizer | None
    # How the steps' paths are found in an item (the same order as the steps).
    plan: PathPlan = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", PathPlan(step.path for step in self.steps))

    def transform(
        self, item: dict[str, Any], raw: str, changes: list[Change] | None = None
    ) -> bool:
        """Redact, truncate and pseudonymize ``item`` in place; whether it may have changed.

        ``raw`` is the item's JSON text before any rule ran. ``changes`` collects what was done.
        False means no path found anything.
        """
        found = self.plan.find_all(item, raw)
        if not found:
            return False
        replaced: dict[Any, str] = {}
        replaced_count = 0
        for position in sorted(found):
            hits = found[position]
            if not hits:  # all inside what an earlier step removed
                continue
            step = self.steps[position]
            if step.action == "redact":
                self._remove(found, position, hits, item, raw)
                if changes is not None:
                    self._note(changes, step, hits, "redacted")
            elif step.action == "truncate_ip":
                for hit in hits:
                    self._truncate(found, position, hit, item, raw, changes)
            else:
                for hit in hits:
                    target = self._pseudonymize(hit, replaced)
                    if target is not None:
                        replaced_count += 1
                        if changes is not None:
                            self._note(changes, step, [target], "pseudonymized")
        if replaced and self._appears_elsewhere(raw, replaced, replaced_count):
            _replace_everywhere(item, replaced)
        return True

    def _truncate(
        self,
        found: Found,
        position: int,
        hit: Hit,
        item: dict[str, Any],
        raw: str,
        changes: list[Change] | None,
    ) -> None:
        value = hit.value
        if value is None or value == "":
            return
        cut = truncated_ip(value) if isinstance(value, str) else None
        if cut is None:
            self._remove(found, position, [hit], item, raw)
        else:
            _replace(hit, cut)
        if changes is not None:
            what = "truncated" if cut is not None else "removed (not an IP address)"
            self._note(changes, self.steps[position], [hit], what)

    def _pseudonymize(self, hit: Hit, replaced: dict[Any, str]) -> Hit | None:
        """Put the pseudonym in place of the id found (an entity's own id); where, if done."""
        value = hit.value
        if isinstance(value, dict):  # an entity: its id stands for it
            name = "id" if "id" in value else "@id"
            hit = Hit(value, name, (*hit.location, name))
            value = value.get(name)
        if type(value) is not str and (type(value) is not int or isinstance(value, bool)):
            return None
        if value == "":
            return None
        assert self.pseudonymizer is not None  # load_rules refuses pseudonyms without a secret
        text = value if type(value) is str else str(value)
        pseudonym = self.pseudonymizer.pseudonym(text)
        if pseudonym == value:  # already one
            return None
        replaced[value] = pseudonym
        replaced[text] = pseudonym
        _replace(hit, pseudonym)
        return hit

    def _remove(
        self, found: Found, position: int, gone: list[Hit], item: dict[str, Any], raw: str
    ) -> None:
        """Remove what step ``position`` found, keeping the later steps' hits true."""
        affected = self.plan.affected_by(position)
        later = [
            other for other in found if other > position and (affected is None or other in affected)
        ]
        if not later:
            _remove(gone)
            return
        removed = Removed(gone)
        _remove(gone)
        for other in later:
            # Removing a list element moves the later ones: those steps look again.
            found[other] = (
                self.plan.find(other, item, raw)
                if removed.is_shifting
                else removed.outside(found[other])
            )

    @staticmethod
    def _appears_elsewhere(raw: str, replaced: Mapping[Any, str], replaced_count: int) -> bool:
        # The walk costs more than counting: most ids appear once, or only where a path named.
        seen = sum(raw.count(orjson.dumps(value).decode()) for value in replaced)
        return seen > replaced_count

    @staticmethod
    def _note(changes: list[Change], step: _Step, hits: Iterable[Hit], what: str) -> None:
        changes.extend(Change(step.rule, what, _json_path(hit.location)) for hit in hits)

    @property
    def transforms(self) -> bool:
        """Whether any rule changes items (rather than only dropping some)."""
        return bool(self.steps)

    def dropping_rule(self, row: EventRow) -> int | None:
        """The number of the first rule that drops this event, if any does."""
        for rule in self.drop_rules:
            if rule.drops(row):
                return rule.number
        return None


@dataclass(frozen=True)
class RuleBook:
    """A whole rules file, compiled: what the server runs and each receipt names."""

    rules: tuple[Rule, ...]
    path: str
    text: str
    pseudonymizer: Pseudonymizer | None
    rule_set_id: int | None = None
    _per_key: dict[tuple[int, str], KeyRules | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def digest(self) -> str:
        """SHA-256 of the file's text: the version each receipt records."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def needs_pseudonyms(self) -> bool:
        """Whether a rule pseudonymizes (so a secret is required)."""
        return any(rule.paths.get("pseudonymize") for rule in self.rules)

    def for_key(self, key: ApiKey) -> KeyRules | None:
        """The rules for this key, or None when none applies (kept per key id and label)."""
        memo = (key.id, key.label)
        if memo not in self._per_key:
            rules = [rule for rule in self.rules if rule.applies_to(key)]
            steps = tuple(
                _Step(rule.number, action, path)
                for rule in rules
                for action in ACTIONS
                for path in rule.paths.get(action, ())
            )
            drops = tuple(rule for rule in rules if rule.drop is not None)
            self._per_key[memo] = (
                KeyRules(self.rule_set_id, steps, drops, self.pseudonymizer)
                if steps or drops
                else None
            )
        return self._per_key[memo]


class _Reader:
    """Reads a parsed rules file into rules, collecting every problem with its line."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [n for n, line in enumerate(self.lines, 1) if _RULE_HEADER.match(line)]
        self.problems: list[RulesProblem] = []

    def line_of(self, number: int | None, name: str | None = None) -> int:
        """The line of rule ``number``'s field ``name`` (or of the rule, or of a top-level key)."""
        if number is None or number > len(self.headers):
            start, end = 1, (self.headers[0] if self.headers else len(self.lines) + 1)
        else:
            start = self.headers[number - 1]
            end = self.headers[number] if number < len(self.headers) else len(self.lines) + 1
        if name is not None:
            field_line = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*[=.]")
            for line_number in range(start, end):
                if field_line.match(self.lines[line_number - 1]):
                    return line_number
        return start

    def problem(self, number: int | None, name: str | None, message: str) -> None:
        """Record a problem of rule ``number`` at its field ``name``."""
        self.problems.append(RulesProblem(self.line_of(number, name), number, message))

    def strings(self, number: int, name: str, value: Any) -> list[str] | None:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.problem(number, name, f"{name} must be a string or a non-empty list of strings")
            return None
        return value

    def paths(self, number: int, action: Action, value: Any) -> tuple[RulePath, ...]:
        texts = self.strings(number, action, value)
        compiled = []
        for text in texts or ():
            try:
                path = RulePath.compile(text)
            except jsonpath_rfc9535.JSONPathError as error:
                self.problem(number, action, f"{text!r} is not an RFC 9535 JSONPath: {error}")
                continue
            if not path.query.segments:
                self.problem(number, action, f"{text!r} names the whole event; name a field")
                continue
            compiled.append(path)
        return tuple(compiled)

    def drop(self, number: int, value: Any) -> Mapping[str, frozenset[str]] | None:
        if not isinstance(value, dict) or not value:
            self.problem(number, "drop", "drop must be a table such as { type = [...] }")
            return None
        matched: dict[str, frozenset[str]] = {}
        for name, given in value.items():
            if name not in DROP_FIELDS:
                known = ", ".join(DROP_FIELDS)
                self.problem(number, "drop", f"drop cannot match {name!r}; it matches {known}")
                continue
            values = self.strings(number, "drop", given)
            if values is not None:
                terms = (term_from_iri(v) for v in values) if name in TERM_FIELDS else values
                matched[name] = frozenset(terms)
        return matched or None

    def keys(self, number: int, value: Any) -> tuple[frozenset[str], frozenset[int]] | None:
        if not isinstance(value, list) or not value:
            self.problem(number, "keys", "keys must be a non-empty list of key labels or ids")
            return None
        labels = frozenset(v for v in value if isinstance(v, str))
        ids = frozenset(v for v in value if isinstance(v, int) and not isinstance(v, bool))
        if len(labels) + len(ids) != len(set(value)):
            self.problem(number, "keys", "keys must be labels (strings) or ids (integers)")
        return labels, ids | {int(label) for label in labels if label.isdigit()}

    def rule(self, number: int, table: Any) -> Rule | None:
        if not isinstance(table, dict):
            self.problem(number, None, "a rule must be a [[rule]] table")
            return None
        for name in table:
            if name not in RULE_FIELDS:
                known = ", ".join(sorted(RULE_FIELDS))
                self.problem(number, name, f"unknown field {name!r} (a rule has {known})")
        if not any(name in table for name in ("drop", *ACTIONS)):
            self.problem(
                number,
                None,
                "the rule does nothing: give drop, redact, truncate_ip or pseudonymize",
            )
        keys = self.keys(number, table["keys"]) if "keys" in table else None
        drop = self.drop(number, table["drop"]) if "drop" in table else None
        paths = {
            action: self.paths(number, action, table[action])
            for action in ACTIONS
            if action in table
        }
        return Rule(
            number=number,
            line=self.line_of(number),
            key_labels=keys[0] if keys else None,
            key_ids=keys[1] if keys else frozenset(),
            drop=drop,
            paths=paths,
        )


def parse_rules(text: str, path: str = "<rules>") -> tuple[Rule, ...]:
    """The rules of a rules file's text.

    Raises:
        RulesError: listing every problem, each with its line and rule number.
    """
    reader = _Reader(text)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _DECODE_LINE.search(str(error))
        line = int(found.group(1)) if found else max(len(reader.lines), 1)
        rule = sum(1 for header in reader.headers if header <= line) or None
        raise RulesError(path, [RulesProblem(line, rule, f"not valid TOML: {error}")]) from error
    for name in document:
        if name != "rule":
            reader.problem(None, name, f"unknown top-level key {name!r}; rules are [[rule]] tables")
    tables = document.get("rule", [])
    if not isinstance(tables, list):
        reader.problem(None, "rule", "rule must be written as [[rule]] tables")
        tables = []
    rules = [reader.rule(number, table) for number, table in enumerate(tables, 1)]
    if reader.problems:
        raise RulesError(path, reader.problems)
    return tuple(rule for rule in rules if rule is not None)


def load_rules(path: str, pseudonymizer: Pseudonymizer | None) -> RuleBook:
    """The rules file at ``path``, compiled, refusing anything it cannot apply.

    Raises:
        RulesError: the file is broken (every problem named).
        ConfigurationError: the file cannot be read, or a rule pseudonymizes and no secret is
            configured.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(
            f"cannot read rules_file {path}: {error}", field="rules_file"
        ) from error
    book = RuleBook(parse_rules(text, path), path, text, pseudonymizer)
    if book.needs_pseudonyms and pseudonymizer is None:
        raise ConfigurationError(
            f"rules file {path} pseudonymizes, and no pseudonym secret is set: set "
            "pseudonym_key_file (CALIPER_STORE_PSEUDONYM_KEY_FILE) or "
            "CALIPER_STORE_PSEUDONYM_KEY",
            field="pseudonym_key_file",
        )
    return book


@dataclass(frozen=True, slots=True)
class Privacy:
    """What a server process needs of the privacy settings: its rules and pseudonym secret."""

    rules: RuleBook | None
    pseudonymizer: Pseudonymizer | None


def load_privacy(settings: Settings) -> Privacy:
    """The rules file and pseudonym secret the settings name, checked; refuses broken ones.

    Raises:
        RulesError: the rules file is broken.
        ConfigurationError: it cannot be read, or it pseudonymizes without a secret.
    """
    pseudonymizer = load_pseudonymizer(settings.pseudonym_key_file, settings.pseudonym_key)
    rules = load_rules(settings.rules_file, pseudonymizer) if settings.rules_file else None
    return Privacy(rules, pseudonymizer)


def take_into_use(privacy: Privacy, store: Store, now: str) -> Privacy:
    """Record the rules version this server runs with; the rules, now naming their rule set."""
    book = privacy.rules
    rule_set_id = store.use_rule_set(
        digest=book.digest if book else None,
        path=book.path if book else "",
        text=book.text if book else "",
        now=now,
    )
    if book is None:
        return privacy
    return dataclasses.replace(privacy, rules=dataclasses.replace(book, rule_set_id=rule_set_id))


def recommended_rules() -> str:
    """The recommended rules file shipped with the store (``caliper-store rules example``)."""
    return (resources.files("caliper_store.privacy") / "recommended-rules.toml").read_text(
        encoding="utf-8"
    )
