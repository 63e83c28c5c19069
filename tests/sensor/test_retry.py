"""The retry decision: what is retried, how long a sensor waits, when it gives up."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from caliper_store.sensor import Accepted, GaveUp, Rejected, RetryPolicy, retry_after_seconds
from caliper_store.sensor.retry import Attempts, Wait


def attempts(max_attempts: int = 4) -> Attempts:
    return Attempts(RetryPolicy(max_attempts=max_attempts, base_delay_s=0.5), random.Random(7))


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_busy_or_failing_store_is_retried(status: int) -> None:
    assert isinstance(attempts().after_response(status, None, b""), Wait)


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415, 422])
def test_refusal_that_would_repeat_is_reported_not_retried(status: int) -> None:
    decision = attempts().after_response(status, None, b'{"detail":"unknown API key"}')
    assert decision == Rejected(status, "unknown API key")


def test_success_is_accepted_with_the_receipt() -> None:
    assert attempts().after_response(200, None, b"{}") == Accepted(200, b"{}")


def test_connection_error_is_retried_then_given_up_after_max_attempts() -> None:
    tries = attempts(max_attempts=3)
    decisions = [tries.after_error(ConnectionRefusedError("refused")) for _ in range(3)]
    assert [type(d) for d in decisions] == [Wait, Wait, GaveUp]


def test_zero_max_attempts_retries_for_ever() -> None:
    tries = attempts(max_attempts=0)
    assert all(isinstance(tries.after_response(503, None, b""), Wait) for _ in range(100))


def test_wait_honours_retry_after_and_backoff_grows_but_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, max_retry_after_s=60)
    rng = random.Random(1)
    assert policy.delay_s(1, 7.0, rng) >= 7.0
    assert policy.delay_s(1, 600.0, rng) == 60.0
    assert all(policy.delay_s(1, None, rng) <= 0.5 for _ in range(200))
    assert all(policy.delay_s(20, None, rng) <= 4.0 for _ in range(200))
    assert max(policy.delay_s(4, None, rng) for _ in range(200)) > 0.5


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 02 Dec 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 02 Dec 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
