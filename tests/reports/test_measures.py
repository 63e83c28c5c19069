"""The figures reports share, against the plain datetime computation they stand for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from caliper_store.reports.measures import day_of

# From year 1 to 9999, microseconds since 1970.
INSTANTS = st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)


@given(INSTANTS)
def test_a_utc_day_is_the_date_of_the_instant_in_utc(micros: int) -> None:
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert day_of(micros, ZoneInfo("UTC")) == instant.date()


@given(st.integers(0, 4_102_444_800_000_000))
def test_a_day_in_another_zone_is_the_local_date(micros: int) -> None:
    zone = ZoneInfo("America/St_Johns")  # -3:30 and -2:30: days do not start on a UTC hour
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    assert day_of(micros, zone) == instant.astimezone(zone).date()
