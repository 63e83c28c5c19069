"""Export file formats: NDJSON, CSV and Parquet writers fed one batch of events at a time.

Every format has the same columns under the same names (the storage column names); Parquet's
writer is in caliper_store.query.parquet. A writer holds at most one batch (Parquet: one row
group) before handing bytes to its sink, so memory does not grow with the number of events
exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, BinaryIO, Literal, Protocol

import orjson

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

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...) sends
# the reader's data away). OWASP's CSV injection advice: prefix such a text cell with a quote.
# https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_columns(*, with_raw: bool) -> tuple[str, ...]:
    """The columns of an export, in order."""
    return (*RECORD_COLUMNS, "raw") if with_raw else RECORD_COLUMNS


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
    # pyarrow is imported here, not with this module: a tenth of a second of every process's
    # start (the server's, each CLI command's) that only a Parquet export uses.
    from caliper_store.query.parquet import ParquetWriter

    return ParquetWriter(
        sink,
        with_raw=with_raw,
        row_group_events=row_group_events,
        row_group_bytes=row_group_bytes,
    )
