"""Stored times: SQLite keeps integer microseconds, and every reader gets the store's UTC text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from caliper_store.storage.schema import micros_text, utc_micros, utc_text

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_microseconds_read_back_as_the_text_they_were_stored_from(moment: datetime) -> None:
    text = utc_text(moment.replace(tzinfo=UTC))
    assert micros_text(utc_micros(text)) == text


def test_times_in_one_second_keep_their_own_fractions() -> None:
    second = utc_micros("2024-03-01T09:30:15.000000Z")
    texts = [micros_text(second + fraction) for fraction in (0, 7, 999_999, 1_000_000)]
    assert texts == [
        "2024-03-01T09:30:15.000000Z",
        "2024-03-01T09:30:15.000007Z",
        "2024-03-01T09:30:15.999999Z",
        "2024-03-01T09:30:16.000000Z",
    ]
    before_epoch = (EPOCH - timedelta(microseconds=1)).replace(tzinfo=None)
    assert micros_text(-1) == before_epoch.isoformat(timespec="microseconds") + "Z"
