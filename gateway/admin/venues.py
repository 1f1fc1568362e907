"""Each venue's real state, as an operator needs it: is its private stream connected and when
did it last say something, does its REST API answer, is the account banned, how much of each
request-rate window is used, and is the order path refusing its orders.

:class:`VenueWatch` asks every connector's ``health()`` every second (cheap: most answer from
what they know; the remote simulator asks it, on loopback) and reads what its WebSockets and
REST client counted; the admin
API, the metrics and the alerts read the last snapshot. A change of a venue's state (up or
down) is told to :attr:`VenueWatch.listeners` (the alerts) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Connector
from connectors.common.http import RestClient
from connectors.common.ratelimit import RateLimiter
from connectors.common.stream import WsStream

log = logging.getLogger("fixgw.admin")


@dataclass(frozen=True, slots=True)
class Window:
    used: int
    limit: int
    reset_in_s: float


@dataclass(slots=True)
class VenueState:
    name: str
    kind: str
    up: bool
    """Orders are taken for it: started, connected, not banned."""
    detail: str
    """The connector's own words (or why the order path refuses its orders)."""
    since: float = field(default_factory=time.time)
    """When ``up`` last changed (UTC seconds)."""
    stream_connected: bool | None = None
    """None: the venue has no private stream (the simulated venue)."""
    stream_reconnects: int = 0
    last_message_age_s: float | None = None
    stream_error: str | None = None
    rest_reachable: bool | None = None
    """None: no REST client (the simulated venue) or nothing asked yet."""
    rest_requests: int = 0
    rest_errors: int = 0
    rest_rate_limited: int = 0
    rest_error: str | None = None
    """The last failure since the venue last answered (the venue is taken for down only while
    it is recent: :meth:`connectors.common.http.RestClient.failing`)."""
    banned_for_s: float = 0.0
    rate_limits: dict[str, Window] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "up": self.up, "detail": self.detail, "kind": self.kind,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "stream": None if self.stream_connected is None else {
                "connected": self.stream_connected, "reconnects": self.stream_reconnects,
                "last_message_age_s": _round(self.last_message_age_s),
                "last_error": self.stream_error},
            "rest": None if self.rest_reachable is None and not self.rest_requests else {
                "reachable": self.rest_reachable, "requests": self.rest_requests,
                "errors": self.rest_errors, "rate_limited": self.rest_rate_limited,
                "last_error": self.rest_error},
            "banned_for_s": _round(self.banned_for_s),
            "rate_limits": {n: {"used": w.used, "limit": w.limit,
                                "usage": round(w.used / w.limit, 4) if w.limit else None,
                                "reset_in_s": _round(w.reset_in_s)}
                            for n, w in sorted(self.rate_limits.items())},
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def parts(conn: Connector) -> tuple[list[WsStream], list[RestClient], list[RateLimiter]]:
    """The connector's private WebSockets, REST clients and rate limiters (its attributes)."""
    streams, rests, limiters = [], [], []
    for v in vars(conn).values():
        if isinstance(v, WsStream):
            streams.append(v)
        elif isinstance(v, RestClient):
            rests.append(v)
        elif isinstance(v, RateLimiter):
            limiters.append(v)
    for r in rests:
        if r.limiter not in limiters:
            limiters.append(r.limiter)
    return streams, rests, limiters


class VenueWatch:
    def __init__(self, connectors: Mapping[str, Connector], down: Mapping[str, str],
                 interval: float = 1.0) -> None:
        self.connectors = connectors
        self.down = down
        """The order path's venues that could not be started (-> why)."""
        self.interval = interval
        self.states: dict[str, VenueState] = {}
        self.listeners: list[Callable[[VenueState], None]] = []
        """Told of every change of a venue's ``up``."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="venue-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the venues' state failed")
            await asyncio.sleep(self.interval)

    async def refresh(self) -> dict[str, VenueState]:
        for name, conn in self.connectors.items():
            state = await self._state(name, conn)
            before = self.states.get(name)
            if before is not None and before.up == state.up:
                state.since = before.since
            self.states[name] = state
            if before is not None and before.up != state.up or before is None and not state.up:
                if state.up:
                    log.warning("venue %s is up again (%s)", name, state.detail)
                else:
                    log.error("venue %s is down: %s", name, state.detail)
                for listener in self.listeners:
                    listener(state)
        return self.states

    async def _state(self, name: str, conn: Connector) -> VenueState:
        now = time.monotonic()
        kind = type(conn).__name__
        try:
            health = await asyncio.wait_for(conn.health(), 2.0)
            up, detail = health.connected, health.detail
        except Exception as exc:  # noqa: BLE001 - a broken connector is a down venue
            up, detail = False, f"health unknown: {type(exc).__name__}: {exc}"
        if name in self.down:
            up, detail = False, f"not started: {self.down[name]}"
        st = VenueState(name, kind, up, detail)
        streams, rests, limiters = parts(conn)
        if streams:
            st.stream_connected = all(s.connected.is_set() for s in streams)
            st.stream_reconnects = sum(max(s.connects - 1, 0) for s in streams)
            last = [s.last_message for s in streams if s.last_message is not None]
            st.last_message_age_s = now - max(last) if last else None
            errors = [f"{type(s.last_error).__name__}: {s.last_error}" for s in streams
                      if s.last_error is not None and not s.connected.is_set()]
            st.stream_error = errors[0] if errors else None
        if rests:
            st.rest_requests = sum(r.requests for r in rests)
            st.rest_errors = sum(r.errors for r in rests)
            st.rest_rate_limited = sum(r.rate_limited for r in rests)
            failing = [e for e in (r.failing(now) for r in rests) if e is not None]
            answered = any(r.last_answer is not None for r in rests)
            erred = [r.last_error for r in rests if r.last_error is not None]
            st.rest_reachable = (not failing) if (answered or erred) else None
            st.rest_error = erred[0] if erred else None
            if failing and up:
                up = st.up = False
                st.detail = f"REST failing: {failing[0]}"
        for lim in limiters:
            st.banned_for_s = max(st.banned_for_s, lim.banned_for)
            for wname, (used, limit, reset_in) in lim.usage().items():
                st.rate_limits[wname] = Window(used, limit, reset_in)
        if st.banned_for_s > 0:
            st.up = False
            st.detail = f"banned by the venue for {st.banned_for_s:.0f} s more"
        return st
