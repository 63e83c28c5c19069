"""Group commit: one writer per process commits the items of every waiting request at once.

Requests wait on a future until the transaction holding their items has committed, so a 200
always means durable, while one-event envelopes still reach batch throughput. The queue is
bounded in events: when it is full, ``submit`` raises :class:`Overloaded` at once instead of
letting memory grow. A writer thread takes the batches; a :class:`Committer` commits them, on
that thread (:class:`ThreadCommitter`) or in a child process (``writer_process.WriterProcess``).

The rules for duplicates and conflicts live here, once for every backend: an event id stored
with the same content hash is a duplicate (counted, not stored again); with different content
it is a conflict and goes to quarantine. The backends' unique keys decide what is new.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from caliper_store.errors import (
    AlreadyResolved,
    CaliperStoreError,
    EventConflict,
    Overloaded,
    StorageUnavailable,
    Unauthorized,
)
from caliper_store.observability import (
    COMMIT_BATCH_EVENTS,
    COMMIT_SECONDS,
    COMMIT_WAIT_SECONDS,
    DATABASE_ERRORS,
    OVERLOADED,
    WRITER_QUEUE_EVENTS,
    error_summary,
)
from caliper_store.storage.base import Store, WriteTransaction
from caliper_store.storage.compression import Encoder
from caliper_store.storage.records import (
    DroppedRow,
    EntityRow,
    EventRow,
    ItemVerdict,
    QuarantineRow,
    Reason,
    Receipt,
    Replay,
    WriteRequest,
    conflict_reason,
    dropped_verdict,
    event_verdict,
)
from caliper_store.storage.rollups import StoredEvent, writer_shard
from caliper_store.storage.schema import iri_key, utc_text

logger = logging.getLogger(__name__)

# A key's last_used_at is rewritten at most this often, sparing a row lock per batch.
LAST_USED_RESOLUTION_S = 60


def _minus_seconds(moment: str, seconds: int) -> str:
    return utc_text(datetime.fromisoformat(moment) - timedelta(seconds=seconds))


Outcome = Receipt | CaliperStoreError


def _event_values(
    row: EventRow, request: WriteRequest, receipt_id: int, encoder: Encoder
) -> tuple[Any, ...]:
    # Order of storage.schema.EVENT_COLUMNS; the raw JSON goes in compressed (raw is '').
    return (
        row.event_id,
        row.has_derived_id,
        row.content_hash,
        row.caliper_version,
        row.event_type,
        row.action,
        row.actor_id,
        row.actor_type,
        row.actor_external_id,
        row.object_id,
        row.object_type,
        row.group_id,
        row.membership_role,
        row.session_id,
        row.ed_app_id,
        request.sensor,
        request.api_key_id,
        receipt_id,
        row.is_extension,
        row.event_time,
        request.received_at,
        "",
        iri_key(row.actor_id),
        iri_key(row.object_id),
        iri_key(row.group_id),
        encoder.encode(row.raw),
        encoder.dictionary_id,
        request.rule_set_id,
        iri_key(row.session_id),
    )


def _quarantine_values(
    index: int,
    raw: str,
    reasons: Sequence[Reason],
    event_id: str | None,
    version: str | None,
    request: WriteRequest,
    receipt_id: int,
) -> tuple[Any, ...]:
    return (
        receipt_id,
        request.api_key_id,
        index,
        event_id,
        version,
        reasons[0].code,
        json.dumps([reason.as_json() for reason in reasons]),
        request.received_at,
        raw,
    )


def _strict_conflicts(
    transaction: WriteTransaction, request: WriteRequest, first_seen: dict[str, str]
) -> list[dict[str, str]]:
    rows = [item for item in request.items if isinstance(item, EventRow)]
    stored = transaction.event_hashes([row.event_id for row in rows])
    conflicts = []
    for row in rows:
        reference = stored.get(row.event_id, first_seen.get(row.event_id))
        if reference is not None and event_verdict(row, reference).verdict == "quarantined":
            conflicts.append(conflict_reason(row).as_json())
    return conflicts


def commit_batch(
    store: Store, requests: Sequence[WriteRequest], *, touched: dict[int, str] | None = None
) -> list[Outcome]:
    """Commit every request in one transaction and return each request's outcome.

    ``touched`` remembers, across calls, when this process last wrote each key's
    ``last_used_at``, so the statement is skipped while the stored time is recent enough.

    A request whose key stopped being active gets :class:`Unauthorized`; a strict request with
    a conflicting event id gets :class:`EventConflict` and stores nothing. Every other request
    gets its :class:`Receipt`.

    A replay of a quarantined item (``request.replay``) goes through the same rules, with three
    differences: its item must still be held (else :class:`AlreadyResolved`), it keeps the
    receipt of the request that first brought it (no new receipt, no key check: the key may
    have been rotated since), and an item that still cannot be stored stays held as it was
    instead of being quarantined again. One that is stored, or found already stored with the
    same content, leaves quarantine with an audit row, in this same transaction.
    """
    if touched is None:
        touched = {}
    outcomes: list[Outcome | None] = [None] * len(requests)
    store.prepare_batch(requests)
    with store.write_transaction() as transaction:
        active = transaction.active_key_ids(
            {request.api_key_id for request in requests if request.replay is None}
        )
        replayed = [request.replay.quarantine_id for request in requests if request.replay]
        held = transaction.held_quarantine(replayed) if replayed else set()
        first_seen: dict[str, str] = {}
        live: list[int] = []
        for position, request in enumerate(requests):
            if request.replay is not None:
                if request.replay.quarantine_id not in held:
                    outcomes[position] = AlreadyResolved(
                        f"quarantined item {request.replay.quarantine_id} is no longer held"
                    )
                    continue
                held.discard(request.replay.quarantine_id)
            elif request.api_key_id not in active:
                outcomes[position] = Unauthorized("the API key is not active")
                continue
            if request.is_strict:
                conflicts = _strict_conflicts(transaction, request, first_seen)
                if conflicts:
                    outcomes[position] = EventConflict(
                        "strict mode: event ids already stored with different content",
                        errors=conflicts,
                    )
                    continue
            live.append(position)
            for item in request.items:
                if isinstance(item, EventRow):
                    first_seen.setdefault(item.event_id, item.content_hash)
        if not live:
            return [outcome for outcome in outcomes if outcome is not None]

        fresh = [position for position in live if requests[position].replay is None]
        receipt_of: dict[int, int] = {}
        touched_now: dict[int, str] = {}
        if fresh:
            # Keys first: every process then takes row locks in the same order (keys, then ids).
            used_at = max(requests[position].received_at for position in fresh)
            stale_before = _minus_seconds(used_at, LAST_USED_RESOLUTION_S)
            stale = {
                key_id
                for key_id in (requests[position].api_key_id for position in fresh)
                if touched.get(key_id, "") < stale_before
            }
            if stale:
                transaction.touch_keys(stale, used_at, stale_before)
                touched_now = dict.fromkeys(stale, used_at)
            receipt_ids = transaction.allocate_receipt_ids(len(fresh))
            receipt_of = dict(zip(fresh, receipt_ids, strict=True))
        for position in live:
            replay = requests[position].replay
            if replay is not None:
                receipt_of[position] = replay.receipt_id
        encoder = store.raw_codec.begin(transaction)
        plan = _Plan(encoder)
        for position in live:
            plan.add(requests[position], receipt_of[position], position)
        stored_events = transaction.insert_events(plan.event_values)
        stored_entities = transaction.insert_entities(plan.entity_values)
        verdicts = plan.verdicts(stored_events, stored_entities)
        transaction.insert_quarantine(plan.quarantine_values)
        if plan.stored:
            transaction.add_rollups(plan.stored, shard=writer_shard())
        receipts = []
        resolved = []
        for position in live:
            request = requests[position]
            receipt_id = receipt_of[position]
            receipt = Receipt(receipt_id, request.is_envelope, tuple(verdicts.get(position, ())))
            outcomes[position] = receipt
            if request.replay is not None:
                if receipt.items and receipt.count("quarantined") == 0:
                    resolved.append(_resolution(request.replay, receipt.items[0]))
                continue
            receipts.append(
                (
                    receipt_id,
                    request.api_key_id,
                    request.sensor,
                    request.send_time,
                    request.data_version,
                    request.is_envelope,
                    request.received_at,
                    request.body_bytes,
                    len(request.items),
                    receipt.count("stored"),
                    receipt.count("duplicate"),
                    receipt.count("quarantined"),
                    receipt.count("dropped"),
                    request.rule_set_id,
                )
            )
        if receipts:
            transaction.insert_receipts(receipts)
        if resolved:
            transaction.resolve_quarantine(resolved)
    touched.update(touched_now)  # only once committed
    store.raw_codec.committed(encoder)
    return [outcome for outcome in outcomes if outcome is not None]


def _resolution(replay: Replay, verdict: ItemVerdict) -> tuple[Any, ...]:
    # WriteTransaction.resolve_quarantine row: the outcome says whether the replay stored the
    # event or found it already stored with the same content.
    return (
        replay.quarantine_id,
        "replayed",
        replay.actor,
        replay.at,
        verdict.verdict,
        verdict.id,
        None,
    )


@dataclass
class _Plan:
    """The rows of one group commit, and what to decide once the database has answered."""

    encoder: Encoder
    event_values: list[tuple[Any, ...]] = field(default_factory=list)
    entity_values: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine_values: list[tuple[Any, ...]] = field(default_factory=list)
    # (request position, receipt id, request, item, is first) in request order, for verdicts.
    items: list[
        tuple[int, int, WriteRequest, EventRow | EntityRow | QuarantineRow | DroppedRow, bool]
    ] = field(default_factory=list)
    first_hash: dict[str, str] = field(default_factory=dict)
    first_entities: set[tuple[str, str]] = field(default_factory=set)
    # The events this commit stores, for the rollups (filled by verdicts()).
    stored: list[StoredEvent] = field(default_factory=list)

    def add(self, request: WriteRequest, receipt_id: int, position: int) -> None:
        for item in request.items:
            is_first = False
            if isinstance(item, EventRow):
                if item.event_id not in self.first_hash:
                    self.first_hash[item.event_id] = item.content_hash
                    self.event_values.append(_event_values(item, request, receipt_id, self.encoder))
                    is_first = True
            elif isinstance(item, EntityRow):
                key = (item.entity_id, item.content_hash)
                if key not in self.first_entities:
                    self.first_entities.add(key)
                    self.entity_values.append(
                        (
                            item.entity_id,
                            item.content_hash,
                            item.caliper_version,
                            item.entity_type,
                            request.api_key_id,
                            receipt_id,
                            request.received_at,
                            item.raw,
                        )
                    )
                    is_first = True
            elif isinstance(item, DroppedRow):
                pass  # counted in the receipt, written nowhere
            elif request.replay is None:  # a replayed item that still fails stays where it is
                self.quarantine_values.append(
                    _quarantine_values(
                        item.index,
                        item.raw,
                        item.reasons,
                        item.event_id,
                        item.caliper_version,
                        request,
                        receipt_id,
                    )
                )
            self.items.append((position, receipt_id, request, item, is_first))

    def verdicts(
        self, stored_events: dict[str, str], stored_entities: set[tuple[str, str]]
    ) -> dict[int, list[ItemVerdict]]:
        """Decide each item's verdict; conflicts become quarantine rows."""
        verdicts: dict[int, list[ItemVerdict]] = {}
        for position, receipt_id, request, item, is_first in self.items:
            if isinstance(item, EventRow):
                reference = stored_events.get(item.event_id)
                if reference is None and not is_first:
                    reference = self.first_hash[item.event_id]
                verdict = event_verdict(item, reference)
                if verdict.verdict == "stored":
                    self.stored.append(StoredEvent.of(item, request.api_key_id, request.sensor))
                if verdict.verdict == "quarantined" and request.replay is None:
                    self.quarantine_values.append(
                        _quarantine_values(
                            item.index,
                            item.raw,
                            verdict.reasons,
                            item.event_id,
                            item.caliper_version,
                            request,
                            receipt_id,
                        )
                    )
            elif isinstance(item, EntityRow):
                is_known = not is_first or (item.entity_id, item.content_hash) in stored_entities
                verdict = ItemVerdict(
                    item.index,
                    "entity",
                    item.entity_id,
                    "duplicate" if is_known else "stored",
                    (),
                    tuple(item.warnings),
                )
            elif isinstance(item, DroppedRow):
                verdict = dropped_verdict(item)
            else:
                verdict = ItemVerdict(
                    item.index, "invalid", item.event_id, "quarantined", tuple(item.reasons)
                )
            verdicts.setdefault(position, []).append(verdict)
        return verdicts


