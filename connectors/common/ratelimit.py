"""Client-side accounting of a venue's request limits, so requests wait *before* a limit is hit.

A venue states its limits as counters over fixed windows (Binance: request weight per minute,
orders per 10 s and per day; OKX and Bybit: requests per endpoint per second or two). A
:class:`RateLimiter` holds one :class:`Window` per counter; a request names what it costs in
each (``{"weight": 4, "orders_10s": 1}``) and waits until every window has room.

Order traffic comes first: requests of :attr:`Priority.ORDER` may use a window to the full,
others only up to ``background_share`` of it, so polling and reconciliation can never starve
order entry. The venue's own view, when it tells us (Binance's ``X-MBX-USED-WEIGHT-1M``), is
folded in with :meth:`RateLimiter.observe`. A 429 blocks every window for its Retry-After; a ban
(Binance 418) blocks until it ends and makes :attr:`RateLimiter.banned` true, so callers fail
fast instead of queueing a retry storm.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    ORDER = 0
    """Place, cancel, amend: may use the whole window."""
    QUERY = 1
    """A query the gateway is waiting on (resolution of an ambiguous order)."""
    BACKGROUND = 2
    """Polling, reconciliation, instrument loads."""


@dataclass(frozen=True, slots=True)
class WindowSpec:
    name: str
    limit: int
    interval_s: float


class Window:
    """A fixed window aligned on multiples of its interval (as Binance's are)."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.used = 0
        self._start = -math.inf

    def _roll(self, now: float) -> None:
        start = now - (now % self.spec.interval_s)
        if start != self._start:
            self._start = start
            self.used = 0

    def room(self, now: float, share: float) -> int:
        self._roll(now)
        return math.floor(self.spec.limit * share) - self.used

    def reset_in(self, now: float) -> float:
        self._roll(now)
        return self._start + self.spec.interval_s - now


class RateLimited(Exception):  # noqa: N818 - a state, like asyncio.TimeoutError
    """A request would wait longer than its caller allows."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limit: {wait_s:.1f} s until there is room")
        self.wait_s = wait_s


class RateLimiter:
    def __init__(
        self,
        windows: tuple[WindowSpec, ...] = (),
        *,
        background_share: float = 0.8,
        query_share: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.windows = {w.name: Window(w) for w in windows}
        self._share = {Priority.ORDER: 1.0, Priority.QUERY: query_share,
                       Priority.BACKGROUND: background_share}
        self._clock = clock
        self._blocked_until = 0.0
        self._banned_until = 0.0
        self._order_waiters = 0
        self._changed = asyncio.Event()

    @property
    def banned(self) -> bool:
        return self._clock() < self._banned_until

    @property
    def banned_for(self) -> float:
        return max(0.0, self._banned_until - self._clock())

    def add_window(self, spec: WindowSpec) -> None:
        self.windows.setdefault(spec.name, Window(spec))

    def set_window(self, spec: WindowSpec) -> None:
        """Add window ``spec``, or change the limit of the window of that name (what the venue
        says an account may do); what it has used so far is kept."""
        w = self.windows.get(spec.name)
        if w is None:
            self.windows[spec.name] = Window(spec)
            return
        if w.spec.interval_s != spec.interval_s:
            w = self.windows[spec.name] = Window(spec)
        w.spec = spec

    def _wait_needed(self, costs: Mapping[str, int], priority: Priority) -> float:
        now = self._clock()
        wait = max(self._blocked_until, self._banned_until) - now
        if priority is not Priority.ORDER and self._order_waiters:
            wait = max(wait, 0.05)  # orders waiting go first (woken when they are through)
        share = self._share[priority]
        for name, cost in costs.items():
            w = self.windows.get(name)
            if w is None or cost <= 0:
                continue
            if w.room(now, share) < cost:
                wait = max(wait, w.reset_in(now) + 0.001)
        return wait

    async def acquire(
        self, costs: Mapping[str, int], priority: Priority = Priority.BACKGROUND,
        max_wait_s: float = math.inf,
    ) -> None:
        """Wait until every window has room for ``costs``, then count them. Raises
        :class:`RateLimited` when that would take longer than ``max_wait_s``."""
        waited = 0.0
        is_order = priority is Priority.ORDER
        if is_order:
            self._order_waiters += 1
        try:
            while True:
                wait = self._wait_needed(costs, priority)
                if wait <= 0:
                    break
                if waited + wait > max_wait_s:
                    raise RateLimited(wait)
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass
                waited += wait
        finally:
            if is_order:
                self._order_waiters -= 1
                self._changed.set()
        now = self._clock()
        for name, cost in costs.items():
            w = self.windows.get(name)
            if w is not None:
                w.room(now, 1.0)
                w.used += cost

    def usage(self) -> dict[str, tuple[int, int, float]]:
        """Window name -> (used, limit, seconds until it resets), now (metrics, health)."""
        now = self._clock()
        out = {}
        for name, w in self.windows.items():
            w.room(now, 1.0)
            out[name] = (w.used, w.spec.limit, w.reset_in(now))
        return out

    def observe(self, name: str, used: int) -> None:
        """The venue says ``used`` of window ``name`` is spent (it may count requests we do not
        see, from other processes on the same key)."""
        w = self.windows.get(name)
        if w is not None:
            w.room(self._clock(), 1.0)
            w.used = max(w.used, used)

    def block_for(self, seconds: float) -> None:
        """Nothing goes out for ``seconds`` (a 429 with Retry-After)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def ban_for(self, seconds: float) -> None:
        """The venue banned us (Binance 418): nothing goes out until it ends."""
        self._banned_until = max(self._banned_until, self._clock() + seconds)
