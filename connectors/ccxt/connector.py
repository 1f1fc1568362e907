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
* :meth:`last_price` is the last price polled (at the end of ``start()`` and every
  ``price_poll_s``, default 5 s, at background priority) with the cheapest unified call the
  exchange has: ``fetchLastPrices`` (binance: GET /api/v3/ticker/price), else ``fetchTickers``,
  else ``fetchTicker`` per symbol; or the price of this connector's last fill, if newer.

Amounts and prices go to ccxt as strings made by ``amount_to_precision``/``price_to_precision``
(an order the rounding would change is refused here, never silently altered); ccxt's floats
come back through :mod:`connectors.ccxt.schemas` as Decimal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import ccxt.async_support as ccxt_async

from connectors.base import (
    AmendRequest,
    Balance,
    Health,
    Instrument,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
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
)
from connectors.ccxt.schemas import (
    BALANCE,
    LAST_PRICE,
    MARKET,
    ORDER,
    POSITION,
    TICKER,
    TRADE,
    CcxtOrder,
    CcxtTrade,
)
from connectors.common.backoff import Backoff
from connectors.common.ratelimit import Priority, RateLimiter, WindowSpec
from connectors.common.settings import VenueSettings
from connectors.common.venue import (
    FILL_LOOKBACK_NS,
    BoundedDict,
    StreamingConnector,
    state_event,
)

log = logging.getLogger(__name__)

MS = 1_000_000
TERMINAL_WAIT_ROUNDS = 3
"""Polling rounds a terminal status waits for its fills before it is emitted anyway."""
BAN_DEFAULT_S = 120.0
SETTLE_S = 0.5
"""A WebSocket that ccxt reopened and that stayed up this long without a message counts as
back (for the catch-up after a reconnect)."""
RECENT_S = 60.0
"""How long the trades of an order the venue reports as more filled are polled for."""
CLOSED_KEPT = 100_000
"""Ended orders remembered (ids, symbol, fills emitted) for late trades, cancels and queries;
an older one is looked up at the venue instead."""
PRICE_POLL_S = 5.0
"""How often last prices are polled (the Binance native connector's ticker poll period)."""


class _Ended(NamedTuple):
    """What is kept of an order that ended (or that this connector did not place)."""

    venue_order_id: str
    symbol: str
    acked: bool
    filled: Decimal


def _plain(value: Decimal) -> str:
    return format(value, "f")


