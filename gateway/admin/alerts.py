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
passed since it was last said, it is said then (:meth:`Alerts.tick`, every second).

Each webhook is told its alerts in the order they were said, one at a time (:class:`_Webhook`).
One that cannot be reached, times out, or answers 408, 429 or 5xx is asked again after 1, 2, 4
... seconds (at most 30; longer when its answer's Retry-After says so, up to 30 too) for
``retry_for`` seconds from when the alert was said, the alerts said meanwhile waiting behind
it; then that alert is given up (a WARNING). Any other answer over 299 is given up at once
(the URL or the payload is wrong: asking again would not mend it), and so is one that fails in
a way not foreseen (logged by its type). Delivery is at least once: a webhook that took an
alert but answered too late is asked again. At most ``max_waiting`` alerts wait for a webhook:
past that the oldest waiting is dropped, said in the log. A failure is logged without the
webhook's address (a Slack webhook's URL is its secret). On a stop, what waits gets one more
try, all within ``timeout``; what is still waiting then is lost, said in the log.
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

from connectors.common.http import retry_after

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.server.acceptor import Acceptor
    from gateway.store.records import PositionAdjustment

    from .venues import VenueState, VenueWatch

log = logging.getLogger("fixgw.alerts")

RETRY_FIRST = 1.0
"""Seconds before a webhook that failed is asked again (doubled after each failure)."""
RETRY_MAX = 30.0
"""At most this many seconds between two tries (an answer's Retry-After is followed up to it)."""
_TRANSIENT = frozenset({408, 429})
"""Answers under 500 that say "later", not "never"."""


class Alerts:
    def __init__(self, webhooks: Sequence[str], *, node: str = "", repeat_after: float = 600.0,
                 timeout: float = 5.0, retry_for: float = 300.0, max_waiting: int = 100,
                 retry_first: float = RETRY_FIRST, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.webhooks = list(webhooks)
        self.node = node
        self.repeat_after = repeat_after
        self.timeout = timeout
        self.retry_for = retry_for
        """Seconds from when an alert is said during which a webhook that failed is asked
        again (0: never)."""
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be at least 1, not {max_waiting}")
        self.max_waiting = max_waiting
        self.retry_first = retry_first
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
        """Alerts a webhook took (2xx), one per webhook."""
        self.failed = 0
        """Alerts given up (refused, or failing for ``retry_for``), one per webhook."""
        self.retried = 0
        """Tries after a failure."""
        self.dropped = 0
        """Alerts dropped unsent: ``max_waiting`` were waiting for their webhook."""
        self._hooks = [_Webhook(self, url) for url in self.webhooks]
        self._http: aiohttp.ClientSession | None = None
        self._closed = False
        self.stopping = asyncio.Event()
        """Set by :meth:`close`: waits for a retry end at once."""

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
        if not self._hooks or self._closed:
            return
        where = f"fixgw {self.node}" if self.node else "fixgw"
        mark = ":rotating_light:" if state == "firing" else ":white_check_mark:"
        payload = {"text": f"{mark} {where}: {text}", "alert": key, "state": state,
                   "node": self.node,
                   "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        now = self.clock()
        for hook in self._hooks:
            hook.add(payload, now)

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._http

    async def flush(self) -> None:
        """Until every webhook has taken or given up what waits for it (tests, a clean stop)."""
        while busy := [h.task for h in self._hooks if h.task is not None]:
            await asyncio.wait(busy)

    async def close(self) -> None:
        """No more alerts; what waits for a webhook gets one more try within ``timeout``."""
        self._closed = True
        self.stopping.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), self.timeout)
        for hook in self._hooks:
            hook.abandon()
        if self._http is not None:
            await self._http.close()
            self._http = None


class _Webhook:
    """One webhook's alerts, told in order by one task at a time, each retried while its
    failures say "later" (the module docstring)."""

    def __init__(self, alerts: Alerts, url: str) -> None:
        self.alerts = alerts
        self.url = url
        self.host = urlsplit(url).hostname or "?"
        """What the log names it by (never the URL: its path is the secret)."""
        self.waiting: deque[tuple[dict[str, Any], float]] = deque()
        """(payload, when said), oldest first; the first is the one being told."""
        self.task: asyncio.Task[None] | None = None

    def add(self, payload: dict[str, Any], now: float) -> None:
        self.waiting.append((payload, now))
        if len(self.waiting) > self.alerts.max_waiting:
            # the oldest behind the one being told (the task holds that one)
            dropped, _ = self.waiting[1]
            del self.waiting[1]
            self.alerts.dropped += 1
            log.warning("alert webhook at %s: %d alerts waiting; %s (%s) dropped unsent",
                        self.host, self.alerts.max_waiting, dropped["alert"], dropped["state"])
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"alert-webhook-{self.host}")

    def abandon(self) -> None:
        """The gateway stops: what still waits is lost, said once."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.waiting:
            log.warning("alert webhook at %s: %d alerts not told (stopping)", self.host,
                        len(self.waiting))
            self.waiting.clear()

    async def _run(self) -> None:
        alerts = self.alerts
        try:
            while self.waiting:
                payload, said = self.waiting[0]
                delay = alerts.retry_first
                tries = 1
                while (failure := await self._send(payload)) is not None:
                    why, asked = failure
                    wait = min(max(delay, asked), RETRY_MAX)
                    stopping = alerts.stopping.is_set()
                    if stopping or alerts.clock() + wait - said > alerts.retry_for:
                        alerts.failed += 1
                        log.warning("alert webhook at %s %s: %s (%s) given up after %d tries%s",
                                    self.host, why, payload["alert"], payload["state"], tries,
                                    " (stopping)" if stopping else "")
                        break
                    log.log(logging.WARNING if tries == 1 else logging.DEBUG,
                            "alert webhook at %s %s: %s (%s) asked again in %g s", self.host,
                            why, payload["alert"], payload["state"], wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(alerts.stopping.wait(), wait)
                    delay = min(delay * 2, RETRY_MAX)
                    tries += 1
                    alerts.retried += 1
                if self.waiting and self.waiting[0][0] is payload:
                    self.waiting.popleft()
        finally:
            if self.task is asyncio.current_task():
                self.task = None

    async def _send(self, payload: dict[str, Any]) -> tuple[str, float] | None:
        """Tell the webhook: None when done with it (taken, or refused for good), else why it
        failed and the seconds its answer asks to wait (0: no say)."""
        alerts = self.alerts
        try:
            async with alerts.http().post(self.url, json=payload) as resp:
                if resp.status < 300:
                    alerts.sent += 1
                    return None
                if resp.status in _TRANSIENT or resp.status >= 500:
                    return f"answered {resp.status}", retry_after(resp.headers, 0.0)
                alerts.failed += 1
                log.warning("alert webhook at %s answered %d: %s (%s) given up", self.host,
                            resp.status, payload["alert"], payload["state"])
                return None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"failed: {type(exc).__name__}", 0.0
        except Exception as exc:  # (its text may hold the URL: its type only)
            alerts.failed += 1
            log.warning("alert webhook at %s failed unexpectedly (%s): %s (%s) given up",
                        self.host, type(exc).__name__, payload["alert"], payload["state"])
            return None


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
