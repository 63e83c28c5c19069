"""Export file formats: NDJSON, CSV and Parquet writers fed one batch of events at a time.

Every format has the same columns under the same names (the storage column names). A writer
holds at most one batch (Parquet: one row group) before handing bytes to its sink, so memory
does not grow with the number of events exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, BinaryIO, Literal, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from caliper_store.query.events import event_json
from caliper_store.storage.search import RECORD_COLUMNS, EventRecord

ExportFormat = Literal["ndjson", "csv", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("ndjson", "csv", "parquet")
MEDIA_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
SUFFIXES: dict[ExportFormat, str] = {"ndjson": ".ndjson", "csv": ".csv", "parquet": ".parquet"}

UTC_MICROS = pa.timestamp("us", tz="UTC")
# Arrow type of each exported column; times become real timestamps for query engines.
ARROW_TYPES: dict[str, pa.DataType] = {
    **{name: pa.string() for name in RECORD_COLUMNS},
    "seq": pa.int64(),
    "api_key_id": pa.int32(),
    "receipt_id": pa.int64(),
    "is_extension": pa.bool_(),
    "has_derived_id": pa.bool_(),
    "event_time": UTC_MICROS,
    "received_at": UTC_MICROS,
    "raw": pa.string(),
}
TIME_COLUMNS = ("event_time", "received_at")
# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) sends
# the reader's data away). OWASP's CSV injection advice: prefix such a text cell with a quote.
# https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_columns(*, with_raw: bool) -> tuple[str, ...]:
    """The columns of an export, in order."""
    return (*RECORD_COLUMNS, "raw") if with_raw else RECORD_COLUMNS


def arrow_schema(*, with_raw: bool) -> pa.Schema:
    """The Parquet schema of an export."""
    return pa.schema(
        [pa.field(name, ARROW_TYPES[name]) for name in export_columns(with_raw=with_raw)]
    )


class RowWriter(Protocol):
    """Writes batches of events to a binary sink in one format."""

    def write(self, batch: Sequence[EventRecord]) -> None:
        """Add a batch of events."""

    def close(self) -> None:
        """Finish the file (Parquet writes its footer here); the sink stays open."""


class NdjsonWriter:
    """One JSON object per line, raw event spliced in as sent."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def write(self, batch: Sequence[EventRecord]) -> None:
        """Add a batch of events."""
        self._sink.write(
            b"".join(
                orjson.dumps(event_json(record), option=orjson.OPT_APPEND_NEWLINE)
                for record in batch
            )
        )

    def close(self) -> None:
        """Nothing to finish."""


def _csv_value(value: Any) -> Any:
    """A CSV cell: text that a spreadsheet would run as a formula is quoted; numbers stay."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CsvWriter:
    """RFC 4180 CSV with a header row; empty cells for missing values, raw JSON as text.

    Every text cell that starts like a formula gets a leading ``'`` (``FORMULA_STARTS``).
    """

    def __init__(self, sink: BinaryIO, *, with_raw: bool) -> None:
        self._sink = sink
        self._columns = export_columns(with_raw=with_raw)
        self._getter = attrgetter(*self._columns)
        self._sink.write((",".join(self._columns) + "\r\n").encode("utf-8"))

    def write(self, batch: Sequence[EventRecord]) -> None:
        """Add a batch of events."""
        text = io.StringIO()
        rows = csv.writer(text)
        rows.writerows([_csv_value(value) for value in self._getter(record)] for record in batch)
        self._sink.write(text.getvalue().encode("utf-8"))

    def close(self) -> None:
        """Nothing to finish."""


class ParquetWriter:
    """Parquet with typed columns; batches are buffered up to one row group, then written."""

    def __init__(
        self,
        sink: BinaryIO,
        *,
        with_raw: bool,
        row_group_events: int,
        row_group_bytes: int | None = None,
    ) -> None:
        self._schema = arrow_schema(with_raw=with_raw)
        self._columns = export_columns(with_raw=with_raw)
        self._row_group_events = row_group_events
        # Raw events may be as large as a body: a row group of them is bounded in bytes too.
        self._row_group_bytes = row_group_bytes
        self._buffered: list[pa.RecordBatch] = []
        self._buffered_events = 0
        self._buffered_bytes = 0
        self._writer = pq.ParquetWriter(sink, self._schema)

    def _arrow(self, batch: Sequence[EventRecord]) -> pa.RecordBatch:
        arrays = []
        for name in self._columns:
            values = [getattr(record, name) for record in batch]
            if name in TIME_COLUMNS:
                arrays.append(pa.array(values, pa.string()).cast(UTC_MICROS))
            else:
                arrays.append(pa.array(values, ARROW_TYPES[name]))
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _flush(self) -> None:
        if self._buffered:
            table = pa.Table.from_batches(self._buffered, schema=self._schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._buffered = []
            self._buffered_events = 0
            self._buffered_bytes = 0

    def write(self, batch: Sequence[EventRecord]) -> None:
        """Add a batch of events; a full row group goes to the sink."""
        if not batch:
            return
        self._buffered.append(self._arrow(batch))
        self._buffered_events += len(batch)
        self._buffered_bytes += sum(len(record.raw or "") for record in batch)
        is_full_in_bytes = (
            self._row_group_bytes is not None and self._buffered_bytes >= self._row_group_bytes
        )
        if self._buffered_events >= self._row_group_events or is_full_in_bytes:
            self._flush()

    def close(self) -> None:
        """Write the last row group and the footer."""
        self._flush()
        self._writer.close()


def open_writer(
    export_format: ExportFormat,
    sink: BinaryIO,
    *,
    with_raw: bool,
    row_group_events: int,
    row_group_bytes: int | None = None,
) -> RowWriter:
    """A writer of ``export_format`` onto ``sink``."""
    if export_format == "ndjson":
        return NdjsonWriter(sink)
    if export_format == "csv":
        return CsvWriter(sink, with_raw=with_raw)
    return ParquetWriter(
        sink,
        with_raw=with_raw,
        row_group_events=row_group_events,
        row_group_bytes=row_group_bytes,
    )