class CcxtConnector(StreamingConnector):
    """One account at one ccxt exchange. ``options`` are ccxt's exchange options, plus ours:
    ``poll_interval_s`` (1.0; or the ``poll_interval`` keyword), ``events`` ("auto", "stream"
    or "poll"), ``rate_limit_retries`` (4), ``amend`` (override of the native-amend
    capability), ``closed_orders_kept`` (``CLOSED_KEPT``) and ``price_poll_s``
    (``PRICE_POLL_S``; 0 turns the price poll off).

    Per-order state is bounded: the maps below hold only the orders being watched
    (:attr:`tracked`); when one ends (its terminal event emitted, or found filled)
    :meth:`_retire` moves it to ``_ended``/``_ended_coid``, which keep the last
    ``closed_orders_kept`` ended or foreign orders, enough to map a late trade or answer a late
    cancel; older ones are asked of the venue. ``_owed`` lasts ``RECENT_S`` at most."""

    def __init__(self, settings: VenueSettings, exchange_id: str,
                 options: Mapping[str, Any] | None = None, exchange: Any | None = None,
                 *, poll_interval: float | None = None) -> None:
        super().__init__()
        opts = dict(options or {})
        self.poll_interval_s = float(opts.pop("poll_interval_s", poll_interval or 1.0))
        mode = str(opts.pop("events", "auto"))
        self.rate_limit_retries = int(opts.pop("rate_limit_retries", 4))
        amend_override = opts.pop("amend", None)
        closed_kept = int(opts.pop("closed_orders_kept", CLOSED_KEPT))
        self.price_poll_s = float(opts.pop("price_poll_s", PRICE_POLL_S))
        if mode not in ("auto", "stream", "poll"):
            raise ValueError(f"events must be auto, stream or poll, not {mode!r}")
        self.settings = settings
        self.exchange_id = exchange_id
        # REST pointed elsewhere (an emulator) without a WebSocket override: never let the
        # stream go to the real venue
        ws_ok = ws_override(settings.urls) is not None or "rest" not in settings.urls
        if exchange is None:
            exchange = build_exchange(exchange_id, settings, opts,
                                      pro=mode == "stream" or (mode == "auto" and ws_ok))
        self.exchange: Any = exchange
        has = exchange.has
        can_watch = bool(has.get("watchOrders")) and bool(has.get("watchMyTrades"))
        self.streaming = mode == "stream" or (mode == "auto" and ws_ok and can_watch
                                              and hasattr(exchange, "watch_orders"))
        self.info = VenueInfo(
            name=settings.name,
            capabilities=capabilities(exchange, settings.markets, exchange_id,
                                      None if amend_override is None else bool(amend_override)),
            client_order_id_rules=client_order_id_rules(exchange_id),
        )
        self._by_client_id = queries_by_client_order_id(exchange_id)
        self._negate_watch_fee = watch_fee_negated(exchange_id)
        self._instruments: dict[str, Instrument] = {}
        # the orders being watched (keys of self._open) only; see _retire
        self._vid: dict[str, str] = {}
        """client order id -> venue order id"""
        self._coid: dict[str, str] = {}
        """venue order id -> client order id"""
        self._symbol_of: dict[str, str] = {}
        self._requests: dict[str, OrderRequest] = {}
        self._acked: set[str] = set()
        self._filled: dict[str, Decimal] = {}
        """client order id -> quantity of the fills emitted"""
        self._terminal_waits: dict[str, int] = {}
        # ended orders and orders of others: the most recent closed_kept
        self._ended: BoundedDict[str, _Ended] = BoundedDict(closed_kept)
        """client order id -> what is kept of it"""
        self._ended_coid: BoundedDict[str, str] = BoundedDict(closed_kept)
        """venue order id -> client order id ("" when the venue has none)"""
        self._symbols_used: set[str] = set()
        self._owed: dict[str, tuple[str, Decimal, float]] = {}
        """client order id -> (symbol, filled quantity the venue reports, since when): orders
        whose fills were not all emitted yet; oldest first, dropped after ``RECENT_S``"""
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
        self._banned_until = 0.0
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
            if time.monotonic() < self._banned_until:
                raise VenueUnavailable(f"{self.name}: banned by the venue for "
                                       f"{self._banned_until - time.monotonic():.0f} s more")
            await self.limiter.acquire({"requests": 1}, priority)
            started = time.monotonic()
            try:
                result = await fn(*args)
            except ccxt_async.BaseError as exc:
                if is_ban(exc):
                    wait = self._retry_after(BAN_DEFAULT_S)
                    self._banned_until = time.monotonic() + wait
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
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for key in ("Retry-After", "retry-after"):
            value = headers.get(key) if isinstance(headers, Mapping) else None
            if value is not None:
                with contextlib.suppress(ValueError):
                    return max(0.0, float(value))
        return default

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
        if self.price_poll_s > 0 and self._price_method() is not None:
            try:
                await self.poll_prices()
            except Exception as exc:  # a price later is better than no venue at all
                log.warning("%s: no last prices at start: %s", self.name, redact(str(exc)))
            self._spawn(self._price_loop())

    async def close(self) -> None:
        self._closed = True
        await self.stop_tasks()
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

    def _amount(self, symbol: str, quantity: Decimal) -> str:
        try:
            out: str = self.exchange.amount_to_precision(symbol, _plain(quantity))
        except ccxt_async.BaseError as exc:
            raise VenueRejected(RejectReason.LOT_FILTER, f"{self.name}: {exc}") from None
        if Decimal(out) != quantity:
            raise VenueRejected(RejectReason.LOT_FILTER,
                                f"{self.name}: quantity {quantity} is not a multiple of the lot")
        return out

    def _price(self, symbol: str, price: Decimal) -> str:
        try:
            out: str = self.exchange.price_to_precision(symbol, _plain(price))
        except ccxt_async.BaseError as exc:
            raise VenueRejected(RejectReason.PRICE_FILTER, f"{self.name}: {exc}") from None
        if Decimal(out) != price:
            raise VenueRejected(RejectReason.PRICE_FILTER,
                                f"{self.name}: price {price} is not a multiple of the tick")
        return out

    def _learn(self, client_order_id: str, venue_order_id: str, symbol: str) -> None:
        """Note an order's ids and symbol: in the maps of the watched orders when it is one,
        else among the ended ones."""
        if not client_order_id:
            return
        if symbol:
            self._symbols_used.add(symbol)
        if client_order_id not in self._open:
            kept = self._ended.get(client_order_id)
            if kept is not None:
                self._ended[client_order_id] = kept._replace(
                    venue_order_id=venue_order_id or kept.venue_order_id,
                    symbol=symbol or kept.symbol)
            elif venue_order_id:
                self._ended[client_order_id] = _Ended(venue_order_id, symbol, False,
                                                      Decimal(0))
            if venue_order_id:
                self._ended_coid[venue_order_id] = client_order_id
            return
        if venue_order_id:
            old = self._vid.get(client_order_id)
            if old and old != venue_order_id and self._coid.get(old) == client_order_id:
                # a new venue id (amend): a late trade of the old one still maps
                self._ended_coid[old] = self._coid.pop(old)
            self._vid[client_order_id] = venue_order_id
            self._coid[venue_order_id] = client_order_id
        if symbol:
            self._symbol_of[client_order_id] = symbol

    def untrack(self, client_order_id: str) -> None:
        super().untrack(client_order_id)
        self._retire(client_order_id)

    def _retire(self, coid: str) -> None:
        """An order no longer watched (it ended, or its placing failed): its entries leave
        the per-order maps; its ids, symbol and fills are kept among the ended orders."""
        if coid in self._open:
            return
        vid = self._vid.pop(coid, None)
        if vid is not None and self._coid.get(vid) == coid:
            del self._coid[vid]
        symbol = self._symbol_of.pop(coid, "")
        self._requests.pop(coid, None)
        acked = coid in self._acked
        self._acked.discard(coid)
        filled = self._filled.pop(coid, None)
        self._terminal_waits.pop(coid, None)
        if vid is None:
            return
        kept = self._ended.get(coid)
        if kept is not None:
            acked = acked or kept.acked
            filled = filled if filled is not None else kept.filled
        self._ended[coid] = _Ended(vid, symbol or (kept.symbol if kept else ""), acked,
                                   filled if filled is not None else Decimal(0))
        self._ended_coid[vid] = coid

    def _vid_of(self, coid: str) -> str | None:
        vid = self._vid.get(coid)
        if vid is None:
            kept = self._ended.get(coid)
            vid = kept.venue_order_id if kept is not None else None
        return vid

    def _coid_of(self, vid: str) -> str | None:
        coid = self._coid.get(vid)
        return coid if coid is not None else self._ended_coid.get(vid)

    def _symbol_for(self, coid: str) -> str | None:
        sym = self._symbol_of.get(coid)
        if sym is None:
            kept = self._ended.get(coid)
            sym = (kept.symbol or None) if kept is not None else None
        return sym

    def _was_acked(self, coid: str) -> bool:
        if coid in self._acked:
            return True
        kept = self._ended.get(coid)
        return kept is not None and kept.acked

    def _mark_acked(self, coid: str) -> None:
        if coid in self._open:
            self._acked.add(coid)
            return
        kept = self._ended.get(coid)
        if kept is not None:
            self._ended[coid] = kept._replace(acked=True)

    def _filled_of(self, coid: str) -> Decimal:
        filled = self._filled.get(coid)
        if filled is None:
            kept = self._ended.get(coid)
            filled = kept.filled if kept is not None else Decimal(0)
        return filled

    def _add_filled(self, coid: str, quantity: Decimal) -> Decimal:
        if coid in self._open:
            self._filled[coid] = total = self._filled.get(coid, Decimal(0)) + quantity
            return total
        kept = self._ended.get(coid)
        if kept is None:
            return quantity
        self._ended[coid] = kept._replace(filled=kept.filled + quantity)
        return kept.filled + quantity

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
            self._requests[new_coid or coid] = OrderRequest(
                new_coid or coid, original.symbol, original.side, original.type, new_qty,
                new_price, original.stop_price, original.time_in_force, original.expire_time_ns,
                original.post_only, original.reduce_only, original.account)
        if new_coid:
            self._mark_acked(new_coid)
            self._retire(coid)  # the old id: kept among the ended orders
            self._retire(new_coid)  # (only if it is not watched)

    async def cancel_all(self, symbol: str | None = None) -> int:
        if symbol is None:
            symbols = sorted({s.symbol for s in await self.open_orders()})
        else:
            symbols = [symbol]
        count = 0
        for sym in symbols:
            before = await self.open_orders(sym)
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

    async def query_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """By venue order id when known, else by client order id where ccxt can, else a scan
        of open and closed orders. None when the venue says the order does not exist."""
        vid = self._vid_of(client_order_id)
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
        return self._state(order, symbol) if order.id or order.clientOrderId else None

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
        if time.monotonic() < self._banned_until:
            return Health(False, f"banned by the venue for "
                                 f"{self._banned_until - time.monotonic():.0f} s", None)
        stale_after = max(30.0, 5 * self.poll_interval_s)
        ok = self._last_ok > 0 and time.monotonic() - self._last_ok < stale_after
        detail = "streaming" if self.streaming else f"polling every {self.poll_interval_s} s"
        if not ok:
            detail = self._last_error or "no successful request yet"
        return Health(ok, detail, self.latency_ms)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last_price.get(symbol)

    # ---- events ------------------------------------------------------------------------------

    def emit(self, ev: VenueEvent) -> bool:
        queued = super().emit(ev)
        if not queued:
            return False
        coid = ev.client_order_id
        if isinstance(ev, OrderFilled):
            sym = self._symbol_for(coid)
            filled = self._add_filled(coid, ev.quantity)
            if sym is not None:
                self._last_price[sym] = ev.price
            owed = self._owed.get(coid)
            if owed is not None and filled >= owed[1]:
                del self._owed[coid]
        elif isinstance(ev, OrderCanceled | OrderExpired | OrderRejected):
            self._retire(coid)  # no longer watched (StreamingConnector.emit)
        return True

    def _owe(self, state: OrderState) -> None:
        """Note that the venue reports more filled than the fills emitted: the trades of its
        symbol are fetched until they add up (or ``RECENT_S`` has passed)."""
        coid = state.client_order_id
        if coid and state.filled_quantity > self._filled_of(coid):
            now = time.monotonic()
            self._owed.pop(coid, None)  # kept in order of since: the expired ones lead
            self._owed[coid] = (state.symbol or self._symbol_for(coid) or "",
                                state.filled_quantity, now)
            while (oldest := next(iter(self._owed))) != coid and \
                    self._owed[oldest][2] < now - RECENT_S:
                del self._owed[oldest]

    def _owed_symbols(self) -> list[str]:
        horizon = time.monotonic() - RECENT_S
        for coid, (_, filled, since) in list(self._owed.items()):
            if self._filled_of(coid) >= filled or since < horizon:
                del self._owed[coid]
        return sorted({sym for sym, _, _ in self._owed.values() if sym})

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
            if self._ws_back(self._down_since_ms):
                self._down_since_ms = None
                await self.after_reconnect()
                return
            await asyncio.sleep(0.02)

    def _ws_back(self, since_ms: int) -> bool:
        clients = getattr(self.exchange, "clients", None)
        if not isinstance(clients, Mapping):
            return False
        now_ms = time.time_ns() // MS
        for client in list(clients.values()):
            est = getattr(client, "connectionEstablished", None)
            if not isinstance(est, int) or est < since_ms:
                continue
            with contextlib.suppress(Exception):
                if client.closed():
                    continue
            last = getattr(client, "last_message_at", None)
            if (isinstance(last, int) and last >= est) or now_ms - est >= SETTLE_S * 1000:
                return True
        return False

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

    def _price_method(self) -> str | None:
        """The cheapest unified call for last prices the exchange has: one request for many
        symbols (``fetchLastPrices``, else ``fetchTickers``), else one per symbol."""
        has = self.exchange.has
        for name in ("fetchLastPrices", "fetchTickers", "fetchTicker"):
            if has.get(name):
                return name
        return None

    def _price_symbols(self, bulk: bool) -> list[str]:
        """The configured symbols, else those of the orders watched or placed in this
        session; with none of those, every loaded instrument when one request gives them
        all (``bulk``: the gateway's pre-trade checks need a price before the first order),
        else none."""
        if self.settings.symbols:
            wanted: Iterable[str] = self.settings.symbols
        else:
            wanted = set(self.tracked.values()) | self._symbols_used
        syms = sorted(s for s in wanted if s in self._instruments)
        if not syms and not self.settings.symbols and bulk:
            syms = sorted(self._instruments)
        return syms

    async def poll_prices(self) -> None:
        """One round of the price poll (background priority): ccxt wants one market type
        per multi-symbol call (``market_symbols(..., sameTypeOnly, sameSubTypeOnly)``), so
        spot and perpetual symbols go in separate requests."""
        method = self._price_method()
        if method is None:
            return
        bulk = method != "fetchTicker"
        syms = self._price_symbols(bulk)
        if not bulk:
            for sym in syms:
                raw = await self._call(method, self.exchange.fetch_ticker, sym)
                self._set_price(sym, TICKER.convert(raw).to_price())
            return
        groups: dict[bool, list[str]] = {}
        for sym in syms:
            groups.setdefault(self._instruments[sym].settle is None, []).append(sym)
        for group in groups.values():
            if method == "fetchLastPrices":
                raws = await self._call(method, self.exchange.fetch_last_prices, group)
                prices = {k: LAST_PRICE.convert(v).to_price() for k, v in (raws or {}).items()}
            else:
                raws = await self._call(method, self.exchange.fetch_tickers, group)
                prices = {k: TICKER.convert(v).to_price() for k, v in (raws or {}).items()}
            wanted = set(group)
            for sym, price in prices.items():
                if sym in wanted:
                    self._set_price(sym, price)

    def _set_price(self, symbol: str, price: Decimal | None) -> None:
        if price is not None:
            self._last_price[symbol] = price

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
