"""The part of a native connector that is the same for every venue: the event stream with
duplicates dropped, tracking of the orders it placed, and reconciliation after a reconnect.

A venue's private stream can deliver an event twice (a reconnect replays, the REST catch-up
finds a fill the stream also pushed) and can miss events while it is down. The connector
therefore: drops a fill whose trade id it has already emitted and a status event it has already
emitted for the same order; and after every reconnect asks the venue over REST for the fills
since the last one it saw and for the orders it knows as open that are no longer open, and
emits what it had not (Invariant 4). The gateway then runs its own reconciliation through
:attr:`StreamingConnector.on_reconnect`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    MutableMapping,
    Sequence,
)
from decimal import Decimal
from typing import TypeVar

from connectors.base import (
    BalanceUpdate,
    Connector,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderState,
    RejectReason,
    VenueError,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.common.balances import LatestBalances

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

FILL_LOOKBACK_NS = 5_000_000_000
"""The fill catch-up after a reconnect starts this long before the last fill seen (venue clocks
and event times are not in step)."""


class SeenSet:
    """The last ``size`` keys seen, oldest forgotten first."""

    def __init__(self, size: int = 200_000) -> None:
        self._keys: OrderedDict[object, None] = OrderedDict()
        self._size = size

    def add(self, key: object) -> bool:
        """True when ``key`` is new."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def discard(self, key: object) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)


class BoundedDict(MutableMapping[K, V]):
    """A dict of at most ``size`` entries: the least recently written is forgotten first. For
    per-order lookups that have a fallback (a venue query) when an old entry is gone, so a
    gateway that runs for months does not grow without end."""

    def __init__(self, size: int = 200_000) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def state_event(state: OrderState, ts_ns: int) -> VenueEvent | None:
    """The event that brings a listener up to ``state`` (fills excepted)."""
    if state.status is VenueStatus.CANCELED:
        return OrderCanceled(state.client_order_id, state.venue_order_id, ts_ns,
                             "canceled at the venue", state.filled_quantity)
    if state.status is VenueStatus.EXPIRED:
        return OrderExpired(state.client_order_id, state.venue_order_id, ts_ns,
                            state.filled_quantity)
    if state.status is VenueStatus.REJECTED:
        return OrderRejected(state.client_order_id, RejectReason.OTHER, "rejected by the venue",
                             ts_ns)
    if state.status in (VenueStatus.NEW, VenueStatus.PARTIALLY_FILLED, VenueStatus.PENDING):
        return OrderAccepted(state.client_order_id, state.venue_order_id, ts_ns)
    return None


def _event_key(ev: VenueEvent) -> object:
    if isinstance(ev, OrderFilled):
        return ("fill", ev.trade_id)
    if isinstance(ev, OrderAmended):
        return ("amend", ev.client_order_id, ev.quantity, ev.price, ev.new_client_order_id)
    return (type(ev).__name__, ev.client_order_id)


