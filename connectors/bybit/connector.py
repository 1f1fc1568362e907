"""The Bybit v5 connector: spot and linear (USDT) perpetuals of one unified account.

REST (https://bybit-exchange.github.io/docs/v5/intro) for orders, queries and reconciliation;
the private WebSocket (``/v5/private``; topics ``order`` and ``execution``) for what happens to
the orders and ``wallet`` for the account's balances; Disconnect Cancel All (DCP,
https://bybit-exchange.github.io/docs/v5/order/dcp) as the venue-side dead-man switch. Canonical
symbols map to ``(category, symbol)``: ``BTC/USDT`` is ``("spot", "BTCUSDT")``,
``BTC/USDT:USDT`` is ``("linear", "BTCUSDT")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import msgspec
import orjson

from connectors.base import (
    AmendRequest,
    Balance,
    Capabilities,
    ClientOrderIdRules,
    Health,
    Instrument,
    InstrumentKind,
    MarketEvent,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueInfo,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.bybit import errors, schemas
from connectors.bybit.book import BookSync
from connectors.bybit.limits import (
    BATCH_MAX,
    EXECUTION_HISTORY_MS,
    EXECUTION_WINDOW_MS,
    IP_BAN_S,
    PER_SECOND,
    PLACE_BATCH_MAX,
    window_name,
    windows,
)
from connectors.bybit.schemas import Envelope, Execution, Order
from connectors.bybit.signing import rest_headers, sign_ws_auth
from connectors.common.backoff import Backoff
from connectors.common.http import Prepared, RestClient, RestResponse
from connectors.common.marketfeed import PublicFeed, run_feed
from connectors.common.ratelimit import Priority, RateLimiter
from connectors.common.settings import VenueSettings
from connectors.common.stream import PingPolicy, StreamError, Ws, WsStream
from connectors.common.venue import StreamingConnector, ms_to_ns, nothing_placed, plain

log = logging.getLogger(__name__)

T = TypeVar("T")

REST_URL = "https://api.bybit.com"
REST_URL_TESTNET = "https://api-testnet.bybit.com"
WS_PRIVATE_URL = "wss://stream.bybit.com/v5/private"
WS_PRIVATE_URL_TESTNET = "wss://stream-testnet.bybit.com/v5/private"
WS_PUBLIC_URL = "wss://stream.bybit.com/v5/public/{category}"
WS_PUBLIC_URL_TESTNET = "wss://stream-testnet.bybit.com/v5/public/{category}"
"""Public WebSocket per category, spot or linear (docs/v5/ws/connect); ``urls`` keys
``ws_public_spot`` and ``ws_public_linear`` override them."""

CLIENT_ORDER_ID_RULES = ClientOrderIdRules(36, r"^[A-Za-z0-9_-]{1,36}$")
"""orderLinkId: at most 36 characters of letters, digits, ``-`` and ``_`` (Place Order)."""

PING_INTERVAL_S = 20.0
"""The docs recommend a ``{"op": "ping"}`` every 20 s to keep the connection."""
DCP_MIN_S, DCP_MAX_S = 3, 300
DCP_REARM_S = 60.0
MIN_RETRY_S = 0.05
EXECUTION_SLACK_MS = 60_000
"""The last fill window ends this far past our estimate of the venue's clock."""

_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_DCP_PRODUCT = {"spot": "SPOT", "linear": "DERIVATIVES"}
"""category -> DCP ``product`` (https://bybit-exchange.github.io/docs/v5/order/dcp)."""


