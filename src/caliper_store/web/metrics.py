"""``GET /metrics``: the counters every process keeps, and gauges read from the database.

What the database holds is read at scrape time, so it is right whichever process forwards and
however many processes serve: forwarding lag per destination, held quarantine items by reason,
and when each key was last used (a sensor gone silent). ``metrics_port`` serves the same page
without a key on 127.0.0.1, for a Prometheus agent on the host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from caliper_store.config import Settings
from caliper_store.forward import destination_statuses
from caliper_store.observability import (
    DATABASE_ERRORS,
    error_summary,
    is_multiprocess,
    prepare_multiprocess_directory,
    registry_for_scrape,
    remove_multiprocess_directory,
)
from caliper_store.storage import Store, open_store
from caliper_store.web.auth import require_read
from caliper_store.web.context import context_of

logger = logging.getLogger(__name__)

# Only this interface: the separate port has no key, so it must not face the network.
METRICS_HOST = "127.0.0.1"


class StoreCollector(Collector):
    """Gauges the database answers, read at each scrape."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        """Read the store; a database that fails leaves these gauges out of this scrape."""
        try:
            yield from self._gauges()
        except Exception as error:  # a scrape must still answer with the process's counters
            DATABASE_ERRORS.labels("metrics").inc()
            logger.warning("metrics: the database did not answer: %s", error_summary(error))

    def _gauges(self) -> Iterator[Metric]:
        lag_events = GaugeMetricFamily(
            "caliper_store_forward_lag_events",
            "Events stored after a destination's cursor, not yet delivered to it.",
            labels=["destination"],
        )
        lag_seconds = GaugeMetricFamily(
            "caliper_store_forward_lag_seconds",
            "How long the oldest event not yet delivered has waited, per destination.",
            labels=["destination"],
        )
        dead = GaugeMetricFamily(
            "caliper_store_forward_dead_letters",
            "Events a destination refused (4xx), parked for `forward replay`.",
            labels=["destination"],
        )
        paused = GaugeMetricFamily(
            "caliper_store_forward_paused",
            "1 while a destination is paused.",
            labels=["destination"],
        )
        for status in destination_statuses(self._store):
            name = status.destination.name
            lag_events.add_metric([name], status.lag_events)
            lag_seconds.add_metric([name], status.lag_seconds)
            dead.add_metric([name], status.dead_letters)
            paused.add_metric([name], 1 if status.destination.is_paused else 0)
        yield from (lag_events, lag_seconds, dead, paused)
        held = GaugeMetricFamily(
            "caliper_store_quarantine_held",
            "Items held in quarantine, by their first reason.",
            labels=["reason"],
        )
        for reason, items in self._store.quarantine.held_by_reason().items():
            held.add_metric([reason], items)
        yield held
        last_used = GaugeMetricFamily(
            "caliper_store_key_last_used_timestamp_seconds",
            "When each active key last sent a request (Unix time); alert on a silent sensor.",
            labels=["key"],
        )
        info = GaugeMetricFamily(
            "caliper_store_key_info",
            "Each key's id with its label and scopes (value 1), to name the key in dashboards.",
            labels=["key", "label", "scopes", "status"],
        )
        for key in self._store.keys.list():
            info.add_metric([str(key.id), key.label, ",".join(key.scopes), key.status], 1)
            if key.is_active and key.last_used_at is not None:
                used = datetime.fromisoformat(key.last_used_at).timestamp()
                last_used.add_metric([str(key.id)], used)
        yield from (last_used, info)


class ScrapeRegistry(CollectorRegistry):
    """What one scrape reads: this server's counters, then the database's gauges.

    Built for each scrape: prometheus-client documents that the multiprocess collector goes
    in a registry of its own, never in the default one.
    """

    def __init__(self, store: Store) -> None:
        super().__init__(auto_describe=False)
        self._store = store

    def collect(self) -> Iterator[Metric]:
        """The metrics of ``GET /metrics`` and of ``metrics_port``."""
        yield from registry_for_scrape().collect()
        yield from StoreCollector(self._store).collect()


def scrape(store: Store) -> bytes:
    """The metrics page in Prometheus's text format."""
    return generate_latest(ScrapeRegistry(store))


async def metrics(request: Request) -> Response:
    """Prometheus's text format, for a read or admin key (it names destinations and keys)."""
    context = context_of(request)
    require_read(await context.authenticator.authenticate(request, is_cached=False))
    page = await run_in_threadpool(scrape, context.store)
    return Response(page, media_type=CONTENT_TYPE_LATEST)


@contextmanager
def serving_metrics(settings: Settings) -> Iterator[None]:
    """What ``serve`` needs for metrics around uvicorn: the shared directory, the local port.

    With several workers their values are summed from files; the directory is made before
    they start. The local port is served by this (the supervising) process, from a store of
    its own.
    """
    made = None
    if settings.workers > 1:
        was_set = is_multiprocess()
        directory = prepare_multiprocess_directory()
        made = None if was_set else directory
    with ExitStack() as stack:  # undone in reverse: the directory goes last
        if made is not None:
            stack.callback(remove_multiprocess_directory, made)
        if settings.metrics_port:
            store = open_store(settings)
            stack.callback(store.close)
            server, thread = start_http_server(
                settings.metrics_port, METRICS_HOST, registry=ScrapeRegistry(store)
            )
            stack.callback(thread.join, 5)
            stack.callback(server.shutdown)
            logger.info("metrics on http://%s:%d/metrics", METRICS_HOST, settings.metrics_port)
        yield
