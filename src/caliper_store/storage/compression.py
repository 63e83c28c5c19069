"""Raw events kept as zstd frames, compressed with dictionaries trained on the store's own events.

One Caliper event of 2,000 bytes shares most of its text with every other event of its
producer (contexts, IRI prefixes, types, user agents): a dictionary trained on a few thousand
of them brings it to about 180 bytes at level 3 (plain zstd: 820), at 6 µs an event to
compress and 3 µs to read back (``bench/space.py``).

The writer's codec trains its first dictionary in the background once ``train_events``
events have passed through it, and a new one whenever the ratio of a window of that many
events drifts past ``retrain_ratio`` times the ratio the dictionary reached on its own
samples. A dictionary is inserted in the same transaction as the first rows compressed with
it, and is never deleted: each row names its dictionary (``raw_dictionary``; 0 is zstd without
one, NULL a row from before revision 0005 whose JSON is still plain text in ``raw``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import zstandard
from sqlalchemy import Connection, select

from caliper_store.storage.schema import raw_dictionaries

logger = logging.getLogger(__name__)

NO_DICTIONARY = 0
# Samples past this size teach a dictionary little and would hold memory for a window.
MAX_SAMPLE_BYTES = 64 * 1024
# zstd's guidance: samples of about a hundred times the dictionary's size.
SAMPLE_BYTES_PER_DICTIONARY_BYTE = 100


@dataclass(frozen=True, slots=True)
class CompressionSettings:
    """How raw events are compressed (named settings in ``config.Settings``)."""

    level: int = 3
    dictionary_bytes: int = 64 * 1024
    train_events: int = 5_000
    retrain_ratio: float = 1.25


@dataclass(frozen=True, slots=True)
class Dictionary:
    """One trained dictionary and what it achieved on the samples it was trained on."""

    content: bytes
    level: int
    sample_events: int
    sample_bytes: int
    compressed_bytes: int

    @property
    def ratio(self) -> float:
        """Compressed bytes per raw byte on its own samples."""
        return self.compressed_bytes / max(self.sample_bytes, 1)


# The columns of raw_dictionaries a Dictionary holds, in its field order (besides id and
# created_at): the backends' SQL is written from them.
DICTIONARY_FIELDS = tuple(item.name for item in fields(Dictionary))


def dictionary_sql(placeholder: str) -> tuple[str, str]:
    """The SELECT of one dictionary by id and the INSERT of one, in a driver's placeholders."""
    columns = ", ".join(DICTIONARY_FIELDS)
    marks = ", ".join([placeholder] * (len(DICTIONARY_FIELDS) + 1))
    return (
        f"SELECT {columns} FROM raw_dictionaries WHERE id = {placeholder}",
        f"INSERT INTO raw_dictionaries (created_at, {columns}) VALUES ({marks})",
    )


def dictionary_from_row(row: Sequence[Any] | None) -> Dictionary:
    """A Dictionary from a row of ``dictionary_sql``'s SELECT."""
    if row is None:
        raise LookupError("the raw dictionary a row names is not stored")
    content, *figures = row
    return Dictionary(bytes(content), *figures)


def dictionary_values(dictionary: Dictionary, created_at: str) -> tuple[Any, ...]:
    """The parameters of ``dictionary_sql``'s INSERT."""
    return (created_at, *(getattr(dictionary, name) for name in DICTIONARY_FIELDS))


class DictionaryTransaction(Protocol):
    """What the codec needs from the writer's transaction."""

    def newest_dictionary_id(self) -> int:
        """The highest dictionary id stored, or 0."""

    def stored_dictionary(self, dictionary_id: int) -> Dictionary:
        """One stored dictionary, with what it achieved on its samples."""

    def insert_dictionary(self, dictionary: Dictionary, created_at: str) -> int:
        """Store a dictionary and return its id."""


def train(samples: list[bytes], settings: CompressionSettings) -> Dictionary:
    """Train a dictionary on ``samples`` and measure its ratio on them.

    Raises:
        zstandard.ZstdError: too few or too uniform samples to train on.
    """
    training: list[bytes | bytearray | memoryview[int]] = list(samples)
    trained = zstandard.train_dictionary(settings.dictionary_bytes, training)
    zstd = compressor(trained.as_bytes(), settings.level)
    compressed = sum(len(zstd.compress(sample)) for sample in samples)
    return Dictionary(
        content=trained.as_bytes(),
        level=settings.level,
        sample_events=len(samples),
        sample_bytes=sum(len(sample) for sample in samples),
        compressed_bytes=compressed,
    )


