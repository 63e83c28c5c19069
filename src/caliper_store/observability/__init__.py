"""What the store tells the people who run it: Prometheus metrics and structured logs.

Both are recorded where things happen (the writer, the endpoint, the forwarder, the reports),
so this package sits below them all and imports none of them.
"""

from caliper_store.observability.logs import (
    REQUEST_ID,
    configure_logging,
    error_summary,
    new_request_id,
    request_id_from,
)
from caliper_store.observability.metrics import (
    COMMIT_BATCH_EVENTS,
    COMMIT_SECONDS,
    COMMIT_WAIT_SECONDS,
    DATABASE_ERRORS,
    ENVELOPES,
    FORWARDED_EVENTS,
    OVERLOADED,
    REPORT_SECONDS,
    WRITER_QUEUE_EVENTS,
    count_receipt,
    is_multiprocess,
    observe_request,
    prepare_multiprocess_directory,
    process_stopped,
    registry_for_scrape,
    remove_multiprocess_directory,
)

__all__ = [
    "COMMIT_BATCH_EVENTS",
    "COMMIT_SECONDS",
    "COMMIT_WAIT_SECONDS",
    "DATABASE_ERRORS",
    "ENVELOPES",
    "FORWARDED_EVENTS",
    "OVERLOADED",
    "REPORT_SECONDS",
    "REQUEST_ID",
    "WRITER_QUEUE_EVENTS",
    "configure_logging",
    "count_receipt",
    "error_summary",
    "is_multiprocess",
    "new_request_id",
    "observe_request",
    "prepare_multiprocess_directory",
    "process_stopped",
    "registry_for_scrape",
    "remove_multiprocess_directory",
    "request_id_from",
]
