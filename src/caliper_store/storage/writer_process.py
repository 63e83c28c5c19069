"""The SQLite group commit in a process of its own, so that it never waits for the event loop.

In one process the writer thread and the event loop share the GIL. The sqlite3 module gives
the GIL up around every call into SQLite, and under load each call had to win it back from
the event loop, while the Python part of every commit held the event loop up in turn: the
writer thread sat at 63% of a core and the event loop at 56%, and neither could go faster.
A child process has a GIL, and a core, of its own. Requests reach it pickled over a pipe
(about 3.5 µs an event each way, see ``records.pickled_by_fields``), and outcomes come back
the same way.

The child commits with the same :func:`commit_batch` as the in-process writer, so every rule
(duplicates, conflicts, keys, quarantine) is the same code. A request is answered only after
the child has sent back its outcome, which it does after COMMIT. If the child dies, the batch
it held fails with 503 (it may or may not have committed; a retry is then a duplicate), and
the next batch starts a new child.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
from collections.abc import Sequence
from multiprocessing.connection import Connection

from caliper_store.config import Settings
from caliper_store.storage.open import open_store
from caliper_store.storage.records import WriteRequest
from caliper_store.storage.writer import Outcome, commit_batch

# How long close() waits for the child to commit what it holds and exit.
STOP_TIMEOUT_S = 30.0


class CommitFailed(Exception):
    """The writer process could not commit a batch, or died while holding one."""


def _serve(settings: Settings, connection: Connection) -> None:
    """The child: commit each batch that arrives, answer it, stop at ``None`` or end of pipe."""
    # Ctrl-C reaches the whole process group; the parent decides when the child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store = open_store(settings)
    touched: dict[int, str] = {}
    try:
        while True:
            try:
                requests = connection.recv()
            except EOFError:  # the parent is gone: nothing is waiting for an answer
                return
            if requests is None:
                return
            try:
                # Pickles made by our own parent, over a pipe no one else holds.
                batch = [pickle.loads(request) for request in requests]  # noqa: S301
                reply: object = commit_batch(store, batch, touched=touched)
            except Exception as error:  # the database refused: nothing of the batch committed
                reply = CommitFailed(repr(error))
            connection.send(reply)
    finally:
        store.close()


class WriterProcess:
    """A ``writer.Committer`` that commits in a child process, started on the first batch."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for operators' tools and tests)."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> Connection:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(self._settings, theirs), name="caliper-writer", daemon=True
        )
        process.start()
        theirs.close()
        self._process, self._connection = process, ours
        return ours

    def encode(self, request: WriteRequest) -> bytes:
        """The pickled request, made on the event loop while the child commits the batch before.

        Pickling the whole batch on the writer thread instead left the child idle for 17% of
        the time, waiting for its next batch.
        """
        return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)

    def commit(self, requests: Sequence[bytes]) -> Sequence[Outcome]:
        """Send the batch of pickled requests to the child and wait for its outcomes.

        Raises:
            CommitFailed: the child's transaction failed, or the child died meanwhile.
        """
        connection = self._connection or self._start()
        try:
            connection.send(list(requests))
            reply = connection.recv()
        except (EOFError, OSError) as error:
            self._discard()
            raise CommitFailed(f"the writer process stopped: {error!r}") from error
        if isinstance(reply, CommitFailed):
            raise reply
        outcomes: Sequence[Outcome] = reply
        return outcomes

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(STOP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    def close(self) -> None:
        """Ask the child to stop once idle, and wait for it."""
        if self._connection is not None:
            with contextlib.suppress(OSError):  # already gone
                self._connection.send(None)
        self._discard()
