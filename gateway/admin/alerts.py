"""Alerts: what an operator must hear of at once, as an ERROR line in the log and a JSON POST
to each configured webhook (``[alerts] webhooks``; the body is Slack-compatible: its ``text``
is the message, and the other keys say which alert, firing or resolved, and when).

Conditions (:class:`AlertMonitor`): a venue down (and up again), a session dropped without a
Logout, a kill switch engaged (and released), a session's rejects over ``reject_rate`` a
minute, a venue call or a report slower than ``latency`` seconds, a position that differs from
the venue's (reconciliation), the store down (and back). Each alert has a key: while it fires
it is said once, again only after ``repeat_after`` seconds; its end is said once. A condition
that flaps (a venue's stream down and up every few seconds) is said at most once per
``repeat_after`` too: when it fires again sooner after it was last said, it is held back (an
INFO line says so) and its end is not said either; if it still fires once ``repeat_after`` has
passed since it was last said, it is said then (:meth:`Alerts.tick`, every second). A webhook
that fails is logged (its address never: a Slack webhook's URL is its secret) and the alert is
not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.server.acceptor import Acceptor
    from gateway.store.records import PositionAdjustment

    from .venues import VenueState, VenueWatch

log = logging.getLogger("fixgw.alerts")


class Alerts:
    def __init__(self, webhooks: Sequence[str], *, node: str = "", repeat_after: float = 600.0,
                 timeout: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.webhooks = list(webhooks)
        self.node = node
        self.repeat_after = repeat_after
        self.timeout = timeout
        self.clock = clock
        self.firing: dict[str, float] = {}
        """Alert key -> since when it fires (said or held back)."""
        self.said: dict[str, float] = {}
        """Alert key -> when it was last said firing (kept after its end: a flap within
        ``repeat_after`` of it is held back)."""
        self._told: set[str] = set()
        """Keys whose firing was said and whose end was not (yet)."""
        self._held: dict[str, str] = {}
        """Keys firing again within ``repeat_after`` of their last saying -> the text."""
        self.sent = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._closed = False

    def fire(self, key: str, text: str) -> bool:
        """Say ``text`` unless alert ``key`` was said firing less than ``repeat_after`` ago
        (held back when its end was said since: a flap); True when said."""
        now = self.clock()
        self.firing.setdefault(key, now)
        last = self.said.get(key)
        if last is not None and now - last < self.repeat_after:
            if key not in self._told:
                if key not in self._held:
                    log.info("alert %s fires again %.0f s after it was last said: held back "
                             "until %g s have passed (%s)", key, now - last, self.repeat_after,
                             text)
                self._held[key] = text
            return False
        self._say(key, text, now)
        return True

    def _say(self, key: str, text: str, now: float) -> None:
        self.said[key] = now
        self._told.add(key)
        self._held.pop(key, None)
        log.error("ALERT %s: %s", key, text)
        self._post(key, "firing", text)

    def resolve(self, key: str, text: str) -> bool:
        """Alert ``key`` is over: said once (nothing when it was not firing, or when its
        firing was held back)."""
        if self.firing.pop(key, None) is None:
            return False
        self._held.pop(key, None)
        if key not in self._told:
            return False
        self._told.discard(key)
        log.warning("RESOLVED %s: %s", key, text)
        self._post(key, "resolved", text)
        return True

    def tick(self) -> None:
        """Say the firings held back that still fire once ``repeat_after`` has passed since
        they were last said."""
        now = self.clock()
        for key, text in list(self._held.items()):
            if now - self.said.get(key, now) >= self.repeat_after:
                self._say(key, text, now)

    def _post(self, key: str, state: str, text: str) -> None:
        if not self.webhooks or self._closed:
            return
        where = f"fixgw {self.node}" if self.node else "fixgw"
        mark = ":rotating_light:" if state == "firing" else ":white_check_mark:"
        payload = {"text": f"{mark} {where}: {text}", "alert": key, "state": state,
                   "node": self.node,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        for url in self.webhooks:
            task = asyncio.get_running_loop().create_task(self._send(url, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, url: str, payload: dict[str, Any]) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        host = urlsplit(url).hostname or "?"
        try:
            async with self._http.post(url, json=payload) as resp:
                if resp.status >= 300:
                    self.failed += 1
                    log.warning("alert webhook at %s answered %d", host, resp.status)
                    return
            self.sent += 1
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.failed += 1
            log.warning("alert webhook at %s failed: %s", host, type(exc).__name__)

    async def flush(self) -> None:
        """Until every webhook call under way is done (tests, a clean stop)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), self.timeout)
        if self._http is not None:
            await self._http.close()
            self._http = None


