"""The in-flight budget: bytes held by the ingest requests of one process, bounded as a whole.

Each request reserves its body as the chunks arrive, then the bound on its parsed memory before
it is parsed, and gives all of it back when it is answered. A request that would take the total
past ``max_inflight_bytes`` gets 503 with Retry-After before it takes the memory, so a burst of
large bodies is turned away instead of held. Every call runs on the event loop: no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from caliper_store.errors import Overloaded
from caliper_store.observability import OVERLOADED


class InflightBudget:
    """The bytes all requests in flight hold, against one limit."""

    def __init__(self, limit_bytes: int, retry_after_s: int) -> None:
        self.limit_bytes = limit_bytes
        self.retry_after_s = retry_after_s
        self.held_bytes = 0

    @contextmanager
    def reservation(self) -> Iterator[Reservation]:
        """A reservation that grows with the request and is given back when it ends."""
        reservation = Reservation(self)
        try:
            yield reservation
        finally:
            self.held_bytes -= reservation.held_bytes
            reservation.held_bytes = 0


class Reservation:
    """What one request holds of the budget."""

    def __init__(self, budget: InflightBudget) -> None:
        self._budget = budget
        self.held_bytes = 0

    def grow_to(self, total_bytes: int) -> None:
        """Hold ``total_bytes`` in all (never less than already held).

        Raises:
            Overloaded: the budget cannot take the difference now.
        """
        extra = total_bytes - self.held_bytes
        if extra <= 0:
            return
        budget = self._budget
        if budget.held_bytes + extra > budget.limit_bytes:
            OVERLOADED.labels("inflight_bytes").inc()
            raise Overloaded(
                "the server holds as many request bytes as max_inflight_bytes="
                f"{budget.limit_bytes} allows; retry later",
                retry_after_s=budget.retry_after_s,
            )
        budget.held_bytes += extra
        self.held_bytes = total_bytes
