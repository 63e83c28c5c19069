"""JSON in and out of the ingest path: orjson for speed, the standard library where it falls short.

orjson reads integers beyond 64 bits as floats, which would change the raw event we promise to
keep as sent; a body that may hold a number of 19 or more digits therefore takes the exact
(slower) standard-library parser. The scan maps every byte to "digit or not" with
``bytes.translate`` and looks for 19 digits in a row: two C passes, about a twentieth of a regex
search's cost. Such runs are common inside strings (7% of Learn envelopes carry one in a hex
session id, a third of 500-event envelopes), so each run found is kept only when it stands where
a JSON number can start; the bytes before each run are read, never the whole body again.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from caliper_store.errors import MalformedEnvelope


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


# 2**63 has 19 digits: any integer orjson cannot hold exactly has at least that many.
LONG_DIGIT_RUN = b"0" * 19
DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


# A number token begins at the start of the body or after one of these (then whitespace, then
# a minus). A digit run inside a string can stand there too; that only costs speed.
BEFORE_NUMBER = b":,["
JSON_WHITESPACE = b" \t\n\r"
MINUS = ord("-")


def may_hold_long_integer(body: bytes) -> bool:
    """Whether the body may hold an integer of 19 or more digits (maybe past 64 bits)."""
    digits = body.translate(DIGITS_TO_ZERO)
    # ``find`` returns the first place that matches, so each hit is where a run of digits begins.
    start = digits.find(LONG_DIGIT_RUN)
    while start != -1:
        if _may_start_number(body, start):
            return True
        end = digits.find(b" ", start)
        if end == -1:
            return False
        start = digits.find(LONG_DIGIT_RUN, end)
    return False


def _may_start_number(body: bytes, start: int) -> bool:
    """Whether the digits at ``start`` may begin a number token rather than sit in a string."""
    place = start - 1
    if place >= 0 and body[place] == MINUS:
        place -= 1
    while place >= 0 and body[place] in JSON_WHITESPACE:
        place -= 1
    return place < 0 or body[place] in BEFORE_NUMBER


# What one parsed JSON value may cost at most, beyond the bytes of its text: a container is a
# 56-64 byte object plus its slot in its parent, a string 49-80 bytes of header, a float 24.
# Measured with tracemalloc: `[{},{},...]` 72 bytes a value, `[{"a":1.5},...]` 72 a separator,
# a Learn envelope 63 a value (2.7 bytes per byte of JSON).
PARSED_BYTES_PER_VALUE = 80
# Every value but the outermost follows one of these bytes outside strings ('[' or ',' in an
# array, ':' in an object), and every object key follows '{' or ','.
VALUE_SEPARATORS = b"{[,:"
NOT_SEPARATORS = bytes(byte for byte in range(256) if byte not in VALUE_SEPARATORS)
# Bodies this short are bounded by their length alone, sparing the count (Canvas, Moodle).
UNCOUNTED_BODY_BYTES = 16 * 1024
COUNT_SLICE_BYTES = 1024 * 1024


def parsed_memory_bound(body: bytes) -> int:
    """An upper bound, in bytes, on the memory the body's parsed JSON can take.

    Separators inside strings are counted too, which only makes the bound looser (about twice
    the real figure for Caliper, whose IRIs and times are full of colons). One C pass over the
    body, about a sixth of the cost of parsing it; a short body is bounded by its length.
    """
    size = len(body)
    if size <= UNCOUNTED_BODY_BYTES:
        return size * (PARSED_BYTES_PER_VALUE + 1)
    # A slice at a time: translate holds the GIL, 24 ms for 16 MiB, and the event loop waits.
    separators = sum(
        len(body[start : start + COUNT_SLICE_BYTES].translate(None, NOT_SEPARATORS))
        for start in range(0, size, COUNT_SLICE_BYTES)
    )
    return size + (separators + 1) * PARSED_BYTES_PER_VALUE


def parse_json(body: bytes) -> Any:
    """Parse a request body as JSON, keeping big integers exact.

    Raises:
        MalformedEnvelope: the body is not valid UTF-8 JSON, or nests deeper than the
            parser's limit.
    """
    if not may_hold_long_integer(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise MalformedEnvelope(f"the body is not valid JSON: {error}", field="body") from error
    return _parse_exact(body)


def _parse_exact(body: bytes) -> Any:
    try:
        document = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
        # Lone surrogates ("\ud800") parse here but are not text; refuse them like orjson does.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
        return document
    except (UnicodeError, ValueError, RecursionError) as error:
        raise MalformedEnvelope(f"the body is not valid JSON: {error}", field="body") from error


def dump_json(value: Any) -> str:
    """Serialize a parsed item compactly, keeping its key order (the raw form we store).

    orjson refuses integers past 64 bits and more than 254 levels of nesting; the standard
    library takes the first, and a walk with a stack of its own the second (the standard
    library recurses, and fails near Python's recursion limit of 1,000: a 500 on an item
    about 960 levels deep, which a parser limit of 1,024 let through).
    """
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        try:
            return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
        except RecursionError:
            return _dump_deep(value)


def _dump_deep(value: Any) -> str:
    """The standard library's compact form of ``value``, built without recursion."""
    out: list[str] = []
    # Each entry is text to write, or an iterator of (prefix, child) still to serialize.
    stack: list[Any] = [iter([("", value)])]
    while stack:
        top = stack[-1]
        if isinstance(top, str):
            out.append(stack.pop())
            continue
        step = next(top, None)
        if step is None:
            stack.pop()
            continue
        prefix, node = step
        out.append(prefix)
        if isinstance(node, dict):
            out.append("{")
            stack.append("}")
            stack.append(
                iter(
                    [
                        (("," if n else "") + json.dumps(str(key)) + ":", child)
                        for n, (key, child) in enumerate(node.items())
                    ]
                )
            )
        elif isinstance(node, list):
            out.append("[")
            stack.append("]")
            stack.append(iter([("," if n else "", child) for n, child in enumerate(node)]))
        else:
            out.append(json.dumps(node, ensure_ascii=True))
    return "".join(out)