def compressor(content: bytes | None, level: int) -> zstandard.ZstdCompressor:
    """A zstd compressor for raw events, with a dictionary's content or without one."""
    # No checksum (the database pages have their own) and no dictionary id in the frame (the
    # row names it): 4 + 4 bytes less an event. The content size stays: readers need it.
    if content is None:
        return zstandard.ZstdCompressor(level=level, write_checksum=False)
    return zstandard.ZstdCompressor(
        level=level,
        dict_data=zstandard.ZstdCompressionDict(content),
        write_checksum=False,
        write_dict_id=False,
    )


@dataclass
class _Window:
    """The events the codec has compressed since its dictionary changed or its last check."""

    events: int = 0
    raw_bytes: int = 0
    compressed_bytes: int = 0
    samples: list[bytes] = field(default_factory=list)
    sample_bytes: int = 0

    def add(self, raw: bytes, compressed: int, sample_cap: int) -> None:
        self.events += 1
        self.raw_bytes += len(raw)
        self.compressed_bytes += compressed
        if len(raw) <= MAX_SAMPLE_BYTES and self.sample_bytes + len(raw) <= sample_cap:
            self.samples.append(raw)
            self.sample_bytes += len(raw)

    @property
    def ratio(self) -> float:
        return self.compressed_bytes / max(self.raw_bytes, 1)


class Encoder:
    """Compresses the raw events of one write transaction with one dictionary."""

    def __init__(self, dictionary_id: int, compressor: zstandard.ZstdCompressor) -> None:
        self.dictionary_id = dictionary_id
        self.compressor = compressor
        self.window = _Window()
        self.sample_cap = 0

    def encode(self, raw: str) -> bytes:
        """The zstd frame of one raw event."""
        data = raw.encode("utf-8")
        frame: bytes = self.compressor.compress(data)
        self.window.add(data, len(frame), self.sample_cap)
        return frame


