"""The store's Prometheus metrics, defined once, and what a scrape reads them from.

With several server processes (``--workers N``) each one writes its values to memory-mapped
files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and a scrape of any
process sums them, so the figures are the server's, not one worker's. The directory must be set
before prometheus-client is imported: ``serve`` does it before the workers start. Figures the
database holds (forwarding lag, the quarantine, when each key last sent) are read at scrape
time by ``web/metrics.py`` instead, so they are right whichever process forwards.

No label holds personal data: keys are their numeric ids, routes are route templates.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter as Tally
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# One-event Canvas envelopes commit 60 to a batch; Learn's 100-event ones fill a 5,000-event batch.
BATCH_EVENT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000)
# A request waits for one commit (milliseconds) or, under overload, for several.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# The methods named in the request metric; any other is counted as "other" (no label explosion).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

EVENTS = Counter(
    "caliper_store_events",
    "Items received other than entities, by key id and verdict (stored, duplicate, "
    "quarantined, dropped); reason is the first quarantine reason, or dropped_by_rule.",
    ["key", "verdict", "reason"],
)
ENTITIES = Counter(
    "caliper_store_entities",
    "Entities received (items that are no event: a Person, a CourseSection), by verdict.",
    ["key", "verdict", "reason"],
)
ENVELOPES = Counter(
    "caliper_store_envelopes",
    "Requests to the ingest endpoint that were committed and answered 200, by key id.",
    ["key"],
)
REQUEST_SECONDS = Histogram(
    "caliper_store_http_request_duration_seconds",
    "Time from a request's start to the end of its response, by route template and status.",
    ["route", "method", "status"],
    buckets=SECONDS_BUCKETS,
)
COMMIT_BATCH_EVENTS = Histogram(
    "caliper_store_commit_batch_events",
    "Events in one group commit (every waiting request's items in one transaction).",
    buckets=BATCH_EVENT_BUCKETS,
)
COMMIT_WAIT_SECONDS = Histogram(
    "caliper_store_commit_wait_seconds",
    "Time a request waited in the writer's queue before its group commit began.",
    buckets=SECONDS_BUCKETS,
)
COMMIT_SECONDS = Histogram(
    "caliper_store_commit_duration_seconds",
    "Time one group commit took, from its first statement to COMMIT.",
    buckets=SECONDS_BUCKETS,
)
WRITER_QUEUE_EVENTS = Gauge(
    "caliper_store_writer_queue_events",
    "Events waiting for a commit now (summed over the server's processes).",
    multiprocess_mode="livesum",
)
OVERLOADED = Counter(
    "caliper_store_overloaded_responses",
    "503 answers from back-pressure, by cause: write_queue (writer_queue_events), "
    "inflight_bytes (max_inflight_bytes) or connections (max_connections).",
    ["cause"],
)
DATABASE_ERRORS = Counter(
    "caliper_store_database_errors",
    "Database failures, by operation: commit (the batch answered 503, nothing stored) or "
    "metrics (a scrape left the database's gauges out).",
    ["operation"],
)
FORWARDED_EVENTS = Counter(
    "caliper_store_forwarded_events",
    "Events a destination accepted, and events parked in its dead letters, by destination.",
    ["destination", "outcome"],
)
REPORT_SECONDS = Histogram(
    "caliper_store_report_duration_seconds",
    "Time one report took to compute, by report name.",
    ["report"],
    buckets=SECONDS_BUCKETS,
)


def is_multiprocess() -> bool:
    """Whether this process writes its values to files that a scrape sums."""
    return MULTIPROC_ENV in os.environ


def prepare_multiprocess_directory() -> Path:
    """The directory for several processes' values, made empty, and named in the environment.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is emptied (values of a previous run would be
    summed in); without one, a new temporary directory is made. Call it before the processes
    start, so each of them imports prometheus-client with it set.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        if directory.exists():
            for stale in directory.glob("*.db"):
                stale.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="caliper-store-metrics-"))
        os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def remove_multiprocess_directory(directory: Path) -> None:
    """Remove a directory that :func:`prepare_multiprocess_directory` made."""
    shutil.rmtree(directory, ignore_errors=True)


def process_stopped() -> None:
    """Drop this process's live gauges from the sum once it stops (multiprocess mode only)."""
    if is_multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def registry_for_scrape() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or every process's summed from the files.

    prometheus-client documents that the multiprocess collector goes in a registry of its own
    per scrape, never in the default one.
    """
    if not is_multiprocess():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class _Reason(Protocol):
    @property
    def code(self) -> str: ...


class _Item(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def verdict(self) -> str: ...
    @property
    def reasons(self) -> Sequence[_Reason]: ...


class _Receipt(Protocol):
    """What counting needs of a storage Receipt (this package sits below storage)."""

    @property
    def items(self) -> Sequence[_Item]: ...


def count_receipt(receipt: _Receipt, key_id: int) -> None:
    """Count a committed request's items by verdict: one increment per distinct verdict."""
    key = str(key_id)
    tally: Tally[tuple[bool, str, str]] = Tally()
    for item in receipt.items:
        is_held_back = item.verdict in ("quarantined", "dropped")
        reason = item.reasons[0].code if is_held_back and item.reasons else ""
        tally[(item.kind != "entity", item.verdict, reason)] += 1
    for (is_event, verdict, reason), count in tally.items():
        (EVENTS if is_event else ENTITIES).labels(key, verdict, reason).inc(count)
    ENVELOPES.labels(key).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Record one answered request under its route template."""
    shown_method = method if method in KNOWN_METHODS else "other"
    REQUEST_SECONDS.labels(route, shown_method, str(status)).observe(seconds)