class Committer(Protocol):
    """Commits one batch of requests and returns each request's outcome, in order."""

    def encode(self, request: WriteRequest) -> Any:
        """The request in the form ``commit`` takes, made on the event loop when it arrives."""

    def commit(self, requests: Sequence[Any]) -> Sequence[Outcome]:
        """Commit encoded requests; raises on any database failure (then nothing committed)."""

    def close(self) -> None:
        """Release what the committer holds."""


class ThreadCommitter:
    """A :class:`Committer` on the writer thread itself, with this process's connection."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._touched: dict[int, str] = {}

    def encode(self, request: WriteRequest) -> WriteRequest:
        """The request itself: the thread shares the process's memory."""
        return request

    def commit(self, requests: Sequence[WriteRequest]) -> Sequence[Outcome]:
        """One :func:`commit_batch`, remembering the keys' last-used times across batches."""
        return commit_batch(self._store, requests, touched=self._touched)

    def close(self) -> None:
        """Nothing to release: the store belongs to the caller."""


@dataclass(slots=True)
class _Waiting:
    request: WriteRequest
    encoded: Any
    future: asyncio.Future[Receipt]
    loop: asyncio.AbstractEventLoop
    queued_at: float


class GroupCommitWriter:
    """The one writer of a process: a bounded queue and a thread that commits it in batches."""

    def __init__(
        self, committer: Committer, *, queue_events: int, batch_events: int, retry_after_s: int
    ) -> None:
        self._committer = committer
        self._queue_events = queue_events
        self._batch_events = batch_events
        self._retry_after_s = retry_after_s
        self._queue: deque[_Waiting] = deque()
        self._queued_events = 0
        self._condition = threading.Condition()
        self._is_stopping = False
        self._thread = threading.Thread(target=self._run, name="caliper-writer", daemon=True)
        self.is_healthy = True

    @property
    def queued_events(self) -> int:
        """Events waiting for a commit right now."""
        return self._queued_events

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread and close the committer."""
        with self._condition:
            self._is_stopping = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join()
        self._committer.close()

    async def submit(self, request: WriteRequest) -> Receipt:
        """Queue a request and wait until its items are committed.

        Raises:
            Overloaded: the queue cannot take this many more events now.
            StorageUnavailable: the transaction failed; nothing of the request was stored.
            Unauthorized: the key was deactivated or revoked before the commit.
            EventConflict: strict mode and an event id conflicts.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        size = max(request.event_count, 1)
        encoded = self._committer.encode(request)
        with self._condition:
            if self._is_stopping:
                raise StorageUnavailable(
                    "the server is shutting down", retry_after_s=self._retry_after_s
                )
            if self._queued_events + size > self._queue_events:
                OVERLOADED.labels("write_queue").inc()
                raise Overloaded(
                    f"the write queue is full ({self._queued_events} events waiting)",
                    retry_after_s=self._retry_after_s,
                )
            self._queue.append(_Waiting(request, encoded, future, loop, time.perf_counter()))
            self._queued_events += size
            WRITER_QUEUE_EVENTS.set(self._queued_events)
            self._condition.notify()
        return await future

    def _take_batch(self) -> list[_Waiting] | None:
        with self._condition:
            while not self._queue and not self._is_stopping:
                self._condition.wait()
            if not self._queue:
                return None
            batch = [self._queue.popleft()]
            taken = max(batch[0].request.event_count, 1)
            while self._queue:
                size = max(self._queue[0].request.event_count, 1)
                if taken + size > self._batch_events:
                    break
                batch.append(self._queue.popleft())
                taken += size
            return batch

    def _release(self, batch: list[_Waiting]) -> None:
        with self._condition:
            self._queued_events -= sum(max(w.request.event_count, 1) for w in batch)
            WRITER_QUEUE_EVENTS.set(self._queued_events)

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            outcomes: Sequence[Outcome]
            began = time.perf_counter()
            for waiting in batch:
                COMMIT_WAIT_SECONDS.observe(began - waiting.queued_at)
            COMMIT_BATCH_EVENTS.observe(sum(w.request.event_count for w in batch))
            try:
                outcomes = self._committer.commit([waiting.encoded for waiting in batch])
                self.is_healthy = True
                COMMIT_SECONDS.observe(time.perf_counter() - began)
            except Exception as error:  # any database failure: nothing of the batch committed
                DATABASE_ERRORS.labels("commit").inc()
                logger.error(
                    "group commit of %d requests failed: %s", len(batch), error_summary(error)
                )
                self.is_healthy = False
                failure = StorageUnavailable(
                    "the database did not accept the write; nothing was stored",
                    retry_after_s=self._retry_after_s,
                )
                outcomes = [failure] * len(batch)
            self._release(batch)
            # One wake-up per event loop and batch, not one per request: each wake-up is a
            # write to the loop's self-pipe, and one-event envelopes come 60 to a batch.
            settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Receipt], Outcome]]]
            settled = {}
            for waiting, outcome in zip(batch, outcomes, strict=True):
                settled.setdefault(waiting.loop, []).append((waiting.future, outcome))
            for loop, pairs in settled.items():
                loop.call_soon_threadsafe(_settle_all, pairs)


def _settle_all(pairs: list[tuple[asyncio.Future[Receipt], Outcome]]) -> None:
    for future, outcome in pairs:
        if future.cancelled():
            continue
        if isinstance(outcome, Receipt):
            future.set_result(outcome)
        else:
            future.set_exception(outcome)