class RawCodec:
    """One process's compression of raw events, and its cache of dictionaries for reading.

    Writing is done by one thread at a time (the writer's); reading by any number of threads,
    each with decompressors of its own (a zstd context serves one thread at a time).
    """

    def __init__(self, settings: CompressionSettings, *, now: Callable[[], str]) -> None:
        self.settings = settings
        self._now = now
        self._contents: dict[int, bytes] = {}
        self._contents_lock = threading.Lock()
        self._local = threading.local()
        self._current_id: int | None = None  # None: not yet read from the database
        self._current_ratio = 1.0
        self._compressor = compressor(None, settings.level)
        self._window = _Window()
        self._wants_dictionary = False
        self._trainer: threading.Thread | None = None
        self._trained: Dictionary | None = None
        self._sample_cap = settings.dictionary_bytes * SAMPLE_BYTES_PER_DICTIONARY_BYTE

    @property
    def dictionary_id(self) -> int | None:
        """The dictionary new rows are compressed with (0: none yet; None: not yet looked up)."""
        return self._current_id

    # -- writing -----------------------------------------------------------------------------

    def begin(self, transaction: DictionaryTransaction) -> Encoder:
        """The encoder of one write transaction; stores a freshly trained dictionary in it."""
        # Read before any training starts below: a dictionary trained while this transaction
        # is open is stored by the next one, however soon the trainer finishes.
        trained = self._trained if self._trainer is None else None
        if self._current_id is None:
            self._adopt_stored(transaction, transaction.newest_dictionary_id())
        elif self._wants_dictionary and self._trainer is None and trained is None:
            self._wants_dictionary = False
            newest = transaction.newest_dictionary_id()
            if newest > (self._current_id or 0):  # another process trained one meanwhile
                self._adopt_stored(transaction, newest)
            else:
                self._start_training(self._window.samples)
            self._window = _Window()
        if trained is not None:
            dictionary_id = transaction.insert_dictionary(trained, self._now())
            encoder = Encoder(dictionary_id, compressor(trained.content, trained.level))
            # committed() starts a new window with this transaction's events: it may sample
            # as many as a window holds, or a drift seen in it would train on nothing.
            encoder.sample_cap = self._sample_cap
        else:
            assert self._current_id is not None
            encoder = Encoder(self._current_id, self._compressor)
            encoder.sample_cap = self._sample_cap - self._window.sample_bytes
        return encoder

    def committed(self, encoder: Encoder) -> None:
        """Account for a committed transaction: adopt its dictionary, decide on training."""
        if encoder.dictionary_id != self._current_id:
            trained = self._trained
            assert trained is not None
            self._remember(encoder.dictionary_id, trained.content)
            self._use(encoder.dictionary_id, trained, encoder)
            self._trained = None
            self._wants_dictionary = False  # a window seen while it was trained asked for it
            self._window = _Window()
        window, batch = self._window, encoder.window
        window.events += batch.events
        window.raw_bytes += batch.raw_bytes
        window.compressed_bytes += batch.compressed_bytes
        window.samples.extend(batch.samples)
        window.sample_bytes += batch.sample_bytes
        if window.events < self.settings.train_events:
            return
        drifted = window.ratio > self._current_ratio * self.settings.retrain_ratio
        if self._current_id == NO_DICTIONARY or drifted:
            if drifted and self._current_id:
                logger.info(
                    "raw compression ratio drifted from %.3f to %.3f: training a new dictionary",
                    self._current_ratio,
                    window.ratio,
                )
            self._wants_dictionary = True  # taken up by the next begin(), with these samples
            return
        self._window = _Window()

    def join_training(self, timeout_s: float | None = None) -> None:
        """Wait for a dictionary being trained (tests, and the command that converts rows)."""
        trainer = self._trainer
        if trainer is not None:
            trainer.join(timeout_s)

    def _start_training(self, samples: list[bytes]) -> None:
        def run() -> None:
            try:
                self._trained = train(samples, self.settings)
            except zstandard.ZstdError as error:
                logger.warning("raw compression: no dictionary trained this time (%s)", error)
            finally:
                self._trainer = None

        self._trainer = threading.Thread(target=run, name="caliper-dictionary", daemon=True)
        self._trainer.start()

    def _adopt_stored(self, transaction: DictionaryTransaction, dictionary_id: int) -> None:
        if dictionary_id == NO_DICTIONARY:
            self._current_id = NO_DICTIONARY
            self._compressor = compressor(None, self.settings.level)
            self._current_ratio = 1.0
            return
        stored = transaction.stored_dictionary(dictionary_id)
        self._remember(dictionary_id, stored.content)
        self._current_id = dictionary_id
        self._compressor = compressor(stored.content, self.settings.level)
        self._current_ratio = stored.ratio
        self._window = _Window()

    def _use(self, dictionary_id: int, dictionary: Dictionary, encoder: Encoder) -> None:
        self._current_id = dictionary_id
        self._compressor = encoder.compressor
        self._current_ratio = dictionary.ratio

    def _remember(self, dictionary_id: int, content: bytes) -> None:
        with self._contents_lock:
            self._contents[dictionary_id] = content

    # -- reading -----------------------------------------------------------------------------

    def decode(
        self, connection: Connection, raw: str | None, frame: bytes | None, dictionary_id: Any
    ) -> str:
        """The raw JSON of one stored row, exactly as it was sent."""
        if dictionary_id is None:
            return raw or ""
        assert frame is not None, "a row naming a dictionary has a frame"
        data: bytes = self._decompressor(connection, int(dictionary_id)).decompress(bytes(frame))
        return data.decode("utf-8")

    def _decompressor(
        self, connection: Connection, dictionary_id: int
    ) -> zstandard.ZstdDecompressor:
        cache: dict[int, zstandard.ZstdDecompressor] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
        found = cache.get(dictionary_id)
        if found is None:
            content = None
            if dictionary_id != NO_DICTIONARY:
                content = self._contents.get(dictionary_id)
                if content is None:
                    content = load_dictionary(connection, dictionary_id)
                    self._remember(dictionary_id, content)
            found = cache[dictionary_id] = decompressor(content)
        return found


def decompressor(content: bytes | None) -> zstandard.ZstdDecompressor:
    """A zstd decompressor for frames made by :func:`compressor` with the same content."""
    if content is None:
        return zstandard.ZstdDecompressor()
    return zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(content))


def load_dictionary(connection: Connection, dictionary_id: int) -> bytes:
    """The content of one stored dictionary (dictionaries are never deleted)."""
    content = connection.scalar(
        select(raw_dictionaries.c.content).where(raw_dictionaries.c.id == dictionary_id)
    )
    if content is None:
        raise LookupError(f"raw dictionary {dictionary_id} is not stored")
    return bytes(content)
