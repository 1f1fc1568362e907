"""Session schedules: when a session may be logged on (QuickFIX StartTime/EndTime/StartDay/
EndDay/TimeZone/NonStopSession). Pure: the time is passed in.

A daily schedule runs from ``start`` to ``end`` every day (``end`` before ``start`` means the
session spans midnight). A weekly schedule runs from ``start`` on ``start_day`` to ``end`` on
``end_day``. Each run is one *session period*: sequence numbers start again at 1 in a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Schedule:
    start: time = time(0, 0, 0)
    end: time = time(0, 0, 0)
    start_day: int | None = None
    """0 = Monday ... 6 = Sunday (weekly schedule); None for daily."""
    end_day: int | None = None
    timezone: str = "UTC"
    non_stop: bool = True

    def _local(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(self.timezone))

    def period_start(self, now: float) -> float | None:
        """Start (epoch seconds) of the period ``now`` falls in; None when outside any."""
        if self.non_stop:
            return 0.0
        local = self._local(now)
        tz = local.tzinfo
        if self.start_day is None:
            for days_back in (0, 1):
                day = (local - timedelta(days=days_back)).date()
                begin = datetime.combine(day, self.start, tz)
                end_day = day if self.end > self.start else day + timedelta(days=1)
                finish = datetime.combine(end_day, self.end, tz)
                if begin <= local < finish:
                    return begin.timestamp()
            return None
        assert self.end_day is not None
        for days_back in range(0, 8):
            day = (local - timedelta(days=days_back)).date()
            if day.weekday() != self.start_day:
                continue
            begin = datetime.combine(day, self.start, tz)
            span = (self.end_day - self.start_day) % 7
            finish = datetime.combine(day + timedelta(days=span), self.end, tz)
            if finish <= begin:
                finish += timedelta(days=7)
            if begin <= local < finish:
                return begin.timestamp()
        return None

    def is_session_time(self, now: float) -> bool:
        return self.period_start(now) is not None

    def same_period(self, a: float, b: float) -> bool:
        """Whether two instants fall in the same session period."""
        pa, pb = self.period_start(a), self.period_start(b)
        return pa is not None and pa == pb
