"""Converting events stored before revision 0005 in place, from plain raw JSON to zstd frames.

Batched and resumable: each batch is one transaction that compresses a run of rows in ``seq``
order, checks that every frame reads back to the very same text, and writes the frame and its
dictionary over the plain JSON at once. A row is therefore plain or converted, never half; a
run killed at any moment keeps its committed batches, and the next run goes on from the first
plain row. The server may ingest and read meanwhile: readers take both forms, and the writer
never touches stored rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import zstandard
from sqlalchemy import bindparam, func, insert, select, update

from caliper_store.errors import CaliperStoreError
from caliper_store.storage.base import Store
from caliper_store.storage.compression import (
    DICTIONARY_FIELDS,
    compressor,
    decompressor,
    load_dictionary,
    train,
)
from caliper_store.storage.schema import raw_dictionaries, utc_text

# Rows converted in one transaction: large enough to amortize the commit, small enough that
# the server's writer waits a few milliseconds for the lock, not seconds.
DEFAULT_BATCH_EVENTS = 2_000


class ConversionMismatch(CaliperStoreError):
    """A frame did not read back to the JSON it was made from: nothing of the batch is written."""


@dataclass(frozen=True, slots=True)
class ConversionPlan:
    """What a conversion will do: how many rows are plain, and the dictionary it will use."""

    plain_events: int
    dictionary_id: int


def plain_event_count(store: Store) -> int:
    """How many events still keep their raw JSON as plain text."""
    table = store.plain_rows_table()
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(table).where(table.c.raw_dictionary.is_(None))
        return int(connection.scalar(query) or 0)


def plan_conversion(store: Store) -> ConversionPlan:
    """Count the plain rows and pick a dictionary: the newest stored, or one trained on them."""
    plain = plain_event_count(store)
    with store.engine.begin() as connection:
        newest = connection.scalar(select(func.max(raw_dictionaries.c.id)))
        if newest is not None or plain == 0:
            return ConversionPlan(plain, int(newest or 0))
        settings = store.raw_codec.settings
        table = store.plain_rows_table()
        samples = [
            raw.encode("utf-8")
            for raw in connection.scalars(
                select(table.c.raw)
                .where(table.c.raw_dictionary.is_(None))
                .order_by(table.c.seq.desc())
                .limit(settings.train_events)
            )
        ]
        try:
            dictionary = train(samples, settings)
        except zstandard.ZstdError:  # too few or too uniform samples: plain zstd still saves much
            return ConversionPlan(plain, 0)
        created = connection.execute(
            insert(raw_dictionaries)
            .values(
                created_at=utc_text(datetime.now(UTC)),
                **{name: getattr(dictionary, name) for name in DICTIONARY_FIELDS},
            )
            .returning(raw_dictionaries.c.id)
        ).scalar_one()
    return ConversionPlan(plain, int(created))


def convert_plain_raw(
    store: Store, plan: ConversionPlan, *, batch_events: int = DEFAULT_BATCH_EVENTS
) -> Iterator[int]:
    """Convert every plain row, one batch per transaction; yield the rows of each batch.

    Raises:
        ConversionMismatch: a frame read back differently (the batch is rolled back).
    """
    content: bytes | None = None
    if plan.dictionary_id:
        with store.engine.connect() as connection:
            content = load_dictionary(connection, plan.dictionary_id)
    level = store.raw_codec.settings.level
    zstd, unzstd = compressor(content, level), decompressor(content)
    table = store.plain_rows_table()
    # event_time lets PostgreSQL find the row's partition; IS NULL skips a row another run
    # converted meanwhile.
    convert = (
        update(table)
        .where(
            table.c.seq == bindparam("row_seq"),
            table.c.event_time == bindparam("row_time"),
            table.c.raw_dictionary.is_(None),
        )
        .values(raw="", raw_zstd=bindparam("frame"), raw_dictionary=plan.dictionary_id)
    )
    last_seq = 0
    while True:
        with store.engine.begin() as connection:
            rows = connection.execute(
                select(table.c.seq, table.c.event_time, table.c.raw)
                .where(table.c.seq > last_seq, table.c.raw_dictionary.is_(None))
                .order_by(table.c.seq)
                .limit(batch_events)
            ).all()
            if not rows:
                return
            changes = []
            for seq, event_time, raw in rows:
                frame = zstd.compress(raw.encode("utf-8"))
                if unzstd.decompress(frame).decode("utf-8") != raw:
                    raise ConversionMismatch(f"event seq {seq} did not read back the same")
                changes.append({"row_seq": seq, "row_time": event_time, "frame": frame})
            connection.execute(convert, changes)
        last_seq = rows[-1].seq
        yield len(rows)
