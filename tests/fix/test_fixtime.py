"""UTCTimestamp parsing (FIX 4.4 Vol. 1 "Data Types"), exact to the nanosecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fix.fixtime import NS, parse_utc_timestamp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)),
    st.integers(min_value=0, max_value=999_999_999),
    st.sampled_from([0, 3, 6, 9]),
)
def test_round_trip_against_datetime(when: datetime, nanos: int, digits: int) -> None:
    when = when.replace(microsecond=0, tzinfo=UTC)
    text = when.strftime("%Y%m%d-%H:%M:%S").encode()
    frac = 0
    if digits:
        frac = nanos // 10 ** (9 - digits)
        text += b".%0*d" % (digits, frac)
    whole = (when - EPOCH) // timedelta(seconds=1)
    assert parse_utc_timestamp(text) == whole * NS + frac * 10 ** (9 - digits)


def test_a_leap_second_is_the_next_minute() -> None:
    assert parse_utc_timestamp(b"20161231-23:59:60") == parse_utc_timestamp(b"20170101-00:00:00")


@pytest.mark.parametrize("bad", [
    b"20240230-12:00:00",  # no 30 February
    b"20230229-12:00:00",  # not a leap year
    b"20241301-12:00:00", b"20240001-12:00:00", b"20240100-12:00:00",
    b"20240101-24:00:00", b"20240101-12:60:00", b"20240101-12:00:61",
    b"2024010a-12:00:00", b"20240101-1a:00:00", b"20240101 12:00:00",
    b"20240101-12:00:00.", b"20240101-12:00:00.1234567890", b"20240101-12:00:00.12a",
    b"20240101-12:00",
])
def test_malformed_or_out_of_range_is_refused(bad: bytes) -> None:
    assert parse_utc_timestamp(b"20240229-12:00:00")  # a valid date of that month is cached
    with pytest.raises(ValueError):
        parse_utc_timestamp(bad)
    with pytest.raises(ValueError):  # and stays refused once its month is known
        parse_utc_timestamp(bad)