class StreamingConnector(Connector):
    """Base of the native connectors (see the module doc). Subclasses call :meth:`emit` for
    every event they decode, :meth:`track` for every order they place, and give
    :meth:`after_reconnect` to their private stream as its ``on_reconnected``."""

    def __init__(self) -> None:
        self._events: asyncio.Queue[VenueEvent] = asyncio.Queue()
        self._seen = SeenSet()
        self._open: dict[str, str] = {}
        """client order id -> symbol, of the orders this connector knows as open."""
        self._last_fill_ns = 0
        self._started_ns = time.time_ns()
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []
        """Run after the connector's own catch-up on every reconnect (the gateway reconciles)."""
        self.duplicates_dropped = 0
        self._balances = LatestBalances()

    # ---- events ------------------------------------------------------------------------

    def emit(self, ev: VenueEvent) -> bool:
        """Queue ``ev`` for the gateway unless it was already emitted; True when queued."""
        if not self._seen.add(_event_key(ev)):
            self.duplicates_dropped += 1
            return False
        if isinstance(ev, OrderFilled):
            self._last_fill_ns = max(self._last_fill_ns, ev.ts_ns)
        elif isinstance(ev, OrderCanceled | OrderExpired | OrderRejected):
            self._open.pop(ev.client_order_id, None)
        elif isinstance(ev, OrderAmended) and ev.new_client_order_id:
            sym = self._open.pop(ev.client_order_id, None)
            if sym is not None:
                self._open[ev.new_client_order_id] = sym
        self._events.put_nowait(ev)
        return True

    async def events(self) -> AsyncIterator[VenueEvent]:
        while True:
            yield await self._events.get()

    def emit_balances(self, updates: Sequence[BalanceUpdate]) -> None:
        """Balances the private stream pushed (absolute figures: no deduplication needed)."""
        self._balances.put(updates)

    async def balance_events(self) -> AsyncIterator[BalanceUpdate]:
        async for u in self._balances.updates():
            yield u

    def track(self, client_order_id: str, symbol: str) -> None:
        """An order this connector placed (or found open): watched across reconnects."""
        self._open[client_order_id] = symbol

    def untrack(self, client_order_id: str) -> None:
        self._open.pop(client_order_id, None)

    @property
    def tracked(self) -> dict[str, str]:
        return dict(self._open)

    # ---- reconciliation ------------------------------------------------------------------

    async def after_reconnect(self) -> None:
        """Fills since the last one seen, and the orders that stopped being open, then the
        gateway's own reconciliation."""
        try:
            await self.catch_up()
        except VenueError as exc:
            log.warning("%s: catch-up after reconnect failed: %s", self.name, exc)
        for hook in list(self.on_reconnect):
            try:
                await hook()
            except Exception:
                log.exception("%s: reconnect hook failed", self.name)

    async def catch_up(self) -> None:
        since = max(self._last_fill_ns, self._started_ns) - FILL_LOOKBACK_NS
        if self._open or self._last_fill_ns:
            fills = await self.fills_since(since)
            for f in sorted(fills, key=lambda f: f.ts_ns):
                self.emit(f)
        if not self._open:
            return
        still_open = {s.client_order_id: s for s in await self.open_orders()}
        for coid, symbol in list(self._open.items()):
            if coid in still_open:
                continue
            state = await self.query_order(symbol, coid)
            if state is None:
                continue
            if not state.status.is_open:
                self.untrack(coid)  # filled (or ended): nothing more to watch
            ev = state_event(state, state.updated_ns)
            if ev is not None and not isinstance(ev, OrderAccepted):
                self.emit(ev)


MS = 1_000_000
"""Nanoseconds per millisecond (venues stamp in ms; our types in ns)."""


def nothing_placed(exc: VenueError) -> bool:
    """Whether a request that failed with ``exc`` surely placed nothing (its orders need not
    be tracked): the venue was not reached, or refused it -- except as a duplicate, which says
    the order is there."""
    return isinstance(exc, VenueUnavailable) or (
        isinstance(exc, VenueRejected) and exc.reason is not RejectReason.DUPLICATE_ORDER)


def plain(value: Decimal) -> str:
    """``value`` as a plain decimal string, the form the venues document for prices and
    quantities: never exponent notation (``str(Decimal("1E-7"))`` is ``"1E-7"``; this is
    ``"0.0000001"``), no trailing zeros after the point, nothing rounded."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def dec_or_zero(value: str) -> Decimal:
    """A venue's numeric string as Decimal; "" (the venues' "none") as 0."""
    return Decimal(value) if value else Decimal(0)


def ms_to_ns(ms: str | int | None) -> int:
    """A venue's millisecond timestamp (string or int; "" or None: 0) as UTC ns."""
    return int(ms) * MS if ms not in ("", None) else 0


def dec(value: str | int | float | None) -> Decimal | None:
    """A venue's numeric string as Decimal; None or "" as None."""
    if value is None or value == "":
        return None
    return Decimal(str(value))
