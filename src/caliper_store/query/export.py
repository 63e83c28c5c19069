"""Exports of any filtered set of events: streamed to one sink, or laid out by day for a lake.

Events are read in keyset batches in event-time order and written as they come, so an export
of ten million events holds one batch (Parquet: one row group) in memory, never the result.
The partitioned layout is Hive style, ``dt=YYYY-MM-DD/part-00000.parquet`` by UTC day of
``event_time``, which DuckDB (``hive_partitioning``), Spark and Trino read as it is. Each file is
written under a dot-name and renamed when complete, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from caliper_store.config import Settings
from caliper_store.errors import InvalidQuery
from caliper_store.query.events import (
    QueryLimits,
    order_by,
    parse_flag,
    parse_order,
    refuse_unknown,
)
from caliper_store.query.filters import EventFilter, build_filter
from caliper_store.query.formats import (
    EXPORT_FORMATS,
    SUFFIXES,
    ExportFormat,
    RowWriter,
    open_writer,
)
from caliper_store.storage import Store
from caliper_store.storage.search import EventRecord, OrderBy

EXPORT_PARAMS = ("format", "raw", "order")
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How to export: format, raw or not, and the batch sizes that bound memory."""

    format: ExportFormat
    with_raw: bool
    batch_events: int
    row_group_events: int
    file_events: int
    by: OrderBy = "event_time"
    max_read_bytes: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        export_format: ExportFormat,
        *,
        with_raw: bool,
        by: OrderBy = "event_time",
    ) -> ExportOptions:
        """Options with the batch sizes of the settings."""
        return cls(
            format=export_format,
            with_raw=with_raw,
            by=by,
            batch_events=settings.export_batch_events,
            row_group_events=settings.export_row_group_events,
            file_events=settings.export_file_events,
            max_read_bytes=settings.max_read_bytes,
        )


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What ``GET /api/export`` asked for."""

    filter: EventFilter
    format: ExportFormat
    with_raw: bool
    by: OrderBy


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    events: int
    files: list[Path]


def parse_format(value: str, name: str = "format") -> ExportFormat:
    """One of the export formats.

    Raises:
        InvalidQuery: naming the parameter.
    """
    for known in EXPORT_FORMATS:
        if value.lower() == known:
            return known
    raise InvalidQuery(
        f"{name} must be one of {', '.join(EXPORT_FORMATS)}, got {value[:20]!r}", field=name
    )


def parse_export_request(params: Mapping[str, Sequence[str]], limits: QueryLimits) -> ExportRequest:
    """Read an export request from query parameters: filters, ``format``, ``raw``, ``order``.

    Raises:
        InvalidQuery: an unknown parameter or a value that cannot be read, naming it.
    """
    refuse_unknown(params, EXPORT_PARAMS)
    formats = params.get("format", ())
    return ExportRequest(
        filter=build_filter(params, max_values=limits.max_filter_values),
        format=parse_format(formats[-1]) if formats else "ndjson",
        with_raw=parse_flag(params.get("raw", ()), "raw", default=True),
        by=_export_order(params.get("order", ())),
    )


def _export_order(values: Sequence[str]) -> OrderBy:
    order = parse_order(values, default="asc")
    if order == "desc":
        raise InvalidQuery("an export is ordered asc (event time) or received", field="order")
    return order_by(order)


class _Chunks(io.RawIOBase):
    """A write-only sink that keeps what was written until it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]  # bytes-like in, count out, as RawIOBase
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks = []
        return data


def _batches(
    store: Store, event_filter: EventFilter, options: ExportOptions
) -> Iterator[list[EventRecord]]:
    return store.events.batches(
        event_filter.conditions,
        batch_events=options.batch_events,
        with_raw=options.with_raw,
        by=options.by,
        max_raw_bytes=options.max_read_bytes,
    )


