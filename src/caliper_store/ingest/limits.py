"""Structural limits on one item: nesting depth and string length, checked before anything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from caliper_store.storage import Reason


@dataclass(frozen=True, slots=True)
class ItemLimits:
    """The per-item limits, taken from the settings of the same names."""

    max_nesting_depth: int
    max_string_chars: int
    max_id_chars: int


def check_structure(item: Any, raw: str, limits: ItemLimits, path: str) -> Reason | None:
    """Return the first limit the item breaks, or None.

    ``raw`` is the item's compact JSON: when it is shorter than the string limit and holds fewer
    brackets than the depth limit, nothing inside can break either, which spares the walk for
    nearly every real event.
    """
    check_strings = len(raw) > limits.max_string_chars
    # Each level of nesting opens one bracket, so fewer brackets than the limit cannot exceed it.
    check_depth = raw.count("{") + raw.count("[") > limits.max_nesting_depth
    if not (check_strings or check_depth):
        return None
    stack: list[tuple[Any, int]] = [(item, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
            if check_strings:
                for key in node:
                    if len(key) > limits.max_string_chars:
                        return _too_long(path, limits.max_string_chars)
        elif isinstance(node, list):
            children = node
        else:
            if check_strings and isinstance(node, str) and len(node) > limits.max_string_chars:
                return _too_long(path, limits.max_string_chars)
            continue
        if depth > limits.max_nesting_depth:
            return Reason(
                "too_deep",
                path,
                f"the item nests deeper than max_nesting_depth={limits.max_nesting_depth}",
            )
        stack.extend((child, depth + 1) for child in children)
    return None


def _too_long(path: str, limit: int) -> Reason:
    return Reason(
        "string_too_long", path, f"the item holds a string longer than max_string_chars={limit}"
    )
