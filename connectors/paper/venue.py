"""``PaperConnector``: the paper exchange behind the connector contract, with injected faults.

Every call is carried out synchronously on :class:`~connectors.paper.exchange.PaperExchange`
(no task per order, no sleep unless ``Faults.latency_s`` asks for one); the events it produced
are then put on one ``asyncio.Queue`` in order, through the event faults (drop, duplicate,
reorder). Faults draw from their own ``random.Random(seed)``, so a run is reproducible and the
market's random walk does not depend on which faults are on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any, Final, TypeVar

from mypy_extensions import mypyc_attr

from connectors.base import (
    AmendRequest,
    Balance,
    BalanceUpdate,
    Capabilities,
    Connector,
    Health,
    Instrument,
    InstrumentKind,
    MarketEvent,
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    PublicTrade,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmbiguous,
    VenueEvent,
    VenueInfo,
    VenueRejected,
    VenueUnavailable,
)
from connectors.common.balances import LatestBalances
from connectors.paper import streams
from connectors.paper.config import Faults, PaperConfig
from connectors.paper.exchange import CLIENT_ORDER_ID_RULES, PaperExchange

T = TypeVar("T")


@mypyc_attr(allow_interpreted_subclasses=True)
class PaperConnector(Connector):
    """An in-process simulated venue: the gateway's embedded default.

    Compiled by mypyc (:mod:`connectors.paper.native`), and subclassed in Python all the same
    (the paper server's :class:`~connectors.paper.server.VenueSimulator`, tests): a compiled
    class refuses interpreted subclasses unless it says so."""

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config = config or PaperConfig()
        self.exchange = PaperExchange(config)
        has_perp = any(m.instrument.kind is InstrumentKind.PERPETUAL for m in config.markets)
        self.info = VenueInfo(
            config.name,
            Capabilities(
                order_types=frozenset(OrderType),
                time_in_force=frozenset(TimeInForce),
                post_only=True,
                reduce_only=has_perp,
                amend=True,
                amend_keeps_priority_on_qty_down=True,
                bulk_cancel=True,
                market_data=True,
                balance_stream=True,
            ),
            CLIENT_ORDER_ID_RULES,
        )
        self._clock = config.clock
        self._queue: asyncio.Queue[VenueEvent | None] = asyncio.Queue()  # None: closed
        self._held: list[VenueEvent] = []
        self._rng = random.Random(config.seed)  # noqa: S311 - fault injection, not crypto
        self._faults = config.faults
        self._quiet = config.faults == _NO_FAULTS
        self._reject_left = self._faults.reject_next
        self._timeout_left = self._faults.timeout_next
        self._ticker: asyncio.Task[None] | None = None
        self._tick_waiters: list[asyncio.Future[int]] = []
        self._closed = False
        self._watchers: list[_Watcher] = []
        self._balances = LatestBalances()
        self._balances_told: dict[str, Balance] | None = None
        """What :meth:`balance_events` last told of each asset (None: nobody reads them)."""

    # ---- faults --------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults (counters ``reject_next``/``timeout_next`` restart from them)."""
        self._faults = faults
        self._quiet = faults == _NO_FAULTS
        self._reject_left = faults.reject_next
        self._timeout_left = faults.timeout_next
        if not faults.reorder_window:
            self.flush_events()

    def update_faults(self, **changes: Any) -> Faults:
        """``set_faults`` with some fields changed, e.g. ``update_faults(unavailable=True)``."""
        self.set_faults(dataclasses.replace(self._faults, **changes))
        return self._faults

    async def _enter(self) -> None:
        faults = self._faults
        if faults.unavailable:
            raise VenueUnavailable(f"{self.name}: unavailable (injected)")
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
            if self._faults.unavailable:
                raise VenueUnavailable(f"{self.name}: unavailable (injected)")

    def _injected_reject(self) -> None:
        if self._reject_left > 0:
            self._reject_left -= 1
            raise VenueRejected(RejectReason.OTHER, "injected")
        if self._faults.reject_rate and self._rng.random() < self._faults.reject_rate:
            raise VenueRejected(RejectReason.OTHER, "injected")

    def _injected_timeout(self) -> str | None:
        """The timeout mode when this call times out, else None."""
        if self._timeout_left > 0:
            self._timeout_left -= 1
            return self._faults.timeout_mode
        if self._faults.timeout_rate and self._rng.random() < self._faults.timeout_rate:
            return self._faults.timeout_mode
        return None

    async def _change(self, change: Callable[[int], T], done: str) -> T:
        """Carry out ``change(now_ns)`` on the exchange and publish what it caused, with the
        faults of the calls that change something (``done`` names it in the timeout's text)."""
        await self._enter()
        self._injected_reject()
        timeout = self._injected_timeout()
        if timeout == "lost":
            raise VenueAmbiguous(f"{self.name}: timed out, request lost (injected)")
        try:
            result = change(self._clock())
        finally:
            self._publish()
        if timeout is not None:
            raise VenueAmbiguous(f"{self.name}: timed out after {done} (injected)")
        return result

    # ---- events --------------------------------------------------------------------------------

    def _publish(self) -> None:
        if self._balances_told is not None:
            self._publish_balances(self._balances_told)
        events = self.exchange.drain_events()
        trades = self.exchange.drain_prints()
        for watcher in self._watchers:  # the book may have changed (called after every change)
            watcher.notice(trades)
        if not events:
            return
        faults = self._faults
        if not (faults.drop_event_rate or faults.duplicate_event_rate or faults.reorder_window):
            put = self._queue.put_nowait
            for event in events:
                put(event)
            return
        rng = self._rng
        for event in events:
            if faults.drop_event_rate and rng.random() < faults.drop_event_rate:
                continue
            copies = (
                2
                if faults.duplicate_event_rate and rng.random() < faults.duplicate_event_rate
                else 1
            )
            for _ in range(copies):
                if faults.reorder_window:
                    self._held.append(event)
                    if len(self._held) >= faults.reorder_window:
                        self._release_held()
                else:
                    self._queue.put_nowait(event)

    def _publish_balances(self, told: dict[str, Balance]) -> None:
        """The assets a change moved (a fill, an order placed, amended or cancelled: what it
        locks or releases), as the venue's account stream would push them."""
        changed = self.exchange.balances_changed(told)
        if not changed:
            return
        now = self._clock()
        for b in changed:
            told[b.asset] = b
        self._balances.put(BalanceUpdate(b.asset, b.free, b.locked, now) for b in changed)

    def balance_events(self) -> AsyncIterator[BalanceUpdate]:
        """Every asset whose free or locked amount a change moved, after that change (the
        faults on order events do not apply); ends after ``close``. What it starts from is
        taken at the first read (an async generator of :mod:`.streams`: mypyc compiles none)."""
        return streams.lazily(self._balance_updates)

    def _balance_updates(self) -> AsyncIterator[BalanceUpdate]:
        if self._balances_told is None:
            self._balances_told = {b.asset: b for b in self.exchange.balances()}
        return self._balances.updates()

    def _release_held(self) -> None:
        held, self._held = self._held, []
        self._rng.shuffle(held)
        for event in held:
            self._queue.put_nowait(event)

    def flush_events(self) -> None:
        """Release events held by ``reorder_window`` now (shuffled)."""
        if self._held:
            self._release_held()

    def events(self) -> AsyncIterator[VenueEvent]:
        """Events in the order the venue produced them (faults aside); ends after ``close``."""
        return streams.until_none(self._queue)

    def drain_nowait(self) -> list[VenueEvent]:
        """Take every event already on the stream without waiting (tests, benchmark)."""
        out: list[VenueEvent] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                out.append(item)
        return out

    # ---- the market clock ----------------------------------------------------------------------

    def tick(self, now_ns: int | None = None) -> None:
        """Advance the markets to ``now_ns`` (default: the clock) and publish what happened."""
        now = self._clock() if now_ns is None else now_ns
        self.exchange.tick(now)
        self._publish()
        self.flush_events()
        waiters, self._tick_waiters = self._tick_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(now)

    async def next_tick(self) -> int:
        """Wait until the market clock has ticked once more; returns that tick's time."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tick_waiters.append(waiter)
        return await waiter

    async def _run_clock(self) -> None:
        interval = self.config.tick_interval_s
        while True:
            await asyncio.sleep(interval)
            self.tick()

    async def start(self) -> None:
        """Start the market clock: a task calling :meth:`tick` every ``tick_interval_s``."""
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._run_clock(), name=f"{self.name}-market-clock"
            )

    async def close(self) -> None:
        """Stop the market clock, release held events, end :meth:`events`."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if not self._closed:
            self._closed = True
            self.flush_events()
            self._queue.put_nowait(None)
            self._balances.close()
            for watcher in self._watchers:
                watcher.changed.set()

    @property
    def running(self) -> bool:
        return self._ticker is not None and not self._ticker.done()

    # ---- the contract --------------------------------------------------------------------------

    async def instruments(self) -> Sequence[Instrument]:
        await self._enter()
        return self.exchange.instruments()

    async def place(self, request: OrderRequest) -> OrderAccepted:
        if self._quiet:  # the hot path: nothing to inject
            try:
                return self.exchange.place(request, self._clock())
            finally:
                self._publish()
        return await self._change(
            lambda now: self.exchange.place(request, now), "the order was placed"
        )

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        await self._change(
            lambda now: self.exchange.cancel(symbol, client_order_id, now), "the cancel was done"
        )

    async def amend(self, request: AmendRequest) -> None:
        await self._change(lambda now: self.exchange.amend(request, now), "the amend was done")

    async def cancel_all(self, symbol: str | None = None) -> int:
        return await self._change(
            lambda now: self.exchange.cancel_all(symbol, now), "cancel_all was done"
        )

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """By client order id (the paper venue keeps every id an order had; its venue
        order id adds nothing)."""
        await self._enter()
        return self.exchange.query_order(symbol, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        await self._enter()
        return self.exchange.open_orders(symbol)

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        await self._enter()
        return self.exchange.fills_since(since_ns)

    async def balances(self) -> Sequence[Balance]:
        await self._enter()
        return self.exchange.balances()

    async def positions(self) -> Sequence[Position]:
        await self._enter()
        return self.exchange.positions()

    def last_price(self, symbol: str) -> Decimal | None:
        try:
            return self.exchange.last_price(symbol)
        except KeyError:
            return None

    def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """The simulated venue's public feed: its book aggregated by price (the best
        :data:`MD_DEPTH` levels a side), as a snapshot, then the levels that changed after each
        change of the exchange (several changes between two reads come as one update); a trade
        for each trade at the book, ours and the synthetic market's (``MarketConfig.trade_rate``),
        the taker's side as the aggressor. Unknown symbol: KeyError (at the first read). An
        async generator of :mod:`.streams` (mypyc compiles none)."""
        return streams.market_data(symbol, self._watch, self._levels, self._clock,
                                   self._is_closed, self._unwatch)

    def _is_closed(self) -> bool:
        return self._closed

    def _unwatch(self, watcher: streams.Watcher) -> None:
        self._watchers.remove(watcher)  # type: ignore[arg-type]

    def _watch(self, symbol: str) -> _Watcher:
        """A new reader of the public feed of ``symbol``, woken by :meth:`_publish`."""
        self.exchange.book(symbol)  # KeyError when the venue does not list it
        watcher = _Watcher(symbol)
        self._watchers.append(watcher)
        return watcher

    def _levels(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        book = self.exchange.book(symbol)
        return (dict(book.levels(Side.BUY)[:MD_DEPTH]), dict(book.levels(Side.SELL)[:MD_DEPTH]))

    async def health(self) -> Health:
        faults = self._faults
        latency_ms = faults.latency_s * 1000.0
        if faults.unavailable:
            return Health(False, "unavailable (injected)", latency_ms)
        return Health(True, "clock running" if self.running else "clock stopped", latency_ms)


_NO_FAULTS: Final = Faults()

MD_DEPTH: Final = 50
"""Levels a side the simulated venue's public feed shows."""


class _Watcher:
    """One reader of the public feed of one instrument: woken after every change."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.changed = asyncio.Event()
        self._trades: list[PublicTrade] = []

    def notice(self, trades: Sequence[PublicTrade]) -> None:
        self._trades.extend(t for t in trades if t.symbol == self.symbol)
        self.changed.set()

    def take_trades(self) -> list[PublicTrade]:
        out, self._trades = self._trades, []
        return out
