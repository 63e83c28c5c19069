"""Parquet exports: typed columns, written a row group at a time (pyarrow).

Imported by :func:`caliper_store.query.formats.open_writer` only when a Parquet file is asked
for, so that pyarrow does not load with every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from caliper_store.query.formats import export_columns
from caliper_store.storage.search import RECORD_COLUMNS, EventRecord

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


def arrow_schema(*, with_raw: bool) -> pa.Schema:
    """The Parquet schema of an export."""
    return pa.schema(
        [pa.field(name, ARROW_TYPES[name]) for name in export_columns(with_raw=with_raw)]
    )


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
