"""A generic connector over ccxt's unified async API, for venues without a native connector.

It is less exact than the native connectors, and says so:

* Events come from ccxt.pro's ``watch_orders``/``watch_my_trades`` where the exchange has them
  (and its WebSocket is not overridden away), otherwise from a polling loop (``poll_interval_s``,
  default 1 s) over ``fetch_open_orders``, ``fetch_order`` and ``fetch_my_trades`` for the orders
  this connector tracks. Polling sees a change up to one interval late, sees a partial fill and
  the cancel that followed it in one round, and reports a terminal status only once the fills
  adding up to the order's filled quantity were emitted (or after a few rounds regardless).
* Fees and maker/taker come from ccxt's trade structure: None where the venue's trade history
  does not give them. Status granularity is ccxt's (open/closed/canceled/expired/rejected).
* Rate limits are ccxt's own throttler (``enableRateLimit``) plus a client-side limiter that
  lets order entry pass polling; a 429 (ccxt ``DDoSProtection``/``RateLimitExceeded``) is
  retried a bounded number of times, honouring Retry-After when ccxt exposes the headers.
* A query by client order id uses ccxt's ``fetchOrder('', symbol, {"clientOrderId": ...})`` on
  venues known to support it; elsewhere it scans open and closed orders, so "not found" there
  is weaker evidence than a venue's "order does not exist".
* The dead-man switch is ccxt's ``cancelAllOrdersAfter`` where the exchange has it.
* :meth:`market_data` is ccxt.pro's ``watch_order_book``/``watch_trades`` where the exchange
  has them (and its WebSocket is not overridden away): ccxt keeps the book with its own reading
  of the venue's integrity rules, and returns it whole; :mod:`connectors.ccxt.marketdata`
  makes the snapshot and the updates of it (Decimal from ccxt's floats: see its precision note).
* :meth:`last_price` is the last price polled (at the end of ``start()`` and every
  ``price_poll_s``, default 5 s, at background priority; see :mod:`connectors.ccxt.prices`),
  or the price of this connector's last fill, if newer.

Amounts and prices go to ccxt as strings made by ``amount_to_precision``/``price_to_precision``
(an order the rounding would change is refused here, never silently altered); ccxt's floats
come back through :mod:`connectors.ccxt.schemas` as Decimal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from connectors.base import (
    AmendRequest,
    Balance,
    Health,
    Instrument,
    MarketEvent,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    RejectReason,
    TimeInForce,
    VenueError,
    VenueEvent,
    VenueInfo,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.ccxt.errors import is_ban, is_rate_limit, map_error, redact
from connectors.ccxt.exchange import (
    build_exchange,
    capabilities,
    client_order_id_rules,
    queries_by_client_order_id,
    watch_fee_negated,
    ws_override,
    ws_reconnected,
)
from connectors.ccxt.marketdata import CcxtBookFeed, decimal_of, run_book_feed
from connectors.ccxt.prices import PRICE_POLL_S, fetch_last_prices, price_method, price_symbols
from connectors.ccxt.schemas import (
    BALANCE,
    MARKET,
    ORDER,
    POSITION,
    TRADE,
    CcxtOrder,
    CcxtTrade,
)
from connectors.ccxt.tracking import CLOSED_KEPT, TrackingConnector
from connectors.common.backoff import Backoff
from connectors.common.http import retry_after
from connectors.common.ratelimit import Priority, RateLimiter, WindowSpec
from connectors.common.settings import VenueSettings
from connectors.common.venue import FILL_LOOKBACK_NS, MS, state_event

log = logging.getLogger(__name__)

TERMINAL_WAIT_ROUNDS = 3
"""Polling rounds a terminal status waits for its fills before it is emitted anyway."""
BAN_DEFAULT_S = 120.0
SETTLE_S = 0.5
"""A WebSocket that ccxt reopened and that stayed up this long without a message counts as
back (for the catch-up after a reconnect)."""


def _plain(value: Decimal) -> str:
    return format(value, "f")


class CcxtConnector(TrackingConnector):
    """One account at one ccxt exchange. ``options`` are ccxt's exchange options, plus ours:
    ``poll_interval_s`` (1.0; or the ``poll_interval`` keyword), ``events`` ("auto", "stream"
    or "poll"), ``rate_limit_retries`` (4), ``amend`` (override of the native-amend
    capability), ``closed_orders_kept`` (``CLOSED_KEPT``), ``price_poll_s``
    (``PRICE_POLL_S``; 0 turns the price poll off) and ``book_depth`` (the ``limit`` of
    ``watch_order_book``; default ccxt's for the venue).

    What it remembers of each order stays bounded (:mod:`connectors.ccxt.tracking`)."""

    def __init__(self, settings: VenueSettings, exchange_id: str,
                 options: Mapping[str, Any] | None = None, exchange: Any | None = None,
                 *, poll_interval: float | None = None) -> None:
        opts = dict(options or {})
        self.poll_interval_s = float(opts.pop("poll_interval_s", poll_interval or 1.0))
        mode = str(opts.pop("events", "auto"))
        self.rate_limit_retries = int(opts.pop("rate_limit_retries", 4))
        amend_override = opts.pop("amend", None)
        closed_kept = int(opts.pop("closed_orders_kept", CLOSED_KEPT))
        self.price_poll_s = float(opts.pop("price_poll_s", PRICE_POLL_S))
        depth = opts.pop("book_depth", None)
        self.book_depth: int | None = None if depth is None else int(depth)
        if mode not in ("auto", "stream", "poll"):
            raise ValueError(f"events must be auto, stream or poll, not {mode!r}")
        super().__init__(closed_kept)
        self.settings = settings
        self.exchange_id = exchange_id
        # REST pointed elsewhere (an emulator) without a WebSocket override: never let the
        # stream go to the real venue
        ws_ok = ws_override(settings.urls) is not None or "rest" not in settings.urls
        if exchange is None:
            # ccxt.pro's class whenever its WebSockets may be used (order events by polling
            # still get the public watchers)
            exchange = build_exchange(exchange_id, settings, opts,
                                      pro=mode == "stream" or ws_ok)
        self.exchange: Any = exchange
        has = exchange.has
        can_watch = bool(has.get("watchOrders")) and bool(has.get("watchMyTrades"))
        self.streaming = mode == "stream" or (mode == "auto" and ws_ok and can_watch
                                              and hasattr(exchange, "watch_orders"))
        market_data = (mode == "stream" or ws_ok) and bool(has.get("watchOrderBook")) \
            and hasattr(exchange, "watch_order_book")
        self._watch_public_trades = market_data and bool(has.get("watchTrades")) \
            and hasattr(exchange, "watch_trades")
        self.info = VenueInfo(
            name=settings.name,
            capabilities=dataclasses.replace(
                capabilities(exchange, settings.markets, exchange_id,
                             None if amend_override is None else bool(amend_override)),
                market_data=market_data),
            client_order_id_rules=client_order_id_rules(exchange_id),
        )
        self._by_client_id = queries_by_client_order_id(exchange_id)
        self._negate_watch_fee = watch_fee_negated(exchange_id)
        self._instruments: dict[str, Instrument] = {}
        self.md_feeds: dict[str, CcxtBookFeed] = {}
        """The public feeds being read, by symbol (one per :meth:`market_data` call)."""
        self._last_price: dict[str, Decimal] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since_ms: int | None = None
        """When a watch first failed (ms, our clock), until the catch-up after it ran."""
        self._reconnect_waiter: asyncio.Task[None] | None = None
        self._poll_since_ms = 0
        self.clock_offset_ms = 0
        """The venue's clock minus ours, measured at start()."""
        self.latency_ms: float | None = None
        self.rate_limited = 0
        """429s (ccxt DDoSProtection/RateLimitExceeded) seen."""
        self.dead_man_armed = False
        self._last_ok = 0.0
        self._last_error = ""
        self._closed = False
        per_s = max(1, int(1000 / max(float(getattr(exchange, "rateLimit", 50) or 50), 1.0)))
        self.limiter = RateLimiter((WindowSpec("requests", per_s, 1.0),))

    # ---- calls through ccxt ------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any,
                    mutating: bool = False, priority: Priority = Priority.BACKGROUND) -> Any:
        """``fn(*args)`` with our priorities, bounded 429 retries and ccxt's exceptions mapped
        (:func:`connectors.ccxt.errors.map_error`)."""
        backoff = Backoff(0.1, 2.0)
        waited = 0.0
        attempts = 0
        while True:
            if self.limiter.banned:
                raise VenueUnavailable(f"{self.name}: banned by the venue for "
                                       f"{self.limiter.banned_for:.0f} s more")
            await self.limiter.acquire({"requests": 1}, priority)
            started = time.monotonic()
            try:
                result = await fn(*args)
            except ccxt_async.BaseError as exc:
                if is_ban(exc):
                    wait = self._retry_after(BAN_DEFAULT_S)
                    self.limiter.ban_for(wait)
                    log.error("%s: banned by the venue for %.0f s", self.name, wait)
                elif is_rate_limit(exc):
                    self.rate_limited += 1
                    wait = max(self._retry_after(0.0), backoff.next())
                    if attempts < self.rate_limit_retries and \
                            waited + wait <= self.settings.max_429_wait_s:
                        attempts += 1
                        waited += wait
                        log.warning("%s: %s rate limited, retry %d in %.2f s", self.name, what,
                                    attempts, wait)
                        await asyncio.sleep(wait)
                        continue
                elif (not mutating and attempts < 2
                      and isinstance(exc, ccxt_async.NetworkError)
                      and not isinstance(exc, ccxt_async.InvalidNonce)):
                    attempts += 1
                    await asyncio.sleep(backoff.next())
                    continue
                err = map_error(exc, what=f"{self.name} {what}", mutating=mutating)
                self._last_error = str(err)
                raise err from None
            self._last_ok = time.monotonic()
            self.latency_ms = (self._last_ok - started) * 1000
            return result

    def _retry_after(self, default: float) -> float:
        headers = getattr(self.exchange, "last_response_headers", None)
        return retry_after(headers, default) if isinstance(headers, Mapping) else default

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.measure_clock()
        await self._load_instruments()
        self._poll_since_ms = self._venue_now_ms() - FILL_LOOKBACK_NS // MS
        if self.streaming:
            self._spawn(self._watch("orders", self.exchange.watch_orders, self._on_orders))
            self._spawn(self._watch("trades", self.exchange.watch_my_trades, self._on_trades))
        else:
            self._spawn(self._poll_loop())
        dead_man = self.settings.dead_man_s
        if dead_man and self.exchange.has.get("cancelAllOrdersAfter"):
            await self.refresh_dead_man()
            self._spawn(self._dead_man_loop(dead_man))
        if self.price_poll_s > 0 and price_method(self.exchange.has) is not None:
            try:
                await self.poll_prices()
            except Exception as exc:  # a price later is better than no venue at all
                log.warning("%s: no last prices at start: %s", self.name, redact(str(exc)))
            self._spawn(self._price_loop())

    async def close(self) -> None:
        self._closed = True
        await self.stop_tasks()
        for feed in list(self.md_feeds.values()):
            await feed.close()
        with contextlib.suppress(Exception):
            await self.exchange.close()

    async def stop_tasks(self) -> None:
        """Stop polling, watching and the dead-man refresh (without cancelling any order)."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):  # stop_tasks() took the list already
            self._tasks.remove(task)

    async def measure_clock(self) -> None:
        """The venue's clock against ours (ccxt ``fetch_time``), handed to ccxt as
        ``options['timeDifference']`` (local minus venue, as ccxt's load_time_difference sets
        it) so signed requests carry the venue's time."""
        if not self.exchange.has.get("fetchTime"):
            return
        t0 = time.time_ns()
        server_ms = await self._call("fetchTime", self.exchange.fetch_time)
        t1 = time.time_ns()
        if server_ms is None:
            return
        self.clock_offset_ms = int(server_ms) - (t0 + t1) // 2 // MS
        self.exchange.options["timeDifference"] = -self.clock_offset_ms

    def _venue_now_ms(self) -> int:
        return time.time_ns() // MS + self.clock_offset_ms

    async def _load_instruments(self) -> None:
        markets = await self._call("loadMarkets", self.exchange.load_markets)
        mode = int(getattr(self.exchange, "precisionMode", 4))
        wanted = set(self.settings.symbols) if self.settings.symbols else None
        out: dict[str, Instrument] = {}
        for raw in (markets or {}).values():
            m = MARKET.convert(raw)
            if m.active is False:
                continue
            if not ((m.spot and "spot" in self.settings.markets)
                    or (m.is_linear_perpetual and "perpetual" in self.settings.markets)):
                continue
            if wanted is not None and m.symbol not in wanted:
                continue
            out[m.symbol] = m.to_instrument(mode)
        self._instruments = out

    async def instruments(self) -> Sequence[Instrument]:
        if not self._instruments:
            await self._load_instruments()
        return list(self._instruments.values())

    def _market_symbol(self, symbol: str) -> str:
        if symbol not in self._instruments:
            raise VenueRejected(RejectReason.UNKNOWN_SYMBOL,
                                f"{self.name}: no instrument {symbol} loaded")
        return symbol

    # ---- orders ------------------------------------------------------------------------------

    def _order_params(self, req: OrderRequest) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"clientOrderId": req.client_order_id}
        tif = req.time_in_force
        if tif not in self.capabilities.time_in_force:
            raise VenueRejected(RejectReason.UNSUPPORTED,
                                f"{self.name}: time in force {tif.value} is not supported")
        if req.type not in self.capabilities.order_types:
            raise VenueRejected(RejectReason.UNSUPPORTED,
                                f"{self.name}: order type {req.type.value} is not supported")
        is_limit = req.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        if is_limit and tif in (TimeInForce.IOC, TimeInForce.FOK):
            params["timeInForce"] = tif.value.upper()
        elif is_limit:
            params["timeInForce"] = "GTC"
        if req.post_only:
            if not self.capabilities.post_only:
                raise VenueRejected(RejectReason.UNSUPPORTED, f"{self.name}: no post-only")
            params["postOnly"] = True
        if req.reduce_only:
            if not self.capabilities.reduce_only:
                raise VenueRejected(RejectReason.UNSUPPORTED, f"{self.name}: no reduce-only")
            params["reduceOnly"] = True
        if req.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if req.stop_price is None:
                raise VenueRejected(RejectReason.OTHER, "a stop order needs a stop price")
            params["triggerPrice"] = self._price(req.symbol, req.stop_price)
        return ("limit" if is_limit else "market"), params

    def _precise(self, to_precision: Callable[[str, str], str], symbol: str, value: Decimal,
                 reason: RejectReason, inexact: str) -> str:
        """``value`` as ccxt's ``amount_to_precision``/``price_to_precision`` writes it;
        refused (``reason``) where that would change it."""
        try:
            out = to_precision(symbol, _plain(value))
        except ccxt_async.BaseError as exc:
            raise VenueRejected(reason, f"{self.name}: {exc}") from None
        if Decimal(out) != value:
            raise VenueRejected(reason, f"{self.name}: {inexact}")
        return out

    def _amount(self, symbol: str, quantity: Decimal) -> str:
        return self._precise(self.exchange.amount_to_precision, symbol, quantity,
                             RejectReason.LOT_FILTER,
                             f"quantity {quantity} is not a multiple of the lot")

    def _price(self, symbol: str, price: Decimal) -> str:
        return self._precise(self.exchange.price_to_precision, symbol, price,
                             RejectReason.PRICE_FILTER,
                             f"price {price} is not a multiple of the tick")

    async def place(self, request: OrderRequest) -> OrderAccepted:
        """ccxt ``create_order`` with the client order id (ccxt Manual, "Placing Orders")."""
        symbol = self._market_symbol(request.symbol)
        ccxt_type, params = self._order_params(request)
        amount = self._amount(symbol, request.quantity)
        price = self._price(symbol, request.price) if request.price is not None and \
            ccxt_type == "limit" else None
        coid = request.client_order_id
        self._requests[coid] = request
        self.track(coid, symbol)
        self._symbol_of[coid] = symbol
        self._symbols_used.add(symbol)
        try:
            raw = await self._call("createOrder", self.exchange.create_order, symbol, ccxt_type,
                                   request.side.value, amount, price, params,
                                   mutating=True, priority=Priority.ORDER)
        except VenueRejected as exc:
            if exc.reason is not RejectReason.DUPLICATE_ORDER:
                self.untrack(coid)
            raise
        order = ORDER.convert(raw)
        state = order.to_state(coid, symbol)
        self._learn(coid, state.venue_order_id, symbol)
        ts = state.updated_ns or time.time_ns()
        if state.status is VenueStatus.REJECTED:
            self.untrack(coid)
            raise VenueRejected(RejectReason.OTHER, f"{self.name}: the venue rejected the order")
        ack = OrderAccepted(coid, state.venue_order_id, ts)
        self._mark_acked(coid)
        self.emit(ack)
        return ack

    async def _venue_id(self, symbol: str, client_order_id: str) -> str:
        vid = self._vid_of(client_order_id)
        if vid:
            return vid
        state = await self.query_order(symbol, client_order_id)
        if state is None:
            raise VenueRejected(RejectReason.UNKNOWN_ORDER,
                                f"{self.name}: no order {client_order_id}")
        return state.venue_order_id

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        vid = await self._venue_id(symbol, client_order_id)
        try:
            raw = await self._call("cancelOrder", self.exchange.cancel_order, vid, symbol,
                                   mutating=True, priority=Priority.ORDER)
        except VenueRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER and self._was_acked(client_order_id):
                # the venue acknowledged it once: it is no longer open (Binance -2011)
                raise VenueRejected(RejectReason.TOO_LATE, exc.text) from None
            raise
        if isinstance(raw, dict):
            order = ORDER.convert(raw)
            self._owe(order.to_state(client_order_id, symbol))
            if order.venue_status is VenueStatus.CANCELED:
                self.emit(OrderCanceled(client_order_id, vid, order.updated_ns or time.time_ns(),
                                        "canceled on request", order.filled))

    async def amend(self, request: AmendRequest) -> None:
        """ccxt ``edit_order`` (only where it is a native amend, see KNOWN in exchange.py)."""
        if not self.capabilities.amend:
            raise VenueRejected(RejectReason.UNSUPPORTED, f"{self.name} has no native amend")
        coid = request.client_order_id
        vid = await self._venue_id(request.symbol, coid)
        original = self._requests.get(coid)
        if original is None:
            state = await self.query_order(request.symbol, coid)
            if state is None:
                raise VenueRejected(RejectReason.UNKNOWN_ORDER, f"{self.name}: no order {coid}")
            side, qty, price = state.side, state.quantity, state.price
            ccxt_type = "limit" if price is not None else "market"
        else:
            side, qty, price = original.side, original.quantity, original.price
            ccxt_type = "limit" if original.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) \
                else "market"
        new_qty = request.quantity if request.quantity is not None else qty
        new_price = request.price if request.price is not None else price
        params: dict[str, Any] = {}
        if request.new_client_order_id:
            params["clientOrderId"] = request.new_client_order_id
        raw = await self._call(
            "editOrder", self.exchange.edit_order, vid, request.symbol, ccxt_type, side.value,
            self._amount(request.symbol, new_qty),
            self._price(request.symbol, new_price) if new_price is not None else None, params,
            mutating=True, priority=Priority.ORDER)
        order = ORDER.convert(raw) if isinstance(raw, dict) else CcxtOrder()
        new_coid = request.new_client_order_id
        new_vid = order.id or vid
        # the amend moves the watch to the new client order id (StreamingConnector.emit)
        self.emit(OrderAmended(coid, new_vid, order.amount or new_qty, order.price or new_price,
                               order.updated_ns or time.time_ns(), new_coid))
        self._learn(new_coid or coid, new_vid, request.symbol)
        if original is not None and (new_coid or coid) in self._open:
            self._requests[new_coid or coid] = dataclasses.replace(
                original, client_order_id=new_coid or coid, quantity=new_qty, price=new_price)
        if new_coid:
            self._mark_acked(new_coid)
            self._retire(coid)  # the old id: kept among the ended orders
            self._retire(new_coid)  # (only if it is not watched)

    async def cancel_all(self, symbol: str | None = None) -> int:
        before_cancel: dict[str, list[OrderState]] = {}
        if symbol is None:  # asked once for every symbol, not again per symbol
            for st in await self.open_orders():
                before_cancel.setdefault(st.symbol, []).append(st)
        else:
            before_cancel[symbol] = list(await self.open_orders(symbol))
        count = 0
        for sym in sorted(before_cancel):
            before = before_cancel[sym]
            if self.exchange.has.get("cancelAllOrders"):
                raw = await self._call("cancelAllOrders", self.exchange.cancel_all_orders, sym,
                                       mutating=True, priority=Priority.ORDER)
                if isinstance(raw, list) and raw:
                    count += len(raw)
                    for item in raw:
                        if isinstance(item, dict):
                            self._on_order_update(ORDER.convert(item))
                else:
                    count += len(before)
            else:
                for st in before:
                    await self.cancel(sym, st.client_order_id)
                    count += 1
        return count

    # ---- queries -----------------------------------------------------------------------------

    def _state(self, order: CcxtOrder, symbol: str | None = None) -> OrderState:
        coid = order.clientOrderId or self._coid_of(order.id or "") or ""
        state = order.to_state(coid, symbol)
        self._learn(state.client_order_id, state.venue_order_id, state.symbol)
        return state

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """By venue order id when known (``venue_order_id``, else ours), else by client order
        id where ccxt can, else a scan of open and closed orders. None when the venue says the
        order does not exist."""
        vid = venue_order_id or self._vid_of(client_order_id)
        try:
            if vid:
                raw = await self._call("fetchOrder", self.exchange.fetch_order, vid, symbol,
                                       priority=Priority.QUERY)
            elif self._by_client_id:
                raw = await self._call("fetchOrder", self.exchange.fetch_order, "", symbol,
                                       {"clientOrderId": client_order_id},
                                       priority=Priority.QUERY)
            else:
                return await self._scan_for(symbol, client_order_id)
        except VenueRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER:
                return None
            raise
        order = ORDER.convert(raw)
        if not (order.id or order.clientOrderId):
            return None
        if venue_order_id and not order.clientOrderId:
            self._learn(client_order_id, venue_order_id, symbol)
        state = self._state(order, symbol)
        if venue_order_id and state.client_order_id != client_order_id:
            state = dataclasses.replace(state, client_order_id=client_order_id)
        return state

    async def _scan_for(self, symbol: str, client_order_id: str) -> OrderState | None:
        has = self.exchange.has
        fetchers = [("fetchOpenOrders", self.exchange.fetch_open_orders)]
        if has.get("fetchClosedOrders"):
            fetchers.append(("fetchClosedOrders", self.exchange.fetch_closed_orders))
        elif has.get("fetchOrders"):
            fetchers.append(("fetchOrders", self.exchange.fetch_orders))
        for what, fn in fetchers:
            for raw in await self._call(what, fn, symbol, priority=Priority.QUERY) or []:
                order = ORDER.convert(raw)
                if order.clientOrderId == client_order_id:
                    return self._state(order, symbol)
        return None

    def _symbols_of_interest(self) -> list[str]:
        syms = set(self.tracked.values()) | self._symbols_used
        if self.settings.symbols:
            syms |= set(self.settings.symbols)
        return sorted(s for s in syms if s in self._instruments or not self._instruments)

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        if symbol is not None:
            raws = await self._call("fetchOpenOrders", self.exchange.fetch_open_orders, symbol)
            return [self._state(ORDER.convert(r), symbol) for r in raws or []]
        try:
            raws = await self._call("fetchOpenOrders", self.exchange.fetch_open_orders)
        except VenueRejected:  # the venue needs a symbol (ccxt ArgumentsRequired)
            out: list[OrderState] = []
            for sym in self._symbols_of_interest():
                out.extend(await self.open_orders(sym))
            return out
        return [self._state(ORDER.convert(r)) for r in raws or []]

    async def _resolve_client_id(self, trade: CcxtTrade) -> str | None:
        vid = trade.order or ""
        coid = self._coid_of(vid)
        if coid is not None or not vid or not trade.symbol:
            return coid
        try:
            raw = await self._call("fetchOrder", self.exchange.fetch_order, vid, trade.symbol)
        except VenueError:
            return None
        state = self._state(ORDER.convert(raw), trade.symbol)
        if self._coid_of(vid) is None:
            self._ended_coid[vid] = state.client_order_id  # "" when the venue has none
        return state.client_order_id or None

    async def _trades(self, symbols: Iterable[str], since_ms: int) -> list[OrderFilled]:
        out = []
        for sym in symbols:
            raws = await self._call("fetchMyTrades", self.exchange.fetch_my_trades, sym,
                                    since_ms)
            for raw in raws or []:
                trade = TRADE.convert(raw)
                if not trade.id:
                    continue
                coid = await self._resolve_client_id(trade)
                if coid:
                    out.append(trade.to_fill(coid))
        out.sort(key=lambda f: f.ts_ns)
        return out

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        """ccxt ``fetch_my_trades`` since ``since_ns`` for the symbols this connector trades
        (its tracked orders', the configured ones', and any it placed in this session)."""
        return await self._trades(self._symbols_of_interest(), since_ns // MS)

    async def balances(self) -> Sequence[Balance]:
        raw = await self._call("fetchBalance", self.exchange.fetch_balance)
        return BALANCE.convert(raw).to_balances()

    async def positions(self) -> Sequence[Position]:
        if "perpetual" not in self.settings.markets or \
                not self.exchange.has.get("fetchPositions"):
            return ()
        perps = [s for s, i in self._instruments.items() if i.settle is not None]
        raws = await self._call("fetchPositions", self.exchange.fetch_positions, perps or None)
        out = [POSITION.convert(r).to_position() for r in raws or []]
        return [p for p in out if p.quantity]

    async def health(self) -> Health:
        if self.limiter.banned:
            return Health(False, f"banned by the venue for {self.limiter.banned_for:.0f} s",
                          None)
        stale_after = max(30.0, 5 * self.poll_interval_s)
        ok = self._last_ok > 0 and time.monotonic() - self._last_ok < stale_after
        detail = "streaming" if self.streaming else f"polling every {self.poll_interval_s} s"
        if not ok:
            detail = self._last_error or "no successful request yet"
        return Health(ok, detail, self.latency_ms)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last_price.get(symbol)

    def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """ccxt.pro's ``watch_order_book(symbol, book_depth)`` and ``watch_trades(symbol)``
        (where the exchange has it) as snapshot, updates and trades
        (:class:`connectors.ccxt.marketdata.CcxtBookFeed`); sizes in base units (ccxt's
        ``contractSize`` applied). Only where ``capabilities.market_data``."""
        if not self.capabilities.market_data:
            raise NotImplementedError(f"{self.name}: no ccxt.pro order book watcher")
        market = self._market_symbol(symbol)
        raw = (getattr(self.exchange, "markets", None) or {}).get(market) or {}
        size = raw.get("contractSize") if raw.get("contract") else None
        feed = CcxtBookFeed(
            self.exchange, market, name=self.name, limit=self.book_depth,
            contract_size=decimal_of(size) if size else Decimal(1),
            trades=self._watch_public_trades,
            reconnect_base_s=self.settings.reconnect_base_s,
            reconnect_cap_s=self.settings.reconnect_cap_s)
        return run_book_feed(feed, self.md_feeds)

    # ---- events ------------------------------------------------------------------------------

    def emit(self, ev: VenueEvent) -> bool:
        """As TrackingConnector's; a fill's price is also the last price of its symbol."""
        if not super().emit(ev):
            return False
        if isinstance(ev, OrderFilled):
            sym = self._symbol_for(ev.client_order_id)
            if sym is not None:
                self._last_price[sym] = ev.price
        return True

    def _on_order_update(self, order: CcxtOrder) -> None:
        """An order as ccxt reports it (watch_orders, cancel_all): its status event, if
        any; fills come from the trades."""
        state = self._state(order)
        if not state.client_order_id:
            return
        self._owe(state)
        if state.status is VenueStatus.FILLED and self.streaming:
            # done: its trades map through the ended orders (polling waits for them instead)
            self.untrack(state.client_order_id)
        ev = state_event(state, state.updated_ns or time.time_ns())
        if ev is None:
            return
        if isinstance(ev, OrderAccepted):
            self._mark_acked(state.client_order_id)
        self.emit(ev)

    def _on_orders(self, items: Sequence[Any]) -> None:
        for raw in items:
            self._on_order_update(ORDER.convert(raw))

    def _on_trades(self, items: Sequence[Any]) -> None:
        for raw in items:
            trade = TRADE.convert(raw)
            if self._negate_watch_fee:
                trade = trade.negated_fee()
            coid = self._coid_of(trade.order or "")
            if trade.id and coid:
                self.emit(trade.to_fill(coid))
            elif trade.id:  # an order not (yet) known by its venue id: resolve over REST
                self._spawn(self._late_trade(trade))

    async def _late_trade(self, trade: CcxtTrade) -> None:
        with contextlib.suppress(VenueError):
            coid = await self._resolve_client_id(trade)
            if coid:
                self.emit(trade.to_fill(coid))

    async def _watch(self, name: str, watch: Callable[[], Awaitable[Any]],
                     handle: Callable[[Sequence[Any]], None]) -> None:
        """ccxt.pro's watch loop. After an error (the socket dropped) the REST catch-up
        (StreamingConnector.after_reconnect) runs once ccxt is connected again (see
        :meth:`_when_reconnected`: a quiet account sends nothing that would end the next
        ``watch``), or at the latest when the next ``watch`` returns."""
        backoff = Backoff(self.settings.reconnect_base_s, self.settings.reconnect_cap_s)
        failed = False
        while not self._closed:
            if failed and (self._reconnect_waiter is None or self._reconnect_waiter.done()):
                self._reconnect_waiter = self._spawn(self._when_reconnected())
            try:
                items = await watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed = True
                if self._down_since_ms is None:
                    self._down_since_ms = time.time_ns() // MS
                log.warning("%s: watch %s failed: %s", self.name, name, redact(str(exc)))
                await asyncio.sleep(backoff.next())
                continue
            self._last_ok = time.monotonic()
            if failed:
                failed = False
                backoff.reset()
                if self._down_since_ms is not None:  # not caught up by the waiter yet
                    self._down_since_ms = None
                    self._spawn(self.after_reconnect())
            handle(items or [])

    async def _when_reconnected(self) -> None:
        """Runs the catch-up once ccxt has a WebSocket connection made after the failure
        that has received a message (OKX: the login answer, after which ccxt subscribes at
        once) or has been up for ``SETTLE_S``. Events between that moment and ccxt's
        subscription taking effect at the venue would be missed until the next reconnect:
        the window is one WebSocket round trip."""
        while self._down_since_ms is not None and not self._closed:
            if ws_reconnected(self.exchange, self._down_since_ms, SETTLE_S):
                self._down_since_ms = None
                await self.after_reconnect()
                return
            await asyncio.sleep(0.02)

    async def _poll_loop(self) -> None:
        while not self._closed:
            started = time.monotonic()
            try:
                await self.poll_once()
            except VenueError as exc:
                log.warning("%s: polling failed: %s", self.name, exc)
            except Exception:
                log.exception("%s: polling failed", self.name)
            # a round slowed down by the throttler leaves as much room to order entry
            await asyncio.sleep(self.poll_interval_s + (time.monotonic() - started))

    async def poll_once(self) -> None:
        """One polling round: the tracked orders' states; the trades (since the last round,
        less a look-back) of the symbols where the venue reports more filled than emitted;
        the fills; then the status events."""
        tracked = self.tracked
        if not tracked and not self._owed:
            return
        open_now: dict[str, OrderState] = {}
        for sym in sorted(set(tracked.values())):
            for st in await self.open_orders(sym):
                open_now[st.client_order_id] = st
        ended: dict[str, OrderState] = {}
        for coid, sym in tracked.items():
            if coid not in open_now:
                found = await self.query_order(sym, coid)
                if found is not None and not found.status.is_open:
                    ended[coid] = found
                elif found is not None:
                    open_now[coid] = found
        for st in (*open_now.values(), *ended.values()):
            self._owe(st)
        since = self._poll_since_ms
        fills = await self._trades(self._owed_symbols(), since)
        for f in fills:
            self.emit(f)
        if fills:
            newest = max(f.ts_ns for f in fills) // MS - FILL_LOOKBACK_NS // MS
            self._poll_since_ms = max(self._poll_since_ms, newest)
        for coid, st in open_now.items():
            if coid in tracked and not self._was_acked(coid):
                self._mark_acked(coid)
                self.emit(OrderAccepted(coid, st.venue_order_id, st.updated_ns or time.time_ns()))
        for coid, st in ended.items():
            behind = self._filled_of(coid) < st.filled_quantity
            waits = self._terminal_waits.get(coid, 0)
            if behind and waits < TERMINAL_WAIT_ROUNDS:
                if coid in self._open:  # (not if it ended meanwhile: never seen again)
                    self._terminal_waits[coid] = waits + 1
                continue
            self._terminal_waits.pop(coid, None)
            ev = state_event(st, st.updated_ns or time.time_ns())
            if ev is not None and not isinstance(ev, OrderAccepted):
                self.emit(ev)
            self.untrack(coid)

    # ---- last prices -----------------------------------------------------------------------

    async def poll_prices(self) -> None:
        """One round of the price poll (:mod:`connectors.ccxt.prices`), at background
        priority."""
        method = price_method(self.exchange.has)
        if method is None:
            return
        syms = price_symbols(self.settings.symbols,
                             set(self.tracked.values()) | self._symbols_used,
                             self._instruments, bulk=method != "fetchTicker")
        await fetch_last_prices(self.exchange, self._call, method, syms, self._instruments,
                                self._last_price)

    async def _price_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.price_poll_s)
            try:
                await self.poll_prices()
            except VenueError as exc:
                log.warning("%s: price poll failed: %s", self.name, exc)
            except Exception:
                log.exception("%s: price poll failed", self.name)

    # ---- dead-man switch ---------------------------------------------------------------------

    async def refresh_dead_man(self) -> None:
        """ccxt ``cancel_all_orders_after``: the venue cancels everything if not refreshed
        within ``dead_man_s``."""
        timeout_s = self.settings.dead_man_s
        if not timeout_s:
            return
        await self._call("cancelAllOrdersAfter", self.exchange.cancel_all_orders_after,
                         int(timeout_s * 1000), priority=Priority.ORDER)
        self.dead_man_armed = True

    async def _dead_man_loop(self, timeout_s: float) -> None:
        while not self._closed:
            await asyncio.sleep(max(0.2, timeout_s / 3))
            try:
                await self.refresh_dead_man()
            except VenueError as exc:
                log.warning("%s: dead-man refresh failed: %s", self.name, exc)
