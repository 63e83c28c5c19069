"""Where a rule's JSONPath points in an item: parsed by jsonpath-rfc9535, found fast when simple.

The library parses and checks every path and can answer any RFC 9535 query, but its evaluation
makes a node object for each value it visits, and a recursive descent (``$..``) walks the whole
item once per query. The rules run on every event, and nearly every path is a chain of member
names (``$.actor.extensions['bb:user.externalId']``), maybe after one descent
(``$..['oauth_signature']``, ``$..assignee.id``). Those are found here with dictionary lookups,
and every descent of one item shares one walk, made only when the item's JSON text holds a
name some descent looks for. Any other query (wildcards, slices, filters, several selectors)
is answered by the library.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import jsonpath_rfc9535
import orjson
from jsonpath_rfc9535 import JSONPathQuery
from jsonpath_rfc9535.segments import JSONPathChildSegment, JSONPathRecursiveDescentSegment
from jsonpath_rfc9535.selectors import IndexSelector, NameSelector

Location = tuple[str | int, ...]
Container = dict[str, Any] | list[Any]


class Hit(NamedTuple):
    """One value a path found: the object or array holding it, and its name or index there."""

    container: Container
    name: str | int
    location: Location

    @property
    def value(self) -> Any:
        """The value found."""
        return self.container[self.name]  # type: ignore[index]  # a list's name is an int


def _quoted(name: str) -> str:
    return orjson.dumps(name).decode()


@dataclass(frozen=True, slots=True)
class RulePath:
    """A compiled path, and how it is found.

    ``chain`` holds the member names and indices of a path of plain child steps (after the
    ``descent`` member name when the path starts with ``..['name']``); it is None for a query
    the library answers, and then ``marks`` are the quoted member names an item's JSON text must
    hold for the query to match at all.
    """

    text: str
    query: JSONPathQuery
    descent: str | None
    chain: Location | None
    marks: tuple[str, ...]

    @classmethod
    def compile(cls, text: str) -> RulePath:
        """Parse ``text``.

        Raises:
            jsonpath_rfc9535.JSONPathError: it is not an RFC 9535 query.
        """
        query = jsonpath_rfc9535.compile(text)
        segments = list(query.segments)
        descent = None
        if (
            segments
            and isinstance(segments[0], JSONPathRecursiveDescentSegment)
            and _single_name(segments[0]) is not None
        ):
            descent = _single_name(segments[0])
            segments = segments[1:]
        steps = [_single_step(segment) for segment in segments]
        chain = None if any(step is None for step in steps) else tuple(steps)
        marks = tuple(
            _quoted(name)
            for name in (_single_name(segment) for segment in query.segments)
            if name is not None
        )
        return cls(text, query, descent, chain, marks)  # type: ignore[arg-type]  # no None in it


def _single_name(segment: Any) -> str | None:
    selectors = segment.selectors
    if len(selectors) == 1 and isinstance(selectors[0], NameSelector):
        return str(selectors[0].name)
    return None


def _single_step(segment: Any) -> str | int | None:
    """The member name or index of a child segment with one such selector, else None."""
    if not isinstance(segment, JSONPathChildSegment) or len(segment.selectors) != 1:
        return None
    selector = segment.selectors[0]
    if isinstance(selector, NameSelector):
        return str(selector.name)
    if isinstance(selector, IndexSelector):
        return int(selector.index)
    return None


def _follow(value: Any, location: Location, chain: Location) -> Hit | None:
    """The value at ``chain`` below ``value`` (which is at ``location``), if there is one."""
    container: Any = None
    name: str | int = ""
    for name in chain:
        if isinstance(name, str):
            if not isinstance(value, dict) or name not in value:
                return None
        else:
            if not isinstance(value, list) or not -len(value) <= name < len(value):
                return None
            name = name % len(value)
        container, value = value, value[name]
        location = (*location, name)
    if container is None:
        return None
    return Hit(container, name, location)


def _walk(
    node: Any, location: Location, wanted: frozenset[str], found: dict[str, list[Hit]]
) -> None:
    """Every member named in ``wanted`` at any depth of ``node``, in document order."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in wanted:
                found[name].append(Hit(node, name, (*location, name)))
            if isinstance(value, dict | list):
                _walk(value, (*location, name), wanted, found)
    else:
        for index, value in enumerate(node):
            if isinstance(value, dict | list):
                _walk(value, (*location, index), wanted, found)


Found = dict[int, list[Hit]]


@dataclass(slots=True)
class _Branch:
    """One step of the chains from the item's root: the paths ending here, and what follows."""

    ends: list[int] = field(default_factory=list)
    names: dict[str, _Branch] = field(default_factory=dict)
    indices: dict[int, _Branch] = field(default_factory=dict)

    def below(self, name: str | int) -> _Branch:
        """The branch of the step ``name`` from here, made if new."""
        if isinstance(name, str):
            return self.names.setdefault(name, _Branch())
        return self.indices.setdefault(name, _Branch())