def _writer(options: ExportOptions, sink: BinaryIO) -> RowWriter:
    return open_writer(
        options.format,
        sink,
        with_raw=options.with_raw,
        row_group_events=options.row_group_events,
        row_group_bytes=options.max_read_bytes,
    )


def stream_export(
    store: Store, event_filter: EventFilter, options: ExportOptions
) -> Iterator[bytes]:
    """The export as byte chunks, one per batch read, for an HTTP response.

    Everything that can fail before the first byte runs here, before this returns: the first
    database read, and encoding the first batch. An HTTP answer can still say 400 or 503 then;
    once the first chunk is sent, a failure can only cut the stream.

    Raises:
        StorageUnavailable: the first batch could not be read.
    """
    batches = _batches(store, event_filter, options)
    first = next(batches, None)
    sink = _Chunks()
    writer = _writer(options, sink)  # type: ignore[arg-type]  # a binary sink, as BinaryIO
    if first is not None:
        writer.write(first)
    return _rest_of_stream(sink.take(), batches, writer, sink)


def _rest_of_stream(
    head: bytes, batches: Iterator[list[EventRecord]], writer: RowWriter, sink: _Chunks
) -> Iterator[bytes]:
    if head:
        yield head
    for batch in batches:
        writer.write(batch)
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    yield sink.take()


def export_to_stream(
    store: Store,
    event_filter: EventFilter,
    options: ExportOptions,
    output: BinaryIO,
    on_progress: Progress | None = None,
) -> int:
    """Write the export to an open binary file; return the number of events."""
    writer = _writer(options, output)
    total = 0
    for batch in _batches(store, event_filter, options):
        writer.write(batch)
        total += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
    writer.close()
    output.flush()
    return total


class _PartFile:
    """One file of a partitioned export, written under a dot-name until it is complete."""

    def __init__(self, final: Path, options: ExportOptions) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.temporary = final.with_name("." + final.name + ".tmp")
        self.events = 0
        self._file = self.temporary.open("wb")
        self._writer = _writer(options, self._file)

    def write(self, batch: Sequence[EventRecord]) -> None:
        self._writer.write(batch)
        self.events += len(batch)

    def finish(self) -> Path:
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.temporary.rename(self.final)
        return self.final


def _refuse_non_empty(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidQuery(
            f"{directory} exists and is not an empty folder; a partitioned export writes a "
            "new folder (it never mixes with or overwrites an older export)",
            field="output",
        )


def export_partitioned(
    store: Store,
    event_filter: EventFilter,
    options: ExportOptions,
    directory: Path,
    on_progress: Progress | None = None,
) -> ExportSummary:
    """Write ``directory/dt=YYYY-MM-DD/part-NNNNN.<format>``, one or more files per UTC day.

    Raises:
        InvalidQuery: ``directory`` exists and is not empty, or the export is ordered by
            received time (days follow event time, so files are written in that order).
    """
    if options.by != "event_time":
        raise InvalidQuery("a partitioned export is ordered by event time", field="order")
    _refuse_non_empty(directory)
    suffix = SUFFIXES[options.format]
    files: list[Path] = []
    current: _PartFile | None = None
    day = ""
    part = 0
    total = 0
    for batch in _batches(store, event_filter, options):
        start = 0
        while start < len(batch):
            batch_day = batch[start].event_time[:10]
            if current is not None and (batch_day != day or current.events >= options.file_events):
                files.append(current.finish())
                current = None
            if current is None:
                part = part + 1 if batch_day == day else 0
                day = batch_day
                current = _PartFile(directory / f"dt={day}" / f"part-{part:05d}{suffix}", options)
            end = start
            room = options.file_events - current.events
            while end < len(batch) and end - start < room and batch[end].event_time[:10] == day:
                end += 1
            current.write(batch[start:end])
            start = end
        total += len(batch)
        if on_progress is not None:
            on_progress(len(batch))
    if current is not None:
        files.append(current.finish())
    return ExportSummary(total, files)
