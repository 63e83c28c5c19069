"""Caliper payloads read from files: JSON, NDJSON, folders of them, gzipped or not, and exports.

A JSON file holds one envelope, one event or a list of them; an NDJSON file one of those a
line. Envelopes are kept as the bytes they were read as (sent as they are, their sensor and
``dataVersion`` included); events are handed on to be batched. Nothing is parsed more than once
and an event's bytes are never re-serialized, so what is sent is what was in the file.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from caliper_store.errors import InvalidQuery

SUFFIXES = (".json", ".ndjson", ".jsonl")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EnvelopeFile:
    """An envelope to send as it is."""

    body: bytes
    event_count: int
    source: str


@dataclass(frozen=True, slots=True)
class LooseEvent:
    """An event to be put in an envelope."""

    body: bytes
    source: str


@dataclass(frozen=True, slots=True)
class ExportedEvent:
    """One line of an NDJSON export: the raw event as stored, and what it was sent with."""

    raw: bytes
    caliper_version: str
    sensor: str | None


Payload = EnvelopeFile | LooseEvent


def payload_files(paths: Sequence[Path]) -> list[Path]:
    """The files to read: each file named, and the payload files under each folder, sorted.

    Raises:
        InvalidQuery: a path does not exist.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                found
                for found in path.rglob("*")
                if found.is_file() and _base_suffix(found) in SUFFIXES
            )
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidQuery(f"{path} is neither a file nor a folder", field="path")
    return files


def read_payloads(files: Sequence[Path], on_bytes: Progress | None = None) -> Iterator[Payload]:
    """Every envelope and event in the files, in order.

    Raises:
        InvalidQuery: a file or line is not JSON, or holds something that is neither an
            envelope nor an event; the message names the file and line.
    """
    for path in files:
        with _open(path) as (stream, position):
            reported = 0
            if _base_suffix(path) == ".json":
                text = stream.read()
                yield from _payloads_of(text, _parse(text, f"{path}"), f"{path}")
                reported = _report(on_bytes, position, reported)
                continue
            for number, line in enumerate(stream, 1):
                line = line.strip()
                if line:
                    where = f"{path}:{number}"
                    yield from _payloads_of(line, _parse(line, where), where)
                reported = _report(on_bytes, position, reported)


def read_export(path: Path, on_bytes: Progress | None = None) -> Iterator[ExportedEvent]:
    """The events of an NDJSON export (``caliper-store export``, with the raw event).

    The raw event is cut out of the line rather than parsed and dumped, so it is sent byte for
    byte as stored. It is the line's last key, and no earlier value can hold the text
    ``,"raw":`` (they are scalars, whose quotes JSON escapes), so its first occurrence is it.

    Raises:
        InvalidQuery: a line is not JSON or has no ``raw`` (exported with ``--no-raw``).
    """
    with _open(path) as (stream, position):
        reported = 0
        for number, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            where = f"{path}:{number}"
            record = _parse(line, where)
            start = line.find(b',"raw":')
            if not isinstance(record, dict) or record.get("raw") is None or start < 0:
                raise InvalidQuery(
                    f"{where} has no raw event: export with --raw (the default) to replay",
                    field="raw",
                )
            yield ExportedEvent(
                raw=line[start + len(b',"raw":') : -1],
                caliper_version=str(record.get("caliper_version") or "1.2"),
                sensor=record.get("sensor"),
            )
            reported = _report(on_bytes, position, reported)


def _payloads_of(text: bytes, document: Any, where: str) -> Iterator[Payload]:
    if isinstance(document, list):
        for index, item in enumerate(document):
            yield from _payloads_of(orjson.dumps(item), item, f"{where}[{index}]")
    elif isinstance(document, dict) and isinstance(document.get("data"), list | dict):
        data = document["data"]
        yield EnvelopeFile(text, len(data) if isinstance(data, list) else 1, where)
    elif isinstance(document, dict):
        yield LooseEvent(text, where)
    else:
        raise InvalidQuery(f"{where} is neither a Caliper envelope nor an event", field="path")


def _parse(text: bytes, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidQuery(f"{where} is not JSON: {error}", field="path") from error


def _base_suffix(path: Path) -> str:
    """The suffix that says the format, under any ``.gz``."""
    return Path(path.stem).suffix.lower() if path.suffix.lower() == ".gz" else path.suffix.lower()


@contextmanager
def _open(path: Path) -> Iterator[tuple[IO[bytes], Callable[[], int]]]:
    """A payload file as binary lines, gunzipped if it ends in ``.gz``, with its read position.

    The position is of the file on disk (compressed bytes for ``.gz``), so a progress bar
    over the files' sizes ends at 100%.
    """
    with path.open("rb") as raw:
        if path.suffix.lower() == ".gz":
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield cast(IO[bytes], unzipped), raw.tell
        else:
            yield raw, raw.tell


def _report(on_bytes: Progress | None, position: Callable[[], int], reported: int) -> int:
    """Report the bytes read since ``reported``; return the new position."""
    now = position()
    if on_bytes is not None and now > reported:
        on_bytes(now - reported)
    return now