def _collect(value: Any, location: Location, branch: _Branch, found: Found) -> None:
    """Add to ``found`` what the chains below ``branch`` find in ``value``."""
    if isinstance(value, dict):
        for name, below in branch.names.items():
            if name in value:
                _reached(value, name, location, below, found)
    elif isinstance(value, list):
        for index, below in branch.indices.items():
            if -len(value) <= index < len(value):
                _reached(value, index % len(value), location, below, found)


def _reached(
    container: Any, name: str | int, location: Location, branch: _Branch, found: Found
) -> None:
    at = (*location, name)
    if branch.ends:
        hit = Hit(container, name, at)
        for position in branch.ends:
            if position in found:
                found[position].append(hit)
            else:
                found[position] = [hit]
    if branch.names or branch.indices:
        _collect(container[name], at, branch, found)


class PathPlan:
    """How the paths of one key's rules are found in each item.

    Chains from the item's root share a tree of their names, so a missing member ends every
    path below it at once; descents share one walk.
    """

    def __init__(self, paths: Iterable[RulePath]) -> None:
        self.paths = tuple(paths)
        self._root = _Branch()
        self._descents: list[tuple[int, str, RulePath]] = []
        self._queries: list[int] = []
        for position, path in enumerate(self.paths):
            if path.chain is None:
                self._queries.append(position)
            elif path.descent is not None:
                self._descents.append((position, path.descent, path))
            else:
                branch = self._root
                for name in path.chain:
                    branch = branch.below(name)
                branch.ends.append(position)
        self._descent_marks = {name: path.marks[0] for _, name, path in self._descents}
        self._affected = [self._later_overlapping(position) for position in range(len(self.paths))]

    def _later_overlapping(self, position: int) -> frozenset[int] | None:
        """The later paths that may find a value at or inside what path ``position`` finds.

        None when any may: only two chains of member names tell from the paths alone.
        """
        chain = self.paths[position].chain
        if chain is None or self.paths[position].descent is not None:
            return None
        if any(isinstance(name, int) for name in chain):
            return None  # a negative index may name the same element as another
        overlapping = set()
        for later in range(position + 1, len(self.paths)):
            path = self.paths[later]
            if path.chain is None or path.descent is not None or path.chain[: len(chain)] == chain:
                overlapping.add(later)
        return frozenset(overlapping)

    def affected_by(self, position: int) -> frozenset[int] | None:
        """The later paths whose hits may go with what path ``position`` found (None: any)."""
        return self._affected[position]

    def find_all(self, item: dict[str, Any], raw: str) -> Found:
        """What each path finds in ``item`` (``raw`` is its JSON text), by the path's position.

        A path that finds nothing is left out.
        """
        found: Found = {}
        _collect(item, (), self._root, found)
        if self._descents:
            # A name absent from the JSON text is absent from the item: most items need no walk.
            present = frozenset(name for name, mark in self._descent_marks.items() if mark in raw)
            if present:
                walked: dict[str, list[Hit]] = {name: [] for name in present}
                _walk(item, (), present, walked)
                for position, name, path in self._descents:
                    if name in present:
                        hits = _below(walked[name], path.chain)
                        if hits:
                            found[position] = hits
        for position in self._queries:
            hits = self.find(position, item, raw)
            if hits:
                found[position] = hits
        return found

    def find(self, position: int, item: dict[str, Any], raw: str) -> list[Hit]:
        """What path ``position`` finds in ``item`` as it is now, found on its own."""
        path = self.paths[position]
        if path.chain is None:
            if not all(mark in raw for mark in path.marks):
                return []
            return [
                Hit(cast(Container, node.parent.value), node.location[-1], tuple(node.location))
                for node in path.query.find(item)
                if node.location and node.parent is not None
            ]
        if path.descent is None:
            hit = _follow(item, (), path.chain)
            return [] if hit is None else [hit]
        walked: dict[str, list[Hit]] = {path.descent: []}
        _walk(item, (), frozenset(walked), walked)
        return _below(walked[path.descent], path.chain)


def _below(found: list[Hit], chain: Location | None) -> list[Hit]:
    if not chain:
        return found
    hits = (_follow(hit.value, hit.location, chain) for hit in found)
    return [hit for hit in hits if hit is not None]


class Removed:
    """Values a rule just removed, to tell which later hits went with them."""

    def __init__(self, hits: Iterable[Hit]) -> None:
        self.places: set[Location] = set()
        self.trees: list[Location] = []  # the objects and arrays among them
        self.is_shifting = False  # whether a list element went, moving the later ones
        for hit in hits:
            self.places.add(hit.location)
            if isinstance(hit.value, dict | list):
                self.trees.append(hit.location)
            self.is_shifting = self.is_shifting or isinstance(hit.name, int)

    def outside(self, hits: list[Hit]) -> list[Hit]:
        """``hits`` less those at a removed value's place or inside a removed object or array."""
        return [
            hit
            for hit in hits
            if hit.location not in self.places
            and not any(hit.location[: len(tree)] == tree for tree in self.trees)
        ]
