"""When a sensor sends again, and when it gives up: the answer to each attempt, decided once.

Connection errors, 408, 429 and 5xx are worth retrying: the store was busy or away. Every other
4xx will be answered the same way next time (a bad key, a body too large), so it is reported
and not retried; sending it again would only hide the fault. Waits grow exponentially with full
jitter (AWS's "Exponential Backoff and Jitter"), so many sensors restarting together spread out,
and never fall below what the store asked for in ``Retry-After``. The sync and async senders
share this one decision; only their sleeping differs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import orjson

RETRYABLE_STATUSES: Final = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one envelope is sent again.

    Attributes:
        max_attempts: tries of one envelope before ``flush`` reports it undelivered (it stays
            queued and the next flush tries again); 0 tries for ever.
        base_delay_s: the first wait's ceiling; each retry doubles it.
        max_delay_s: the longest wait between two tries, ``Retry-After`` aside.
        max_retry_after_s: the longest ``Retry-After`` honoured, so a wrong header cannot
            park a sensor for a day.
    """

    max_attempts: int = 8
    base_delay_s: float = 0.25
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0

    def delay_s(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (1 for the first), jittered."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1))
        wait = rng.uniform(0, ceiling)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_retry_after_s))
        return wait


@dataclass(frozen=True, slots=True)
class Accepted:
    """The store answered 2xx: every event of the envelope is committed (or quarantined)."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """The store refused the envelope for good (a 4xx other than 408 and 429)."""

    status: int
    detail: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Try again after this many seconds."""

    seconds: float
    cause: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    """``max_attempts`` tries failed; the events stay queued."""

    attempts: int
    cause: str


Decision = Accepted | Rejected | Wait | GaveUp


class Attempts:
    """The tries of one envelope: feed it each answer, it says what to do next."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng
        self.count = 0

    def after_response(
        self, status: int, retry_after: str | None, body: bytes, *, now: datetime | None = None
    ) -> Decision:
        """The decision after the store answered ``status``."""
        self.count += 1
        if 200 <= status < 300:
            return Accepted(status, body)
        if status in RETRYABLE_STATUSES or status >= 500:
            return self._again(f"HTTP {status}", retry_after_seconds(retry_after, now))
        return Rejected(status, problem_detail(body))

    def after_error(self, error: Exception) -> Decision:
        """The decision after the request failed without an answer (refused, reset, timed out)."""
        self.count += 1
        return self._again(f"{type(error).__name__}: {error}", None)

    def _again(self, cause: str, retry_after_s: float | None) -> Decision:
        limit = self._policy.max_attempts
        if limit and self.count >= limit:
            return GaveUp(self.count, cause)
        return Wait(self._policy.delay_s(self.count, retry_after_s, self._rng), cause)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110).

    None when the header is absent or unreadable: the backoff alone decides then.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def problem_detail(body: bytes) -> str:
    """What an endpoint said, short: an RFC 7807 ``detail`` when there is one, else the text."""
    text = body[:2000].decode("utf-8", errors="replace")
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return text.strip()[:500]
    if isinstance(problem, dict) and isinstance(problem.get("detail"), str):
        return str(problem["detail"])[:500]
    return text.strip()[:500]
