"""``BinanceConnector``: Binance Spot through its REST API and the WebSocket API user data
stream.

* REST (Spot REST API): SIGNED requests carry ``timestamp`` (our clock plus the offset measured
  against ``GET /api/v3/time``), ``recvWindow`` and ``signature`` in the query string, the key in
  ``X-MBX-APIKEY`` ("Request Security", "Timing security"). Limits ("LIMITS"): as exchangeInfo's
  ``rateLimits`` state them (REQUEST_WEIGHT per minute, counted with each endpoint's documented
  weight; ORDERS per 10 s and per day; RAW_REQUESTS), then the account's own ORDERS limits and
  counts from ``GET /api/v3/rateLimit/order`` (they differ by account: the docs' example shows
  50 per 10 s and 160,000 per day); until read, :data:`WINDOWS`. ``X-MBX-USED-WEIGHT-*`` and
  ``X-MBX-ORDER-COUNT-*`` are folded into our limiter.
* Private stream (WebSocket API, "User Data Stream requests"): ``userDataStream.subscribe.
  signature`` on ``/ws-api/v3`` (the listenKey flow is deprecated); ``executionReport`` events
  become our events, ``outboundAccountPosition`` our balance updates. The server pings every 20 s
  (aiohttp answers); a WebSocket API ``ping`` request every 20 s keeps our idle timer fed; a
  connection lives at most 24 h and is re-opened, followed by the REST catch-up of
  :class:`StreamingConnector`.
* Amend is ``POST /api/v3/order/cancelReplace`` (STOP_ON_FAILURE): the venue order is replaced by
  a new one (new ``orderId``), under the same client order id unless the request names a new
  one. Its CANCELED/NEW stream events are folded into one ``OrderAmended``; fills of the earlier
  venue orders are carried, so queries show the gateway's one order (total quantity and fills).
* Public market data (:meth:`BinanceConnector.market_data`): the diff depth and trade streams
  on the market data base URL (``urls["ws_streams"]``, default ``wss://stream.binance.com:9443``)
  and ``GET /api/v3/depth`` snapshots, kept by the documented local order book rules
  (:mod:`connectors.binance.book`).
* No dead-man switch: Binance spot has none (``countdownCancelAll`` is USD-M futures only), so
  ``settings.dead_man_s`` is ignored. No perpetuals here (spot API only).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import orjson

from connectors.base import (
    AmendRequest,
    Balance,
    Capabilities,
    ClientOrderIdRules,
    Health,
    Instrument,
    MarketEvent,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRequest,
    OrderState,
    OrderType,
    RejectReason,
    TimeInForce,
    VenueAmbiguous,
    VenueError,
    VenueInfo,
    VenueRejected,
)
from connectors.binance import errors as E
from connectors.binance import schemas as S
from connectors.binance.market import STREAM_TESTNET, STREAM_URL, MarketFeed, depth_weight
from connectors.binance.signing import Signer, ws_payload
from connectors.common.backoff import Backoff
from connectors.common.http import Prepared, RestClient, RestResponse
from connectors.common.ratelimit import Priority, RateLimiter, WindowSpec
from connectors.common.settings import VenueSettings
from connectors.common.stream import PingPolicy, StreamError, Ws, WsStream
from connectors.common.venue import (
    MS,
    BoundedDict,
    SeenSet,
    StreamingConnector,
    ms_to_ns,
    plain,
)

log = logging.getLogger(__name__)

REST_URL = "https://api.binance.com"
REST_TESTNET = "https://testnet.binance.vision"
WS_API_URL = "wss://ws-api.binance.com:443/ws-api/v3"
WS_API_TESTNET = "wss://ws-api.testnet.binance.vision/ws-api/v3"

CLIENT_ORDER_ID_RULES = ClientOrderIdRules(36, r"^[a-zA-Z0-9_-]{1,36}$")
"""``^[a-zA-Z0-9-_]{1,36}$`` (Spot API, client order id fields)."""

WINDOWS = (
    WindowSpec("weight", 6000, 60.0),
    WindowSpec("orders_10s", 100, 10.0),
    WindowSpec("orders_1d", 200_000, 86_400.0),
)
"""The limits until exchangeInfo and the account say theirs (the docs' exchangeInfo values)."""
_HEADERS = {"x-mbx-used-weight-1m": "weight", "x-mbx-order-count-10s": "orders_10s",
            "x-mbx-order-count-1d": "orders_1d"}

TIME_RESYNC_S = 300.0
TICKER_POLL_S = 5.0
ZERO = Decimal(0)


class BinanceConnector(StreamingConnector):
    def __init__(self, settings: VenueSettings) -> None:
        super().__init__()
        self.settings = settings
        self.info = VenueInfo(
            name=settings.name,
            capabilities=Capabilities(
                order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP,
                                       OrderType.STOP_LIMIT}),
                time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
                post_only=True,  # LIMIT_MAKER
                reduce_only=False,
                amend=True,  # cancelReplace (loses queue priority)
                amend_keeps_priority_on_qty_down=False,
                amend_new_client_order_id=True,  # cancelReplace places a new order
                bulk_cancel=True,  # DELETE /api/v3/openOrders, per symbol
                batch_place=False,
                market_data=True,  # diff depth + trade streams, REST depth snapshots
                balance_stream=True,  # outboundAccountPosition
            ),
            client_order_id_rules=CLIENT_ORDER_ID_RULES,
        )
        urls = settings.urls
        self.rest_url = urls.get("rest") or (REST_TESTNET if settings.testnet else REST_URL)
        self.ws_url = urls.get("ws_api") or (WS_API_TESTNET if settings.testnet else WS_API_URL)
        self.stream_url = urls.get("ws_streams") or (STREAM_TESTNET if settings.testnet
                                                     else STREAM_URL)
        """The public market data streams' base (``/stream?streams=...`` is added)."""
        self.signer = Signer(settings.credentials)
        self.limiter = RateLimiter(WINDOWS)
        self._headers = dict(_HEADERS)
        """Response header -> the limiter window whose use it reports."""
        self._charged: dict[str, set[str]] = {"weight": {"weight"},
                                              "orders": {"orders_10s", "orders_1d"},
                                              "raw": set()}
        """Kind of limit -> its windows (a request costs its weight in every weight window, an
        order one in every orders window, every request one in every raw window)."""
        self.rest = RestClient(
            self.rest_url, name=settings.name, limiter=self.limiter,
            timeout_s=settings.request_timeout_s, on_headers=self._on_headers,
            max_429_wait_s=settings.max_429_wait_s,
        )
        ping_s = max(0.5, min(20.0, settings.stream_idle_timeout_s / 3))
        self.stream = WsStream(
            self.ws_url, name=f"{settings.name}-user", on_open=self._on_open,
            on_message=self._on_message, on_reconnected=self.after_reconnect,
            ping=PingPolicy(ping_s, lambda: '{"id":"ping","method":"ping"}'),
            idle_timeout_s=settings.stream_idle_timeout_s,
            backoff=Backoff(settings.reconnect_base_s, settings.reconnect_cap_s),
        )
        self.offset_ms = 0
        """Binance's clock minus ours (measured at start and every few minutes)."""
        self._instruments: dict[str, Instrument] = {}
        self._by_venue: dict[str, Instrument] = {}
        self._last_px: dict[str, Decimal] = {}
        self._oid_coid: BoundedDict[int, str] = BoundedDict()  # else: GET order by id
        self._coid_oid: BoundedDict[str, int] = BoundedDict()
        """Our client order id -> its venue orderId, to query by: a cancel replaces an order's
        clientOrderId (:meth:`query_order`)."""
        self._traded: set[str] = set()
        self._carry: BoundedDict[str, Decimal] = BoundedDict(50_000)
        """Client order id -> what its earlier (replaced) venue orders filled."""
        self._replacing: dict[str, int] = {}
        """Client order id of the new order of a cancelReplace under way -> the old orderId."""
        self._replaced_ids = SeenSet(50_000)
        self._replacement_ids = SeenSet(50_000)
        self._task: asyncio.Task[None] | None = None
        self._ws_seq = 0
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.market_feeds: set[MarketFeed] = set()
        """The public feeds being read (one per :meth:`market_data` call)."""

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.dead_man_s:
            log.info("%s: Binance spot has no dead-man switch; dead_man_s is ignored",
                     self.name)
        if "perpetual" in self.settings.markets:
            log.warning("%s: the Binance spot connector loads no perpetuals", self.name)
        await self.sync_time()
        await self._load_instruments()
        await self._load_order_limits()
        await self.stream.start(wait_s=max(2.0, self.settings.request_timeout_s * 4))
        if not self.stream.connected.is_set():
            log.warning("%s: user data stream not connected yet; it keeps trying", self.name)
        try:
            await self.poll_prices()  # last prices known at once (the gateway's price checks)
        except VenueError as exc:
            log.warning("%s: first price poll failed: %s", self.name, exc)
        self._task = asyncio.create_task(self._background(), name=f"{self.name}-background")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for feed in list(self.market_feeds):
            await feed.close()
        await self.stream.close()
        await self.rest.close()

    async def _background(self) -> None:
        last_sync = time.monotonic()
        while True:
            await asyncio.sleep(TICKER_POLL_S)
            try:
                if time.monotonic() - last_sync > TIME_RESYNC_S:
                    await self.sync_time()
                    last_sync = time.monotonic()
                await self.poll_prices()
            except Exception as exc:  # a poll failing must not end the loop
                log.warning("%s: background poll failed: %s", self.name, exc)

    # ---- REST plumbing -------------------------------------------------------------------------

    def now_ms(self) -> int:
        return time.time_ns() // MS + self.offset_ms

    def _on_headers(self, status: int, headers: Mapping[str, str]) -> None:
        for header, window in self._headers.items():
            value = headers.get(header)
            if value is not None and value.isdigit():
                self.limiter.observe(window, int(value))

    async def _request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, *,
        weight: int, orders: int = 0, priority: Priority = Priority.BACKGROUND,
        mutating: bool = False, signed: bool = True,
    ) -> RestResponse:
        base = urlencode(params or {})
        rw = self.settings.recv_window_ms
        key = self.signer.api_key

        def prepare() -> Prepared:
            if not signed:
                return Prepared(method, path, base)
            q = f"{base}&" if base else ""
            q += f"recvWindow={rw}&timestamp={self.now_ms()}"
            q += "&signature=" + quote(self.signer.sign(q), safe="")
            return Prepared(method, path, q, None, {"X-MBX-APIKEY": key})

        charged = self._charged
        costs = dict.fromkeys(charged["weight"], weight) | dict.fromkeys(charged["raw"], 1)
        if orders:
            costs |= dict.fromkeys(charged["orders"], orders)
        resp = await self.rest.send(prepare, costs=costs, priority=priority, mutating=mutating)
        if resp.status != 200:
            err = self._error(resp)
            if err is not None and err.code == E.TIMEOUT and mutating:
                raise VenueAmbiguous(f"{self.name}: {path}: {err.msg}")
            if err is not None and err.code == E.INVALID_TIMESTAMP:
                task = asyncio.get_running_loop().create_task(self._resync_quietly())
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)
        return resp

    @staticmethod
    def _error(resp: RestResponse) -> S.BinanceError | None:
        try:
            return S.ERROR.decode(resp.body)
        except msgspec.DecodeError:
            return None

    def _refused(self, resp: RestResponse, what: str) -> VenueRejected:
        err = self._error(resp)
        if err is None:
            return VenueRejected(RejectReason.OTHER, f"{what}: HTTP {resp.status}")
        return VenueRejected(E.reject_reason(err.code, err.msg), f"{err.code} {err.msg}")

    async def _resync_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.sync_time()

    async def sync_time(self) -> int:
        """The offset of Binance's clock from ours (``GET /api/v3/time``, midpoint of the
        round trip)."""
        t0 = time.time_ns()
        resp = await self._request("GET", "/api/v3/time", weight=1, signed=False)
        t1 = time.time_ns()
        if resp.status != 200:
            raise self._refused(resp, "server time")
        server = S.SERVER_TIME.decode(resp.body).serverTime
        self.offset_ms = server - (t0 + t1) // 2 // MS
        return self.offset_ms

    # ---- instruments and prices ----------------------------------------------------------------

    def _venue_symbol(self, symbol: str) -> str:
        inst = self._instruments.get(symbol)
        if inst is None:
            raise VenueRejected(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        return inst.venue_symbol

    def _canonical(self, venue_symbol: str) -> str:
        inst = self._by_venue.get(venue_symbol)
        return inst.symbol if inst is not None else venue_symbol

    async def _load_instruments(self) -> None:
        params = {"permissions": "SPOT"}
        wanted = self.settings.symbols
        if wanted:
            spot = [s for s in wanted if ":" not in s]
            params = {"symbols": orjson.dumps([s.replace("/", "") for s in spot]).decode()}
        resp = await self._request("GET", "/api/v3/exchangeInfo", params, weight=20,
                                   signed=False)
        if resp.status != 200:
            raise self._refused(resp, "exchangeInfo")
        info = S.EXCHANGE_INFO.decode(resp.body)
        self._apply_limits(info.rateLimits)
        for inst in info.to_instruments():
            if wanted and inst.symbol not in wanted:
                continue
            self._instruments[inst.symbol] = inst
            self._by_venue[inst.venue_symbol] = inst

    def _apply_limits(self, limits: Sequence[S.RateLimit]) -> None:
        """Take the venue's limits (exchangeInfo ``rateLimits``, then the account's ORDERS
        limits) as our limiter's windows: the windows of a kind the answer states replace those
        charged for that kind until now."""
        stated: dict[str, set[str]] = {}
        for rl in limits:
            known = rl.to_window()
            if known is None:
                continue
            kind, spec, header = known
            self.limiter.set_window(spec)
            stated.setdefault(kind, set()).add(spec.name)
            if header is not None:
                self._headers[header] = spec.name
        self._charged |= stated

    async def _load_order_limits(self) -> None:
        """``GET /api/v3/rateLimit/order`` (weight 40, "Query Unfilled Order Count"): the
        account's ORDERS limits, which may be below exchangeInfo's, and what is used of them.
        A failure keeps exchangeInfo's (logged)."""
        try:
            resp = await self._request("GET", "/api/v3/rateLimit/order", weight=40)
        except VenueError as exc:
            log.warning("%s: account order limits not read: %s", self.name, exc)
            return
        if resp.status != 200:
            log.warning("%s: account order limits not read: %s", self.name,
                        self._refused(resp, "rateLimit/order").text)
            return
        counts = S.ORDER_COUNTS.decode(resp.body)
        self._apply_limits(counts)
        for c in counts:
            known = c.to_window()
            if known is not None:
                self.limiter.observe(known[1].name, c.count)

    async def instruments(self) -> Sequence[Instrument]:
        return list(self._instruments.values())

    async def poll_prices(self) -> None:
        wanted = [i.venue_symbol for i in self._instruments.values()]
        params = {"symbols": orjson.dumps(wanted).decode()} if self.settings.symbols else {}
        resp = await self._request("GET", "/api/v3/ticker/price", params, weight=4,
                                   signed=False)
        if resp.status != 200:
            return
        for t in S.TICKER_PRICES.decode(resp.body):
            if t.symbol in self._by_venue:
                self._last_px[self._by_venue[t.symbol].symbol] = Decimal(t.price)

    def last_price(self, symbol: str) -> Decimal | None:
        return self._last_px.get(symbol)

    # ---- orders --------------------------------------------------------------------------------

    def _order_params(self, req: OrderRequest) -> dict[str, str]:
        if req.reduce_only:
            raise VenueRejected(RejectReason.UNSUPPORTED, "Binance spot has no reduce-only")
        if req.time_in_force not in self.capabilities.time_in_force:
            raise VenueRejected(RejectReason.UNSUPPORTED,
                                f"Binance spot has no {req.time_in_force.name} orders")
        p = {"symbol": self._venue_symbol(req.symbol), "side": req.side.name,
             "quantity": plain(req.quantity), "newClientOrderId": req.client_order_id,
             "newOrderRespType": "RESULT"}
        tif = req.time_in_force.name
        if req.type is OrderType.MARKET:
            p["type"] = "MARKET"
        elif req.type is OrderType.LIMIT:
            if req.price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "a limit order needs a price")
            p["price"] = plain(req.price)
            if req.post_only:
                if req.time_in_force is not TimeInForce.GTC:
                    raise VenueRejected(RejectReason.UNSUPPORTED, "post-only is GTC only")
                p["type"] = "LIMIT_MAKER"
            else:
                p |= {"type": "LIMIT", "timeInForce": tif}
        elif req.type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if req.stop_price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "a stop order needs a stop price")
            p["stopPrice"] = plain(req.stop_price)
            if req.type is OrderType.STOP:
                p["type"] = "STOP_LOSS"
            else:
                if req.price is None:
                    raise VenueRejected(RejectReason.PRICE_FILTER, "a stop limit needs a price")
                p |= {"type": "STOP_LOSS_LIMIT", "price": plain(req.price), "timeInForce": tif}
        if req.post_only and req.type is not OrderType.LIMIT:
            raise VenueRejected(RejectReason.UNSUPPORTED, "post-only is for limit orders")
        return p

    async def place(self, request: OrderRequest) -> OrderAccepted:
        """``POST /api/v3/order`` (weight 1, 1 order)."""
        params = self._order_params(request)
        coid = request.client_order_id
        self.track(coid, request.symbol)
        self._traded.add(request.symbol)
        try:
            resp = await self._request("POST", "/api/v3/order", params, weight=1, orders=1,
                                       priority=Priority.ORDER, mutating=True)
        except VenueRejected:
            self.untrack(coid)
            raise
        if resp.status != 200:
            refused = self._refused(resp, "new order")
            if refused.reason is not RejectReason.DUPLICATE_ORDER:
                self.untrack(coid)
            raise refused
        order = S.ORDER.decode(resp.body)
        self._remember(order.orderId, coid)
        accepted = order.to_accepted()
        self.emit(accepted)
        return accepted

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """``DELETE /api/v3/order`` by ``origClientOrderId`` (weight 1)."""
        params = {"symbol": self._venue_symbol(symbol), "origClientOrderId": client_order_id}
        resp = await self._request("DELETE", "/api/v3/order", params, weight=1,
                                   priority=Priority.ORDER, mutating=True)
        if resp.status != 200:
            raise self._refused(resp, "cancel")

    async def cancel_all(self, symbol: str | None = None) -> int:
        """``DELETE /api/v3/openOrders`` per symbol (weight 1); without a symbol, every symbol
        that has open orders. -2011 there means none were open."""
        if symbol is not None:
            symbols = [symbol]
        else:
            symbols = sorted({s.symbol for s in await self.open_orders()})
        count = 0
        for sym in symbols:
            resp = await self._request("DELETE", "/api/v3/openOrders",
                                       {"symbol": self._venue_symbol(sym)}, weight=1,
                                       priority=Priority.ORDER, mutating=True)
            if resp.status == 200:
                count += len(S.CANCELED_LIST.decode(resp.body))
                continue
            err = self._error(resp)
            if err is not None and err.code == E.CANCEL_REJECTED:
                continue
            raise self._refused(resp, "cancel all")
        return count

    def _remember(self, order_id: int, client_order_id: str) -> None:
        self._oid_coid[order_id] = client_order_id
        self._coid_oid[client_order_id] = order_id

    async def _fetch_order(self, symbol: str, client_order_id: str | None = None,
                           order_id: int | None = None,
                           priority: Priority = Priority.QUERY) -> S.BinanceOrder | None:
        """``GET /api/v3/order`` (weight 4) by ``orderId`` or else ``origClientOrderId``; None
        on -2013 "Order does not exist."."""
        params = {"symbol": self._venue_symbol(symbol)}
        if order_id is not None:
            params["orderId"] = str(order_id)
        elif client_order_id is not None:
            params["origClientOrderId"] = client_order_id
        resp = await self._request("GET", "/api/v3/order", params, weight=4, priority=priority)
        if resp.status == 200:
            order = S.ORDER.decode(resp.body)
            if order_id is None and client_order_id is not None:
                self._remember(order.orderId, client_order_id)
            elif order.orderId not in self._oid_coid:
                self._remember(order.orderId, order.clientOrderId)
            return order
        err = self._error(resp)
        if err is not None and err.code == E.NO_SUCH_ORDER:
            return None
        raise self._refused(resp, "query order")

    async def _order_of(self, symbol: str, client_order_id: str,
                        priority: Priority = Priority.QUERY,
                        venue_order_id: str | None = None) -> S.BinanceOrder | None:
        """Our order ``client_order_id`` at the venue: by its ``orderId`` when known, since a
        cancel replaces the order's clientOrderId with the cancel's ``newClientOrderId`` (or a
        generated one), after which a query by the original id may answer -2013 (WebSocket API
        "Cancel order": "newClientOrderId will replace clientOrderId of the canceled order,
        freeing it up for new orders"); else by ``origClientOrderId``. ``venue_order_id`` (the
        caller's record of the orderId, e.g. the gateway's after a restart) comes first."""
        order_id = _order_id(venue_order_id)
        if order_id is None:
            order_id = self._coid_oid.get(client_order_id)
        if order_id is not None:
            return await self._fetch_order(symbol, order_id=order_id, priority=priority)
        return await self._fetch_order(symbol, client_order_id, priority=priority)

    async def query_order(self, symbol: str, client_order_id: str, *,
                          venue_order_id: str | None = None) -> OrderState | None:
        """The order's state (:meth:`_order_of`: by ``venue_order_id`` when given, else by the
        orderId we know, else by ``origClientOrderId``); None when the venue does not know it.
        The state names ``client_order_id`` even when the venue shows the cancel's id."""
        self._traded.add(symbol)  # its fills are wanted too (myTrades is per symbol)
        order = await self._order_of(symbol, client_order_id, venue_order_id=venue_order_id)
        if order is None:
            return None
        self._remember(order.orderId, client_order_id)
        state = order.to_state(symbol, self._carry.get(client_order_id, ZERO))
        return dataclasses.replace(state, client_order_id=client_order_id)

    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        """``GET /api/v3/openOrders`` (weight 6 for a symbol, 80 for all)."""
        params = {"symbol": self._venue_symbol(symbol)} if symbol else {}
        resp = await self._request("GET", "/api/v3/openOrders", params,
                                   weight=6 if symbol else 80)
        if resp.status != 200:
            raise self._refused(resp, "open orders")
        out = []
        for o in S.ORDERS.decode(resp.body):
            self._remember(o.orderId, o.clientOrderId)
            canonical = self._canonical(o.symbol)
            self._traded.add(canonical)
            out.append(o.to_state(canonical, self._carry.get(o.clientOrderId, ZERO)))
        return out

    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]:
        """``GET /api/v3/myTrades`` (weight 20) per symbol traded or configured, from
        ``startTime``, paged by ``fromId``; client order ids from what we know of the order ids
        (else ``GET /api/v3/order`` by ``orderId``)."""
        symbols = set(self._traded) | set(self.tracked.values())
        if self.settings.symbols:
            symbols |= {s for s in self.settings.symbols if s in self._instruments}
        out: list[OrderFilled] = []
        for symbol in sorted(symbols):
            params = {"symbol": self._venue_symbol(symbol),
                      "startTime": str(max(0, since_ns // MS)), "limit": "1000"}
            while True:
                resp = await self._request("GET", "/api/v3/myTrades", params, weight=20)
                if resp.status != 200:
                    raise self._refused(resp, "my trades")
                trades = S.MY_TRADES.decode(resp.body)
                for t in trades:
                    coid = self._oid_coid.get(t.orderId)
                    if coid is None:
                        order = await self._fetch_order(symbol, order_id=t.orderId,
                                                        priority=Priority.BACKGROUND)
                        coid = order.clientOrderId if order is not None else str(t.orderId)
                    out.append(t.to_fill(coid))
                if len(trades) < 1000:
                    break
                params = {"symbol": params["symbol"], "fromId": str(trades[-1].id + 1),
                          "limit": "1000"}
        return out

    async def amend(self, request: AmendRequest) -> None:
        """``POST /api/v3/order/cancelReplace`` with STOP_ON_FAILURE (weight 1, 1 order). The
        quantity asked is the order's total: the new venue order gets what is left of it."""
        coid = request.client_order_id
        old = await self._order_of(request.symbol, coid, priority=Priority.ORDER)
        if old is None:
            raise VenueRejected(RejectReason.UNKNOWN_ORDER, f"no order {coid!r}")
        state = old.to_state(request.symbol, self._carry.get(coid, ZERO))
        if not state.status.is_open:
            raise VenueRejected(RejectReason.TOO_LATE, f"order {coid!r} is {old.status}")
        total = request.quantity if request.quantity is not None else state.quantity
        left = total - state.filled_quantity
        if left <= 0:
            raise VenueRejected(RejectReason.OTHER,
                                f"quantity {total} not above the filled {state.filled_quantity}")
        price = request.price if request.price is not None else state.price
        new_coid = request.new_client_order_id or coid
        btype = old.type or "LIMIT"
        params = {"symbol": old.symbol, "side": old.side or "BUY", "type": btype,
                  "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": str(old.orderId),
                  "cancelOrigClientOrderId": coid, "newClientOrderId": new_coid,
                  "quantity": plain(left), "newOrderRespType": "RESULT"}
        if btype in ("LIMIT", "STOP_LOSS_LIMIT"):
            params["timeInForce"] = old.timeInForce or "GTC"
        if btype in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT"):
            if price is None:
                raise VenueRejected(RejectReason.PRICE_FILTER, "no price to amend to")
            params["price"] = plain(price)
        elif request.price is not None:
            raise VenueRejected(RejectReason.UNSUPPORTED, f"a {btype} order has no price")
        if btype in ("STOP_LOSS", "STOP_LOSS_LIMIT") and old.stopPrice:
            params["stopPrice"] = plain(Decimal(old.stopPrice))
        self._replaced_ids.add(old.orderId)
        self._replacing[new_coid] = old.orderId
        resp = await self._request("POST", "/api/v3/order/cancelReplace", params, weight=1,
                                   orders=1, priority=Priority.ORDER, mutating=True)
        # (VenueAmbiguous leaves the markers: the gateway resolves by query)
        self._replacing.pop(new_coid, None)
        carried = state.filled_quantity
        if resp.status == 200:
            result = S.CANCEL_REPLACE.decode(resp.body)
            cancelled = S.ORDER.decode(result.cancelResponse)
            new = S.ORDER.decode(result.newOrderResponse)
            carried = self._carry.get(coid, ZERO) + Decimal(cancelled.executedQty or "0")
            self._carry[new_coid] = carried
            self._replacement_ids.add(new.orderId)
            self._remember(new.orderId, new_coid)
            self.emit(OrderAmended(coid, str(new.orderId), carried + Decimal(new.origQty or "0"),
                                   price, ms_to_ns(new.transactTime),
                                   new_coid if new_coid != coid else None))
            return
        self._replaced_ids.discard(old.orderId)
        try:
            failed = S.CANCEL_REPLACE_ERROR.decode(resp.body)
        except msgspec.DecodeError:
            raise self._refused(resp, "cancel-replace") from None
        data = failed.data
        if data is None:
            raise VenueRejected(E.reject_reason(failed.code, failed.msg),
                                f"{failed.code} {failed.msg}")
        if data.cancelResult == "SUCCESS" and S.present(data.cancelResponse):
            cancelled = S.ORDER.decode(data.cancelResponse)
            sub = _sub_error(data.newOrderResponse)
            self.emit(OrderCanceled(coid, str(old.orderId), ms_to_ns(cancelled.transactTime),
                                    f"cancel-replace: the new order was refused: {sub.msg}",
                                    self._carry.get(coid, ZERO)
                                    + Decimal(cancelled.executedQty or "0")))
            raise VenueRejected(E.reject_reason(sub.code, sub.msg), f"{sub.code} {sub.msg}")
        sub = _sub_error(data.cancelResponse)
        raise VenueRejected(E.reject_reason(sub.code, sub.msg), f"{sub.code} {sub.msg}")

    # ---- account -------------------------------------------------------------------------------

    async def balances(self) -> Sequence[Balance]:
        """``GET /api/v3/account`` (weight 20), non-zero balances."""
        resp = await self._request("GET", "/api/v3/account", {"omitZeroBalances": "true"},
                                   weight=20)
        if resp.status != 200:
            raise self._refused(resp, "account")
        return S.ACCOUNT.decode(resp.body).to_balances()

    async def health(self) -> Health:
        if self.limiter.banned:
            return Health(False, f"banned by Binance for {self.limiter.banned_for:.0f} s")
        if not self.stream.connected.is_set():
            return Health(False, "user data stream disconnected")
        return Health(True, f"clock offset {self.offset_ms} ms")

    # ---- public market data --------------------------------------------------------------------

    async def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """The book of ``symbol`` kept by Binance's rules ("How to manage a local order book
        correctly", :mod:`connectors.binance.book`) and its trades, from the combined stream
        ``<symbol>@depth@100ms/<symbol>@trade`` and ``GET /api/v3/depth`` snapshots
        (:class:`~connectors.binance.market.MarketFeed`). Ends when the connector closes."""
        venue_symbol = self._venue_symbol(symbol)
        s = self.settings
        feed = MarketFeed(
            symbol, venue_symbol, base_url=self.stream_url,
            fetch_snapshot=lambda: self._depth(venue_symbol), name=self.name,
            refresh_s=s.book_refresh_s, idle_timeout_s=s.stream_idle_timeout_s,
            backoff=Backoff(s.reconnect_base_s, s.reconnect_cap_s),
        )
        self.market_feeds.add(feed)
        try:
            async for event in feed.events():
                yield event
        finally:
            self.market_feeds.discard(feed)
            await feed.close()

    async def _depth(self, venue_symbol: str) -> bytes:
        """``GET /api/v3/depth`` ("Order book", weight by ``limit``: 5 up to 100, 25 up to
        500, 50 up to 1000, 250 up to 5000)."""
        limit = self.settings.book_depth
        resp = await self._request("GET", "/api/v3/depth",
                                   {"symbol": venue_symbol, "limit": str(limit)},
                                   weight=depth_weight(limit), signed=False)
        if resp.status != 200:
            raise self._refused(resp, "depth")
        return resp.body

    # ---- the user data stream ------------------------------------------------------------------

    async def _on_open(self, ws: Ws) -> None:
        """``userDataStream.subscribe.signature``: the subscription is signed like any SIGNED
        WebSocket API request (parameters sorted by name)."""
        self._ws_seq += 1
        rid = f"sub-{self._ws_seq}"
        params: dict[str, Any] = {"apiKey": self.signer.api_key, "timestamp": self.now_ms(),
                                  "recvWindow": self.settings.recv_window_ms}
        params["signature"] = self.signer.sign(ws_payload(params))
        await ws.send_str(orjson.dumps({"id": rid, "method": "userDataStream.subscribe.signature",
                                        "params": params}).decode())
        deadline = time.monotonic() + max(1.0, self.settings.request_timeout_s)
        while True:
            raw = await asyncio.wait_for(ws.receive_str(), max(0.01, deadline - time.monotonic()))
            answer = S.WS_RESPONSE.decode(raw)
            if answer.id != rid:
                continue
            if answer.status != 200 or answer.error is not None:
                err = answer.error
                detail = f"{err.code} {err.msg}" if err else f"status {answer.status}"
                raise StreamError(f"{self.name}: user data subscription refused: {detail}")
            return

    def _on_message(self, text: str) -> None:
        frame = S.WS_FRAME.decode(text)
        if not S.present(frame.event):
            if frame.status is not None and frame.status != 200:
                log.warning("%s: WebSocket API answered %s: %.200s", self.name, frame.status,
                            text)
            return
        try:
            event = S.USER_EVENT.decode(frame.event)
        except msgspec.ValidationError:
            log.debug("%s: user data event ignored: %.200s", self.name, text)
            return
        if isinstance(event, S.ExecutionReport):
            self._on_report(event)
        elif isinstance(event, S.OutboundAccountPosition):
            self.emit_balances(event.to_updates())
        elif isinstance(event, S.BalanceUpdate):
            # a deposit, withdrawal or transfer: a delta; the outboundAccountPosition that
            # follows it carries the asset's new figures
            log.info("%s: balance update %s %s", self.name, event.a, event.delta)
        elif isinstance(event, S.EventStreamTerminated):
            log.warning("%s: the user data stream was terminated by Binance", self.name)

    def _on_report(self, r: S.ExecutionReport) -> None:
        coid = r.client_order_id
        self._remember(r.i, coid)
        symbol = self._canonical(r.s)
        if r.x == "TRADE":
            self._last_px[symbol] = Decimal(r.L)
            if r.X == "FILLED":
                self.untrack(coid)  # done: nothing more to catch up on after a reconnect
        if r.x == "CANCELED" and r.i in self._replaced_ids:
            return  # the old order of a cancelReplace: reported as OrderAmended
        if r.x == "NEW" and (r.i in self._replacement_ids
                             or (coid in self._replacing and self._replacing[coid] != r.i)):
            return  # the new order of a cancelReplace
        ev = r.to_event()
        if ev is None:
            return
        carried = self._carry.get(coid)
        if carried and isinstance(ev, OrderCanceled | OrderExpired):
            filled = (ev.filled_quantity or ZERO) + carried
            ev = (OrderCanceled(ev.client_order_id, ev.venue_order_id, ev.ts_ns, ev.reason,
                                filled) if isinstance(ev, OrderCanceled) else
                  OrderExpired(ev.client_order_id, ev.venue_order_id, ev.ts_ns, filled))
        self.emit(ev)


def _order_id(venue_order_id: str | None) -> int | None:
    """A Binance orderId given as our string venue order id (None when there is none)."""
    if venue_order_id is None or not venue_order_id.isdigit():
        return None
    return int(venue_order_id)


def _sub_error(raw: msgspec.Raw) -> S.BinanceError:
    if not S.present(raw):
        return S.BinanceError(0, "no detail")
    try:
        return S.ERROR.decode(raw)
    except msgspec.DecodeError:
        return S.BinanceError(0, "no detail")