class AlertMonitor:
    """Watches the gateway for the conditions of the module docstring."""

    def __init__(self, alerts: Alerts, acceptor: Acceptor, orders: OrderManager,
                 venues: VenueWatch, *, reject_rate: float = 0.0, latency: float = 0.0,
                 interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.alerts = alerts
        self.acceptor = acceptor
        self.orders = orders
        self.venues = venues
        self.reject_rate = reject_rate
        """Rejects a minute of one session over which an alert fires (0: none)."""
        self.latency = latency
        """Seconds a venue call or a report may take before an alert fires (0: none)."""
        self.interval = interval
        self.clock = clock
        self.worst: dict[str, tuple[float, str]] = {}
        """Kind -> (the slowest since the last look, its venue)."""
        self._rejects: dict[str, deque[tuple[float, int]]] = {}
        self._killed: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        venues.listeners.append(self.venue_changed)
        acceptor.traffic.listeners.append(self.session_event)

    # --- hooks --------------------------------------------------------------------------------

    def venue_changed(self, st: VenueState) -> None:
        if st.up:
            self.alerts.resolve(f"venue:{st.name}", f"venue {st.name} is up again ({st.detail})")
        else:
            self.alerts.fire(f"venue:{st.name}", f"venue {st.name} is down: {st.detail}")

    def session_event(self, event: str, sid: str, detail: str) -> None:
        if event == "dropped":
            self.alerts.fire(f"session:{sid}", f"session {sid} dropped without a Logout "
                                               f"({detail})")
        elif event == "logon":
            self.alerts.resolve(f"session:{sid}", f"session {sid} logged on again")

    def timing(self, kind: str, venue: str, seconds: float) -> None:
        if seconds > self.worst.get(kind, (0.0, ""))[0]:
            self.worst[kind] = (seconds, venue)

    def store_changed(self, available: bool, why: str) -> None:
        if available:
            self.alerts.resolve("store", "the store takes writes again")
        else:
            self.alerts.fire("store", f"the store is unavailable: {why}")

    def position_adjusted(self, a: PositionAdjustment) -> None:
        self.alerts.fire(f"reconcile:{a.venue}:{a.symbol}",
                         f"position of {a.symbol} at {a.venue} differed: the venue holds "
                         f"{a.venue_quantity}, the fills made {a.computed} (adjusted by "
                         f"{a.delta})")

    # --- the periodic look --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alerts")

    async def stop(self) -> None:
        """Stop watching (what a stopping gateway ends is no alert), then the webhooks."""
        with contextlib.suppress(ValueError):
            self.venues.listeners.remove(self.venue_changed)
        with contextlib.suppress(ValueError):
            self.acceptor.traffic.listeners.remove(self.session_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.alerts.close()

    async def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:
                log.exception("checking the alert conditions failed")
            await asyncio.sleep(self.interval)

    def check(self) -> None:
        """One look at the kill switch, the reject rates and the latencies (and at the alerts
        held back)."""
        self.alerts.tick()
        killed = self.orders.kill_switches()
        for scope, why in killed.items():
            if scope not in self._killed:
                self.alerts.fire(f"kill-switch:{scope}", f"kill switch of {scope} engaged"
                                 f"{': ' + why if why else ''}")
        for scope in set(self._killed) - set(killed):
            self.alerts.resolve(f"kill-switch:{scope}", f"kill switch of {scope} released")
        self._killed = dict(killed)
        now = self.clock()
        if self.reject_rate > 0:
            for sid, st in self.acceptor.traffic.sessions.items():
                seen = self._rejects.setdefault(sid, deque())
                seen.append((now, st.rejects_total))
                while seen and now - seen[0][0] > 60.0:
                    seen.popleft()
                count = st.rejects_total - seen[0][1]
                key = f"rejects:{sid}"
                if count > self.reject_rate:
                    self.alerts.fire(key, f"session {sid}: {count} rejects in the last minute "
                                          f"(over {self.reject_rate:g})")
                elif key in self.alerts.firing and count <= self.reject_rate / 2:
                    self.alerts.resolve(key, f"session {sid}: rejects back to {count} a minute")
        if self.latency > 0:
            worst, self.worst = self.worst, {}
            for kind in ("order_to_venue", "place", "place_batch", "report"):
                key = f"latency:{kind}"
                seconds, venue = worst.get(kind, (0.0, ""))
                if seconds > self.latency:
                    self.alerts.fire(key, f"{kind.replace('_', ' ')} took {seconds:.3f} s at "
                                          f"{venue} (over {self.latency:g} s)")
                elif kind in worst and key in self.alerts.firing:
                    self.alerts.resolve(key, f"{kind.replace('_', ' ')} back under "
                                             f"{self.latency:g} s")