class BybitConnector(StreamingConnector):
    PRICE_POLL_S: float = 5.0
    """Seconds between two polls of GET /v5/market/tickers (the last prices of the pre-trade
    checks); tests lower it."""

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__()
        self.settings = settings
        self.info = VenueInfo(
            name=settings.name,
            capabilities=Capabilities(
                order_types=frozenset(
                    {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}
                ),
                time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
                post_only=True,
                reduce_only=True,
                amend=True,
                amend_keeps_priority_on_qty_down=True,
                bulk_cancel=True,
                batch_place=True,
                market_data=True,
                balance_stream=True,  # the private ``wallet`` topic
            ),
            client_order_id_rules=CLIENT_ORDER_ID_RULES,
        )
        self._creds = settings.credentials
        urls = settings.urls
        self.rest_url = urls.get("rest") or (REST_URL_TESTNET if settings.testnet else REST_URL)
        self.ws_url = urls.get("ws_private") or (
            WS_PRIVATE_URL_TESTNET if settings.testnet else WS_PRIVATE_URL
        )
        self.limiter = RateLimiter(windows())
        self.rest = RestClient(
            self.rest_url, name=settings.name, limiter=self.limiter,
            timeout_s=settings.request_timeout_s, max_429_wait_s=settings.max_429_wait_s,
        )
        self.offset_ms = 0
        """Venue clock minus ours (measured against GET /v5/market/time)."""
        self._instruments: dict[str, Instrument] = {}
        self._by_venue: dict[tuple[str, str], str] = {}
        self._last_price: dict[str, Decimal] = {}
        self._live: dict[str, tuple[Decimal, Decimal | None]] = {}
        """client order id -> (qty, price) last seen of open orders (amend detection)."""
        self._stream: WsStream | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.md_feeds: dict[str, PublicFeed] = {}
        """The public feeds being read, by symbol (one per :meth:`market_data` call)."""
        self.dcp_armed = False
        self.dcp_detail = ""

    # ---- time and requests -------------------------------------------------------------------

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    async def sync_time(self) -> None:
        """Measure the venue's clock against ours (GET /v5/market/time, timeNano)."""
        t0 = time.time_ns()
        env = await self._call(schemas.SERVER_TIME, "GET", "/v5/market/time", signed=False)
        t1 = time.time_ns()
        self.offset_ms = (env.result.to_ns() - (t0 + t1) // 2) // 1_000_000

    def _prepare(self, method: str, path: str, params: Mapping[str, Any] | None,
                 signed: bool) -> Prepared:
        recv = self.settings.recv_window_ms
        if method == "GET":
            query = urllib.parse.urlencode(
                {k: v for k, v in (params or {}).items() if v is not None}
            )
            payload, body = query, None
        else:
            query = ""
            body = orjson.dumps(dict(params or {}))
            payload = body.decode()
        headers: dict[str, str] = {}
        if method != "GET":
            headers["Content-Type"] = "application/json"
        if signed:
            headers.update(rest_headers(self._creds.api_key, self._creds.secret, self.now_ms(),
                                        recv, payload))
        return Prepared(method, path, query, body, headers)

    async def _send(self, method: str, path: str, params: Mapping[str, Any] | None, *,
                    category: str | None, priority: Priority, mutating: bool,
                    signed: bool, weight: int = 1) -> tuple[schemas.Head, RestResponse]:
        """``weight``: units of the endpoint's window the request consumes (batch endpoints:
        one per order, "Instructions for batch endpoints")."""
        window = window_name(path, category)
        costs = {"ip": 1} | ({window: weight} if window else {})
        waited = 0.0
        resynced = False
        while True:
            resp = await self.rest.send(
                lambda: self._prepare(method, path, params, signed),
                costs=costs, priority=priority, mutating=mutating,
            )
            if resp.status == 403:
                self.limiter.ban_for(IP_BAN_S)
                raise VenueUnavailable(f"{self.name}: HTTP 403 from {path} (IP rate limit or "
                                       f"access denied); nothing is sent for {IP_BAN_S:.0f} s")
            try:
                head = schemas.HEAD.decode(resp.body)
            except msgspec.DecodeError:
                what = f"{self.name}: {method} {path}: HTTP {resp.status} {resp.body[:200]!r}"
                raise VenueRejected(RejectReason.OTHER, what) from None
            if head.retCode != errors.TOO_MANY_VISITS:  # over the limit: its reset time rules
                self._observe(window, resp.headers)
            else:
                wait = self._reset_wait(resp.headers)
                if waited + wait > self.settings.max_429_wait_s:
                    raise VenueRejected(RejectReason.RATE_LIMIT,
                                        f"{self.name}: 10006 Too many visits on {path}")
                log.warning("%s: 10006 on %s, retrying in %.2f s", self.name, path, wait)
                self.limiter.block_for(wait)
                waited += wait
                continue
            if head.retCode == errors.TIMESTAMP_EXPIRED and not resynced:
                resynced = True
                await self.sync_time()
                continue
            return head, resp

    def _observe(self, window: str | None, headers: Mapping[str, str]) -> None:
        if window is None:
            return
        limit, status = headers.get("X-Bapi-Limit"), headers.get("X-Bapi-Limit-Status")
        if limit is not None and status is not None:
            with contextlib.suppress(ValueError):
                self.limiter.observe(window, max(0, int(limit) - int(status)))

    def _reset_wait(self, headers: Mapping[str, str]) -> float:
        reset = headers.get("X-Bapi-Limit-Reset-Timestamp")
        wait = 1.0
        if reset is not None:
            with contextlib.suppress(ValueError):
                wait = (int(reset) - self.now_ms()) / 1000
        return max(MIN_RETRY_S, min(wait, 5.0))

    async def _ok(self, method: str, path: str, params: Mapping[str, Any] | None, *,
                  category: str | None = None, priority: Priority = Priority.BACKGROUND,
                  mutating: bool = False, signed: bool = True, weight: int = 1) -> RestResponse:
        """:meth:`_send`, then a ``retCode`` other than 0 raised as :meth:`_raise` says."""
        head, resp = await self._send(method, path, params, category=category,
                                      priority=priority, mutating=mutating, signed=signed,
                                      weight=weight)
        if head.retCode != errors.OK:
            self._raise(head, mutating, path)
        return resp

    async def _call(self, decoder: msgspec.json.Decoder[Envelope[T]], method: str, path: str,
                    params: Mapping[str, Any] | None = None, *, category: str | None = None,
                    priority: Priority = Priority.BACKGROUND, mutating: bool = False,
                    signed: bool = True) -> Envelope[T]:
        resp = await self._ok(method, path, params, category=category, priority=priority,
                              mutating=mutating, signed=signed)
        return decoder.decode(resp.body)

    async def _pages(self, decoder: msgspec.json.Decoder[Envelope[schemas.Page[T]]], path: str,
                     params: dict[str, Any], *, category: str | None = None,
                     priority: Priority = Priority.BACKGROUND,
                     signed: bool = True) -> AsyncIterator[T]:
        """Every entry of GET ``path``, page after page (``cursor`` = the last page's
        ``nextPageCursor``) until a page has no cursor or no entries."""
        cursor = ""
        while True:
            env = await self._call(decoder, "GET", path, params | {"cursor": cursor or None},
                                   category=category, priority=priority, signed=signed)
            for entry in env.result.list:
                yield entry
            cursor = env.result.nextPageCursor
            if not cursor or not env.result.list:
                return

    def _raise(self, head: schemas.Head, mutating: bool, path: str) -> NoReturn:
        text = f"{head.retCode} {head.retMsg}"
        if head.retCode in errors.AMBIGUOUS:
            if mutating:
                raise VenueAmbiguous(f"{self.name}: {path}: {text}")
            raise VenueUnavailable(f"{self.name}: {path}: {text}")
        raise VenueRejected(errors.reason_for(head.retCode, head.retMsg), text)

    # ---- symbols -----------------------------------------------------------------------------

    def _venue(self, symbol: str) -> tuple[str, str]:
        inst = self._instruments.get(symbol)
        if inst is None:
            raise VenueRejected(RejectReason.UNKNOWN_SYMBOL, f"{symbol} is not loaded")
        return ("linear" if inst.kind is InstrumentKind.PERPETUAL else "spot"), inst.venue_symbol

    def _canonical(self, category: str, venue_symbol: str) -> str | None:
        return self._by_venue.get((category, venue_symbol))

    def _categories(self) -> list[str]:
        out = []
        if "spot" in self.settings.markets:
            out.append("spot")
        if "perpetual" in self.settings.markets:
            out.append("linear")
        return out

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sync_time()
        await self.load_instruments()
        self._stream = WsStream(
            self.ws_url, name=f"{self.name}-private", on_open=self._on_open,
            on_message=self.on_message, on_reconnected=self.after_reconnect,
            ping=PingPolicy(PING_INTERVAL_S, lambda: '{"op":"ping"}'),
            idle_timeout_s=self.settings.stream_idle_timeout_s,
            backoff=Backoff(self.settings.reconnect_base_s, self.settings.reconnect_cap_s),
        )
        await self._stream.start(wait_s=max(self.settings.request_timeout_s, 5.0))
        if self.settings.dead_man_s:
            await self.arm_dead_man()
            self._tasks.append(asyncio.create_task(self._rearm_loop(), name="bybit-dcp"))
        await self._poll_prices_logged()
        self._tasks.append(asyncio.create_task(self._price_loop(), name="bybit-prices"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self._stream is not None:
            await self._stream.close()
        for feed in list(self.md_feeds.values()):
            await feed.close()
        await self.rest.close()

    # ---- public market data ------------------------------------------------------------------

    def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """The ``orderbook.50`` and ``publicTrade`` topics of ``symbol`` on its category's
        public WebSocket, checked by :class:`connectors.bybit.book.BookSync`; a book found out
        of sync is asked for again by unsubscribing and subscribing the orderbook topic."""
        category, venue_symbol = self._venue(symbol)
        default = WS_PUBLIC_URL_TESTNET if self.settings.testnet else WS_PUBLIC_URL
        url = self.settings.urls.get(f"ws_public_{category}") or default.format(
            category=category)
        sync = BookSync(symbol, venue_symbol)

        def op(name: str, *topics: str) -> str:
            return msgspec.json.encode({"op": name, "args": list(topics)}).decode()

        feed = PublicFeed(
            url, name=f"{self.name}-public-{category}-{venue_symbol}", sync=sync,
            subscribe=lambda: [op("subscribe", sync.book_topic, sync.trade_topic)],
            resubscribe=lambda: [op("unsubscribe", sync.book_topic),
                                 op("subscribe", sync.book_topic)],
            ping=PingPolicy(PING_INTERVAL_S, lambda: '{"op":"ping"}'),
            idle_timeout_s=self.settings.stream_idle_timeout_s,
            reconnect_base_s=self.settings.reconnect_base_s,
            reconnect_cap_s=self.settings.reconnect_cap_s)
        return run_feed(feed, self.md_feeds, symbol)

    async def load_instruments(self) -> None:
        wanted = set(self.settings.symbols) if self.settings.symbols else None
        for category in self._categories():
            params = {"category": category, "limit": 1000 if category == "linear" else None}
            async for info in self._pages(schemas.INSTRUMENTS, "/v5/market/instruments-info",
                                          params, signed=False):
                if info.status != "Trading":
                    continue
                if category == "linear" and info.contractType != "LinearPerpetual":
                    continue
                inst = info.to_instrument(category)
                if wanted is not None and inst.symbol not in wanted:
                    continue
                self._instruments[inst.symbol] = inst
                self._by_venue[(category, inst.venue_symbol)] = inst.symbol

    async def instruments(self) -> Sequence[Instrument]:
        return list(self._instruments.values())

    # ---- last prices ---------------------------------------------------------------------------

    async def poll_prices(self, category: str) -> None:
        """GET /v5/market/tickers?category=spot|linear
        (https://bybit-exchange.github.io/docs/v5/market/tickers): public (not signed), under the
        IP limit only (the "API Rate Limit Table" lists no market endpoint). One request per
        category gives every symbol's ``lastPrice``; those of the loaded instruments become
        :meth:`last_price` (the ``execution`` topic updates it between polls)."""
        mine = [s for (c, s) in self._by_venue if c == category]
        if not mine:
            return
        params = {"category": category, "symbol": mine[0] if len(mine) == 1 else None}
        env = await self._call(schemas.TICKERS, "GET", "/v5/market/tickers", params,
                               priority=Priority.BACKGROUND, signed=False)
        for ticker in env.result.list:
            symbol = self._canonical(category, ticker.symbol)
            price = ticker.to_last_price()
            if symbol is not None and price is not None:
                self._last_price[symbol] = price

    async def _poll_prices_logged(self) -> None:
        for category in self._categories():
            try:
                await self.poll_prices(category)
            except Exception as exc:  # a failed poll must not end the loop (or start())
                log.warning("%s: polling %s tickers failed: %s", self.name, category, exc)

    async def _price_loop(self) -> None:
        while True:
            await asyncio.sleep(self.PRICE_POLL_S)
            await self._poll_prices_logged()

    # ---- the dead-man switch (DCP) ---------------------------------------------------------

    def _dcp_products(self) -> list[str]:
        return [_DCP_PRODUCT[c] for c in self._categories()]

    async def arm_dead_man(self) -> None:
        """POST /v5/order/disconnected-cancel-all per product (SPOT, DERIVATIVES; the venue's
        default is OPTIONS) with ``timeWindow`` = dead_man_s within [3, 300]
        (https://bybit-exchange.github.io/docs/v5/order/dcp). The venue cancels the product's
        orders once every private connection subscribed to its ``dcp.spot`` / ``dcp.future``
        topic has been gone that long (.../v5/websocket/private/dcp); the stream's pings keep it
        from firing. DCP must be enabled for the account by Bybit ("only available for Ins
        clients"); otherwise the venue refuses and health() says so. The documented answer is
        just ``{"retCode": 0, "retMsg": "success"}`` (no ``result``)."""
        assert self.settings.dead_man_s is not None
        window = int(min(max(round(self.settings.dead_man_s), DCP_MIN_S), DCP_MAX_S))
        path = "/v5/order/disconnected-cancel-all"
        try:
            for product in self._dcp_products():
                await self._ok("POST", path, {"product": product, "timeWindow": window})
        except (VenueRejected, VenueUnavailable, VenueAmbiguous) as exc:
            self.dcp_armed = False
            self.dcp_detail = f"DCP not armed: {exc}"
            log.warning("%s: %s", self.name, self.dcp_detail)
            return
        self.dcp_armed = True
        self.dcp_detail = f"DCP armed ({window} s)"

    async def _rearm_loop(self) -> None:
        while True:
            await asyncio.sleep(DCP_REARM_S)
            await self.arm_dead_man()

    # ---- the private stream ------------------------------------------------------------------

    def _topics(self) -> list[str]:
        topics = ["order", "execution", "wallet"]
        if self.settings.dead_man_s:
            topics += ["dcp.spot" if p == "SPOT" else "dcp.future" for p in self._dcp_products()]
        return topics

    async def _on_open(self, ws: Ws) -> None:
        """Authenticate, then subscribe; each answered before the next (WebSocket Connect)."""
        expires = self.now_ms() + 10_000
        await ws.send_str(orjson.dumps({
            "req_id": "auth", "op": "auth",
            "args": [self._creds.api_key, expires, sign_ws_auth(self._creds.secret, expires)],
        }).decode())
        reply = schemas.WS_OP.decode(await ws.receive_str(timeout=10))
        if reply.op != "auth" or not reply.success:
            raise StreamError(f"auth refused: {reply.ret_msg}")
        await ws.send_str(orjson.dumps(
            {"req_id": "sub", "op": "subscribe", "args": self._topics()}
        ).decode())
        reply = schemas.WS_OP.decode(await ws.receive_str(timeout=10))
        if reply.op != "subscribe" or not reply.success:
            raise StreamError(f"subscription refused: {reply.ret_msg}")

    def on_message(self, raw: str) -> None:
        probe = schemas.WS_PROBE.decode(raw)
        if probe.topic == "order":
            for order in schemas.WS_ORDER.decode(raw).data:
                self._on_order(order)
        elif probe.topic == "execution":
            for ex in schemas.WS_EXECUTION.decode(raw).data:
                if ex.execType == "Trade":
                    self._on_execution(ex)
        elif probe.topic == "wallet":
            push = schemas.WS_WALLET.decode(raw)
            ts = ms_to_ns(push.creationTime) or time.time_ns()
            self.emit_balances([c.to_update(ts) for acct in push.data for c in acct.coin])

    def _symbol_of(self, category: str, venue_symbol: str) -> str:
        return self._canonical(category or "spot", venue_symbol) or venue_symbol

    def _on_execution(self, ex: Execution) -> None:
        symbol = self._symbol_of(ex.category, ex.symbol)
        fill = ex.to_fill(self._fee_default(symbol, ex))
        self._last_price[symbol] = fill.price
        self.emit(fill)

    def _fill(self, category: str, ex: Execution) -> OrderFilled:
        return ex.to_fill(self._fee_default(self._symbol_of(category, ex.symbol), ex))

    def _fee_default(self, symbol: str, ex: Execution) -> str | None:
        """The fee coin of ``ex`` when Bybit leaves ``feeCurrency`` empty: a derivative's settle
        coin, a spot execution's by :meth:`Execution.spot_fee_coin`."""
        inst = self._instruments.get(symbol)
        if inst is None:
            return None
        if inst.kind is InstrumentKind.PERPETUAL:
            return inst.settle
        return ex.spot_fee_coin(inst.base, inst.quote)

    def _on_order(self, order: Order) -> None:
        for ev in self.order_events(order):
            self.emit(ev)

    def order_events(self, order: Order) -> list[VenueEvent]:
        """The events one ``order`` push means (OrderAccepted on first sight; OrderAmended when
        qty or price of a live order changed; the terminal event)."""
        coid, oid = order.orderLinkId, order.orderId
        ts = int(order.updatedTime or 0) * 1_000_000
        status = order.status
        out: list[VenueEvent] = []
        if status is VenueStatus.REJECTED:
            reason = (RejectReason.POST_ONLY_WOULD_TAKE
                      if order.rejectReason == errors.POST_ONLY_WOULD_TAKE else RejectReason.OTHER)
            self._live.pop(coid, None)
            return [OrderRejected(coid, reason, order.rejectReason or "rejected", ts)]
        out.append(OrderAccepted(coid, oid, ts))
        qty, price = Decimal(order.qty), order.price_or_none
        if status.is_open:
            before = self._live.get(coid)
            if before is not None and before != (qty, price):
                out.append(OrderAmended(coid, oid, qty, price, ts))
            self._live[coid] = (qty, price)
        else:
            self._live.pop(coid, None)
            if status is VenueStatus.FILLED:
                self.untrack(coid)  # done: nothing more to catch up on after a reconnect
        if status is VenueStatus.CANCELED:
            why = order.rejectReason if order.rejectReason not in ("", "EC_NoError") else (
                order.cancelType)
            out.append(OrderCanceled(coid, oid, ts, why, Decimal(order.cumExecQty or "0")))
        return out

    # ---- orders ------------------------------------------------------------------------------

    def order_body(self, req: OrderRequest) -> dict[str, Any]:
        """The POST /v5/order/create body of ``req`` (Place Order)."""
        category, vsym = self._venue(req.symbol)
        if req.time_in_force not in _TIF:
            raise VenueRejected(RejectReason.UNSUPPORTED,
                                f"Bybit has no {req.time_in_force.value} time in force")
        if req.reduce_only and category == "spot":
            raise VenueRejected(RejectReason.UNSUPPORTED, "reduce-only is for derivatives")
        limit = req.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        body: dict[str, Any] = {
            "category": category, "symbol": vsym,
            "side": "Buy" if req.side is Side.BUY else "Sell",
            "orderType": "Limit" if limit else "Market",
            "qty": plain(req.quantity), "orderLinkId": req.client_order_id,
        }
        if limit:
            if req.price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "a limit order needs a price")
            body["price"] = plain(req.price)
            body["timeInForce"] = "PostOnly" if req.post_only else _TIF[req.time_in_force]
        elif req.post_only:
            raise VenueRejected(RejectReason.UNSUPPORTED, "post-only needs a limit order")
        if category == "spot" and req.type in (OrderType.MARKET, OrderType.STOP):
            body["marketUnit"] = "baseCoin"  # a spot market buy's qty is quote coin otherwise
        if req.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if req.stop_price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "a stop order needs a stop price")
            body["triggerPrice"] = plain(req.stop_price)
            if category == "spot":
                body["orderFilter"] = "StopOrder"
            else:  # 1: triggers when the price rises to it, 2: when it falls to it
                body["triggerDirection"] = 1 if req.side is Side.BUY else 2
        if req.reduce_only:
            body["reduceOnly"] = True
        return body

    async def place(self, request: OrderRequest) -> OrderAccepted:
        body = self.order_body(request)
        self.track(request.client_order_id, request.symbol)
        try:
            env = await self._call(schemas.ORDER_IDS, "POST", "/v5/order/create", body,
                                   category=body["category"], priority=Priority.ORDER,
                                   mutating=True)
        except VenueRejected as exc:
            if exc.reason is not RejectReason.DUPLICATE_ORDER:
                self.untrack(request.client_order_id)
            raise
        return OrderAccepted(env.result.orderLinkId or request.client_order_id,
                             env.result.orderId, self.now_ms() * 1_000_000)

    async def place_batch(self, requests: Sequence[OrderRequest]
                          ) -> list[OrderAccepted | VenueError]:
        """POST /v5/order/create-batch (https://bybit-exchange.github.io/docs/v5/order/batch-place):
        one request per ``category`` (spot and linear orders go apart), at most
        :data:`PLACE_BATCH_MAX` of its orders per request and no more than its window takes in
        a second (:data:`PER_SECOND`); each order answered at its place in
        ``result.list`` and ``retExtInfo.list``. One outcome per request, in order
        (:meth:`Connector.place_batch`): an order the venue (or :meth:`order_body`) refused is
        a VenueRejected; every order of a request that timed out or failed with 5xx is a
        VenueAmbiguous, and so is one answered with a server error (10016, ...) that a query
        does not find yet; a request that was not sent makes its orders VenueUnavailable, and
        one the venue refused whole makes each of them that VenueRejected."""
        out: list[OrderAccepted | VenueError | None] = [None] * len(requests)
        by_category: dict[str, list[tuple[int, OrderRequest, dict[str, Any]]]] = {}
        for i, req in enumerate(requests):
            try:
                body = self.order_body(req)
            except VenueRejected as exc:
                out[i] = exc
                continue
            by_category.setdefault(body["category"], []).append((i, req, body))
        for category, bodies in by_category.items():
            # within the request limit, and within what the endpoint's window takes in one
            # second (one unit per order): linear 20 per request but 10 a second
            size = min(PLACE_BATCH_MAX.get(category, BATCH_MAX),
                       PER_SECOND.get(f"create_batch:{category}", BATCH_MAX))
            for start in range(0, len(bodies), size):
                await self._place_chunk(category, bodies[start:start + size], out)
        done = [o for o in out if o is not None]
        assert len(done) == len(requests)
        return done

    async def _place_chunk(self, category: str,
                           chunk: list[tuple[int, OrderRequest, dict[str, Any]]],
                           out: list[OrderAccepted | VenueError | None]) -> None:
        """One create-batch request: the outcome of each of its orders into ``out``."""
        items = [{k: v for k, v in body.items() if k != "category"} for _, _, body in chunk]
        for _, req, _ in chunk:
            self.track(req.client_order_id, req.symbol)
        try:
            env = await self._batch("/v5/order/create-batch", category, items)
        except VenueError as exc:
            for i, req, _ in chunk:
                if nothing_placed(exc):
                    self.untrack(req.client_order_id)
                out[i] = exc
            return
        for (i, req, _), (item, code, msg) in zip(chunk, env.outcomes(len(chunk)), strict=True):
            coid = req.client_order_id
            if code == errors.OK and item is not None:
                ts = int(item.createAt) * 1_000_000 if item.createAt.isdigit() else (
                    self.now_ms() * 1_000_000)
                out[i] = OrderAccepted(item.orderLinkId or coid, item.orderId, ts)
            elif code in errors.AMBIGUOUS or code == -1:
                # the venue does not know, or its answer leaves the order out: asked once
                # here; never turned into a reject (Invariant 3)
                try:
                    state = await self.query_order(req.symbol, coid)
                except VenueError:
                    state = None
                if state is None:
                    out[i] = VenueAmbiguous(f"{self.name}: create-batch: outcome of {coid} "
                                            f"unknown ({code} {msg})")
                elif state.status is VenueStatus.REJECTED:
                    self.untrack(coid)
                    out[i] = VenueRejected(RejectReason.OTHER, f"{code} {msg}: rejected")
                else:
                    out[i] = OrderAccepted(coid, state.venue_order_id, state.updated_ns)
            else:
                reason = errors.reason_for(code, msg)
                if reason is not RejectReason.DUPLICATE_ORDER:
                    self.untrack(coid)
                out[i] = VenueRejected(reason, f"{code} {msg}")

    async def cancel_batch(self, symbol: str, client_order_ids: Sequence[str]) -> int:
        """POST /v5/order/cancel-batch (https://bybit-exchange.github.io/docs/v5/order/
        batch-cancel), at most :data:`BATCH_MAX` orders per request: how many the venue accepted
        to cancel (its answer is the acknowledgement; the ``order`` topic confirms)."""
        category, vsym = self._venue(symbol)
        path = "/v5/order/cancel-batch"
        done = 0
        for start in range(0, len(client_order_ids), BATCH_MAX):
            chunk = client_order_ids[start:start + BATCH_MAX]
            env = await self._batch(path, category,
                                    [{"symbol": vsym, "orderLinkId": c} for c in chunk])
            done += sum(1 for _, code, _ in env.outcomes(len(chunk)) if code == errors.OK)
        return done

    async def _batch(self, path: str, category: str,
                     items: list[dict[str, Any]]) -> schemas.BatchEnvelope:
        resp = await self._ok("POST", path, {"category": category, "request": items},
                              category=category, priority=Priority.ORDER, mutating=True,
                              weight=len(items))
        return schemas.BATCH.decode(resp.body)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        category, vsym = self._venue(symbol)
        try:
            await self._call(schemas.ORDER_IDS, "POST", "/v5/order/cancel",
                             {"category": category, "symbol": vsym,
                              "orderLinkId": client_order_id},
                             category=category, priority=Priority.ORDER, mutating=True)
        except VenueRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER:
                await self._refine_unknown(symbol, client_order_id, exc)
            raise

    async def _refine_unknown(self, symbol: str, coid: str, exc: VenueRejected) -> None:
        """Bybit answers "order not exists or too late to cancel" for both: ask which."""
        try:
            state = await self.query_order(symbol, coid)
        except VenueRejected:
            return
        if state is not None and not state.status.is_open:
            raise VenueRejected(RejectReason.TOO_LATE, f"{exc.text} ({state.status.value})")

    async def amend(self, request: AmendRequest) -> None:
        if request.new_client_order_id not in (None, request.client_order_id):
            raise VenueRejected(RejectReason.UNSUPPORTED, "Bybit cannot change an orderLinkId")
        category, vsym = self._venue(request.symbol)
        body: dict[str, Any] = {"category": category, "symbol": vsym,
                                "orderLinkId": request.client_order_id}
        if request.quantity is not None:
            body["qty"] = plain(request.quantity)
        if request.price is not None:
            body["price"] = plain(request.price)
        try:
            env = await self._call(schemas.ORDER_IDS, "POST", "/v5/order/amend", body,
                                   category=category, priority=Priority.ORDER, mutating=True)
        except VenueRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER:
                await self._refine_unknown(request.symbol, request.client_order_id, exc)
            raise
        state = await self.query_order(request.symbol, request.client_order_id)
        if state is not None and state.status.is_open:
            self._live[state.client_order_id] = (state.quantity, state.price)
            self.emit(OrderAmended(state.client_order_id, env.result.orderId, state.quantity,
                                   state.price, state.updated_ns))

    async def cancel_all(self, symbol: str | None = None) -> int:
        if symbol is not None:
            category, vsym = self._venue(symbol)
            targets = [(category, {"category": category, "symbol": vsym})]
        else:
            targets = [(c, {"category": c} | ({"settleCoin": "USDT"} if c == "linear" else {}))
                       for c in self._categories()]
        count = 0
        for category, body in targets:
            env = await self._call(schemas.CANCEL_ALL, "POST", "/v5/order/cancel-all", body,
                                   category=category, priority=Priority.ORDER, mutating=True)
            count += len(env.result.list)
        return count

    async def _orders(self, path: str, params: dict[str, Any], category: str,
                      priority: Priority) -> list[Order]:
        return [order async for order in self._pages(schemas.ORDERS, path, params,
                                                     category=category, priority=priority)]

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """GET /v5/order/realtime (open and recent orders), then /v5/order/history, by
        ``orderId`` when ``venue_order_id`` is given, else by ``orderLinkId``; None when
        neither knows it. The state names ``client_order_id``."""
        category, vsym = self._venue(symbol)
        params = {"category": category, "symbol": vsym}
        if venue_order_id:
            params["orderId"] = venue_order_id
        else:
            params["orderLinkId"] = client_order_id
        for path in ("/v5/order/realtime", "/v5/order/history"):
            found = await self._orders(path, params, category, Priority.QUERY)
            for order in found:
                if venue_order_id and order.orderId == venue_order_id:
                    state = order.to_state(symbol)
                    return dataclasses.replace(state, client_order_id=client_order_id)
                if not venue_order_id and order.orderLinkId == client_order_id:
                    return order.to_state(symbol)
        return None

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        if symbol is not None:
            category, vsym = self._venue(symbol)
            queries = [(category, {"category": category, "symbol": vsym, "limit": 50})]
        else:
            queries = [(c, {"category": c, "limit": 50}
                        | ({"settleCoin": "USDT"} if c == "linear" else {}))
                       for c in self._categories()]
        out: list[OrderState] = []
        for category, params in queries:
            for order in await self._orders("/v5/order/realtime", params, category,
                                            Priority.BACKGROUND):
                sym = self._canonical(category, order.symbol)
                if sym is not None and order.status.is_open:
                    out.append(order.to_state(sym))
        return out

    def fill_windows(self, since_ns: int) -> list[tuple[int, int]]:
        """The ``[startTime, endTime]`` windows (ms) that cover ``since_ns`` up to now: Get Trade
        History answers at most 7 days per request ("Only startTime is passed, return range
        between startTime and startTime+7 days"; both passed: "endTime - startTime <= 7
        days") and keeps 2 years, so the start is at most :data:`EXECUTION_HISTORY_MS` ago."""
        now = self.now_ms()
        end_at = now + EXECUTION_SLACK_MS
        # a ``since`` past the venue's clock (ours runs ahead) asks one empty window: a start
        # after the end would be refused
        start = min(max(since_ns // 1_000_000, now - EXECUTION_HISTORY_MS, 0), end_at)
        windows: list[tuple[int, int]] = []
        while True:
            end = min(start + EXECUTION_WINDOW_MS, end_at)
            windows.append((start, end))
            if end >= end_at:
                return windows
            start = end + 1

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        """GET /v5/execution/list from ``since_ns`` up to now (execType Trade only), window
        after window of at most 7 days (:meth:`fill_windows`), page after page in each."""
        out: list[OrderFilled] = []
        seen: set[str] = set()
        windows = self.fill_windows(since_ns)
        for category in self._categories():
            for start, end in windows:
                params = {"category": category, "startTime": start, "endTime": end,
                          "limit": 100}
                async for ex in self._pages(schemas.EXECUTIONS, "/v5/execution/list", params,
                                            category=category):
                    if ex.execType != "Trade" or ex.execId in seen:
                        continue
                    seen.add(ex.execId)
                    fill = self._fill(category, ex)
                    if fill.ts_ns >= since_ns:
                        out.append(fill)
        return sorted(out, key=lambda f: f.ts_ns)

    async def balances(self) -> Sequence[Balance]:
        env = await self._call(schemas.WALLET, "GET", "/v5/account/wallet-balance",
                               {"accountType": "UNIFIED"})
        return [c.to_balance() for acct in env.result.list for c in acct.coin]

    async def positions(self) -> Sequence[Position]:
        if "perpetual" not in self.settings.markets:
            return ()
        out: list[Position] = []
        params = {"category": "linear", "settleCoin": "USDT", "limit": 200}
        async for p in self._pages(schemas.POSITIONS, "/v5/position/list", params,
                                   category="linear"):
            sym = self._canonical("linear", p.symbol)
            if sym is not None and Decimal(p.size or "0"):
                out.append(p.to_position(sym))
        return out

    async def health(self) -> Health:
        stream = self._stream
        connected = stream is not None and stream.connected.is_set()
        detail = "stream connected" if connected else "stream down"
        if self.limiter.banned:
            connected, detail = False, f"IP banned for {self.limiter.banned_for:.0f} s"
        if self.dcp_detail:
            detail += f"; {self.dcp_detail}"
        return Health(connected, detail)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last_price.get(symbol)
