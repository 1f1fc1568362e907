"""FIX time formats (FIX 4.4 Vol. 1 "Data Types"): UTCTimestamp, UTCTimeOnly, UTCDateOnly.

Times are carried as integer nanoseconds since the Unix epoch (UTC) so that no precision is lost
between the seconds and nanoseconds forms FIX allows. Nothing here reads the clock.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

NS = 1_000_000_000


def parse_utc_timestamp(value: bytes) -> int:
    """``YYYYMMDD-HH:MM:SS[.s{1,9}]`` -> nanoseconds since the epoch. Raises ValueError."""
    n = len(value)
    if n < 17 or value[8:9] != b"-" or value[11:12] != b":" or value[14:15] != b":":
        raise ValueError(f"not a UTCTimestamp: {value[:32]!r}")
    hh, mm, ss = value[9:11], value[12:14], value[15:17]
    if not (hh.isdigit() and mm.isdigit() and ss.isdigit()):
        raise ValueError(f"not a UTCTimestamp: {value[:32]!r}")
    frac_ns = 0
    if n > 17:
        if value[17:18] != b"." or n == 18 or n > 27:
            raise ValueError(f"not a UTCTimestamp: {value[:32]!r}")
        frac = value[18:]
        if not frac.isdigit():
            raise ValueError(f"not a UTCTimestamp: {value[:32]!r}")
        frac_ns = int(frac) * 10 ** (9 - len(frac))
    hour, minute, second = int(hh), int(mm), int(ss)
    if not (hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError(f"UTCTimestamp out of range: {value[:32]!r}")
    secs = _midnight(value)
    return (secs + hour * 3600 + minute * 60 + second) * NS + frac_ns


_MIDNIGHTS: dict[bytes, int] = {}
"""``YYYYMMDD`` -> its midnight in epoch seconds: the dates of live traffic, checked once."""
_MIDNIGHTS_MAX = 4096


def _midnight(value: bytes) -> int:
    date = value[0:8]
    secs = _MIDNIGHTS.get(date)
    if secs is not None:
        return secs
    if not date.isdigit():
        raise ValueError(f"not a UTCTimestamp: {value[:32]!r}")
    year, month, day = int(date[0:4]), int(date[4:6]), int(date[6:8])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise ValueError(f"UTCTimestamp out of range: {value[:32]!r}")
    secs = calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))
    if len(_MIDNIGHTS) >= _MIDNIGHTS_MAX:
        _MIDNIGHTS.clear()
    _MIDNIGHTS[date] = secs
    return secs


def is_utc_time_only(value: bytes) -> bool:
    """``HH:MM:SS[.s{1,9}]``."""
    if len(value) < 8 or value[2:3] != b":" or value[5:6] != b":":
        return False
    hh, mm, ss = value[0:2], value[3:5], value[6:8]
    if not (hh.isdigit() and mm.isdigit() and ss.isdigit()):
        return False
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        return False
    if len(value) > 8:
        frac = value[9:]
        return value[8:9] == b"." and 1 <= len(frac) <= 9 and frac.isdigit()
    return True


def is_utc_date_only(value: bytes) -> bool:
    """``YYYYMMDD``."""
    if len(value) != 8 or not value.isdigit():
        return False
    month, day = int(value[4:6]), int(value[6:8])
    return 1 <= month <= 12 and 1 <= day <= 31


class TimestampFormatter:
    """Formats epoch seconds as UTCTimestamp; caches the date-and-seconds part."""

    __slots__ = ("precision", "_sec", "_prefix")

    def __init__(self, precision: int = 3) -> None:
        if precision not in (0, 3, 6, 9):
            raise ValueError("precision must be 0, 3, 6 or 9")
        self.precision = precision
        self._sec = -1
        self._prefix = b""

    def format(self, now: float) -> bytes:
        ns = int(round(now * NS))
        sec, frac = divmod(ns, NS)
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y%m%d-%H:%M:%S").encode()
        if self.precision == 0:
            return self._prefix
        digits = frac // 10 ** (9 - self.precision)
        return self._prefix + b".%0*d" % (self.precision, digits)


def format_utc(now: float, precision: int = 3) -> bytes:
    return TimestampFormatter(precision).format(now)
