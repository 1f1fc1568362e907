"""A Binance Spot emulator on loopback, for tests and benchmarks.

It serves the Spot REST API endpoints the connectors use (``/api/v3/ping``, ``time``,
``exchangeInfo``, ``ticker/price``, ``order`` (POST/GET/DELETE), ``order/cancelReplace``,
``openOrders`` (GET/DELETE), ``myTrades``, ``account``, ``rateLimit/order``, ``depth``), the
public WebSocket Streams (diff depth and trades: :mod:`emulators.binance_market`) and the
WebSocket API user data stream
(``/ws-api/v3``: ``userDataStream.subscribe.signature``, ``session.logon`` +
``userDataStream.subscribe``, ``userDataStream.unsubscribe``, ``ping``, ``time``), with
Binance's JSON shapes, error codes and HTTP statuses:

* SIGNED requests: ``X-MBX-APIKEY`` (-2014/-2015, HTTP 401), ``timestamp``/``recvWindow``
  (-1021, "Timing security"), the signature over query string + body, HMAC or Ed25519 (-1022);
* limits: REQUEST_WEIGHT per minute with each endpoint's documented weight, ORDERS per 10 s and
  per day; every answer carries ``X-MBX-USED-WEIGHT-1M``, order answers
  ``X-MBX-ORDER-COUNT-10S``/``-1D``; over a limit: HTTP 429 (-1003 / -1015) with Retry-After;
  requests sent while a Retry-After runs are counted, and ``ban_after`` of them earn an HTTP 418
  ban ("LIMITS", "IP Limits");
* client order ids: ``^[a-zA-Z0-9-_]{1,36}$``, unique among open orders ("New order": a used id
  is accepted again once its order is closed).

Binance spot has no dead-man switch (``countdownCancelAll`` is USD-M futures only), so none is
emulated. Matching is :class:`~connectors.paper.exchange.PaperExchange` through
:class:`~emulators.core.EmulatorCore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMsgType, web

from connectors.base import (
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)
from connectors.binance import errors as E
from connectors.binance.signing import Verifier, ws_payload
from connectors.common.credentials import Credentials
from connectors.common.venue import MS
from connectors.paper.exchange import PaperOrder
from emulators.binance_market import BinanceMarketData
from emulators.binance_support import (
    COID_RE,
    COID_RULE,
    NOT_FOR_SYMBOL,
    ORDER_TYPES,
    ZERO,
    Endpoint,
    Limits,
    Meta,
    Refused,
    binance_balances,
    binance_markets,
    const,
    dec,
    err,
    missing,
    num,
    refusal,
    unsigned,
    ws_err,
)
from emulators.core import EmulatorCore, EmulatorServer, Published


class BinanceEmulator(EmulatorServer):
    def __init__(
        self,
        credentials: Credentials,
        core: EmulatorCore | None = None,
        *,
        weight_limit: int = 6000,
        orders_10s_limit: int = 100,
        orders_1d_limit: int = 200_000,
        ban_after: int = 3,
        ban_s: int = 120,
        public_key_pem: str | None = None,
        listed_orders: tuple[int, int] | None = None,
    ) -> None:
        """``orders_10s_limit``/``orders_1d_limit``: the account's ORDERS limits, enforced and
        answered by ``GET /api/v3/rateLimit/order``; ``listed_orders``: the (10 s, 1 day)
        limits exchangeInfo lists (default: the same); the docs' own examples differ (100 and
        200,000 in exchangeInfo's, 50 and 160,000 in rateLimit/order's)."""
        super().__init__(core or EmulatorCore(binance_markets(), balances=binance_balances()))
        self.credentials = credentials
        self.verifier = Verifier(credentials, public_key_pem)
        self.limits = Limits(weight_limit, orders_10s_limit, orders_1d_limit)
        self.listed_orders = listed_orders or (orders_10s_limit, orders_1d_limit)
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._inst = {i.venue_symbol: i for i in self.core.exchange.instruments()}
        self.order_types: dict[str, tuple[str, ...]] = dict.fromkeys(self._inst, ORDER_TYPES)
        """Venue symbol -> the ``orderTypes`` it enables (exchangeInfo); another type is
        refused with -2010 and the matching engine's text for it (:data:`NOT_FOR_SYMBOL`)."""
        self._vsym = {i.symbol: i.venue_symbol for i in self._inst.values()}
        self._meta: dict[str, Meta] = {}  # paper client order id -> meta
        self._cid_of: dict[str, str] = {}  # Binance client order id -> current paper cid
        self._by_oid: dict[int, str] = {}  # orderId -> paper cid
        self._seq = 0
        self._sub_seq = 0
        self.market = BinanceMarketData(self, self._inst)
        """The public market data: REST depth, WebSocket Streams, their faults."""
        self.statuses: list[int] = []
        """HTTP status of every REST answer, in order (for tests)."""

    # ---- server ------------------------------------------------------------------------------

    @property
    def urls(self) -> dict[str, str]:
        return {"rest": self.base_url, "ws_api": f"{self.ws_base_url}/ws-api/v3",
                "ws_streams": self.ws_base_url}

    def routes(self, app: web.Application) -> None:
        w = const
        eps: dict[tuple[str, str], Endpoint] = {
            ("GET", "/api/v3/ping"): Endpoint(lambda p: {}, w(1), signed=False),
            ("GET", "/api/v3/time"): Endpoint(self._time, w(1), signed=False),
            ("GET", "/api/v3/exchangeInfo"): Endpoint(self._exchange_info, w(20), signed=False),
            ("GET", "/api/v3/ticker/price"): Endpoint(
                self._ticker, lambda p: 2 if "symbol" in p else 4, signed=False),
            ("POST", "/api/v3/order"): Endpoint(self._place, w(1), order=True, mutating=True),
            ("DELETE", "/api/v3/order"): Endpoint(self._cancel, w(1), mutating=True),
            ("GET", "/api/v3/order"): Endpoint(self._query, w(4)),
            ("POST", "/api/v3/order/cancelReplace"): Endpoint(
                self._cancel_replace, w(1), order=True, mutating=True),
            ("GET", "/api/v3/openOrders"): Endpoint(
                self._open_orders, lambda p: 6 if "symbol" in p else 80),
            ("DELETE", "/api/v3/openOrders"): Endpoint(self._cancel_all, w(1), mutating=True),
            ("GET", "/api/v3/myTrades"): Endpoint(
                self._my_trades, lambda p: 5 if "orderId" in p else 20),
            ("GET", "/api/v3/account"): Endpoint(self._account, w(20)),
            ("GET", "/api/v3/rateLimit/order"): Endpoint(self._order_counts, w(40)),
            ("GET", "/api/v3/depth"): Endpoint(self.market.depth, self.market.depth_weight,
                                               signed=False),
        }
        for (method, path), ep in eps.items():
            app.router.add_route(method, path, self._wrap(method, path, ep))
        app.router.add_get("/ws-api/v3", self._ws)
        app.router.add_get("/ws/{stream}", self.market.serve)
        app.router.add_get("/stream", self.market.serve)

    # ---- the request path --------------------------------------------------------------------

    def _wrap(self, method: str, path: str,
              ep: Endpoint) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.core.requests.append((method, path))
            raw_query = request.rel_url.raw_query_string
            raw_body = (await request.text()) if request.can_read_body else ""
            try:
                params = self._params(raw_query, raw_body)
                self._admit(ep, params)
                if ep.signed:
                    self._authenticate(request, params, raw_query, raw_body)
                result = ep.handler(params)
                if inspect.isawaitable(result):
                    result = await result
            except Refused as r:
                return self._answer(r.http, err(r.code, r.msg, r.data), ep, r.headers)
            if ep.mutating and self.core.take("timeout_next"):
                await self.core.hang()  # executed; the answer never comes
            return self._answer(200, result, ep)

        return handle

    @staticmethod
    def _params(raw_query: str, raw_body: str) -> dict[str, str]:
        params = dict(parse_qsl(raw_body, keep_blank_values=True)) if raw_body else {}
        params.update(parse_qsl(raw_query, keep_blank_values=True))  # the query string wins
        return params

    def _answer(self, status: int, body: Any, ep: Endpoint,
                extra: dict[str, str] | None = None) -> web.Response:
        self.statuses.append(status)
        lim = self.limits
        headers = {"X-MBX-USED-WEIGHT-1M": str(lim.weight_used), "Content-Type": "application/json"}
        if ep.order:
            headers["X-MBX-ORDER-COUNT-10S"] = str(lim.orders_10s)
            headers["X-MBX-ORDER-COUNT-1D"] = str(lim.orders_1d)
        headers.update(extra or {})
        return web.Response(status=status, body=orjson.dumps(body), headers=headers)

    def _admit(self, ep: Endpoint, params: dict[str, str]) -> None:
        """Bans, 429s (fault or limit), 5xx faults; counts the request's weight and order."""
        lim, now = self.limits, time.monotonic()
        if now < lim.banned_until:
            raise self._ban_answer(lim.banned_until - now)
        if now < lim.retry_until:
            lim.violations += 1
            if lim.violations >= self.ban_after:
                lim.banned_until = now + self.ban_s
                raise self._ban_answer(self.ban_s)
            raise Refused(429, E.TOO_MANY_REQUESTS, self._weight_msg(),
                           {"Retry-After": str(max(1, round(lim.retry_until - now)))})
        if self.core.take("error_5xx_next"):
            raise Refused(503, -1000, "Service Unavailable.")
        if self.core.take("rate_limit_next"):
            wait = self.core.faults.retry_after_s
            lim.retry_until = now + wait
            raise Refused(429, E.TOO_MANY_REQUESTS, self._weight_msg(),
                           {"Retry-After": str(wait)})
        wall_ms = self.core.now_ms()
        minute = wall_ms // 60_000
        if minute != lim.weight_minute:
            lim.weight_minute, lim.weight_used = minute, 0
        lim.weight_used += ep.weight(params)
        if lim.weight_used > lim.weight_limit:
            wait = 60 - (wall_ms // 1000) % 60
            lim.retry_until = now + wait
            raise Refused(429, E.TOO_MANY_REQUESTS, self._weight_msg(), {"Retry-After": str(wait)})
        if ep.order:
            slot10, slot1d = wall_ms // 10_000, wall_ms // 86_400_000
            if slot10 != lim.orders_10s_slot:
                lim.orders_10s_slot, lim.orders_10s = slot10, 0
            if slot1d != lim.orders_1d_slot:
                lim.orders_1d_slot, lim.orders_1d = slot1d, 0
            lim.orders_10s += 1
            lim.orders_1d += 1
            if lim.orders_10s > lim.orders_10s_limit:
                wait = 10 - (wall_ms // 1000) % 10
                lim.retry_until = now + wait
                raise Refused(429, E.TOO_MANY_ORDERS, "Too many new orders; current limit is "
                               f"{lim.orders_10s_limit} orders per 10 SECOND.",
                               {"Retry-After": str(wait)})
            if lim.orders_1d > lim.orders_1d_limit:
                raise Refused(429, E.TOO_MANY_ORDERS, "Too many new orders; current limit is "
                               f"{lim.orders_1d_limit} orders per 1 DAY.",
                               {"Retry-After": "3600"})
        lim.violations = 0

    def _weight_msg(self) -> str:
        return (f"Too much request weight used; current limit is {self.limits.weight_limit} "
                "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                "avoid polling the API.")

    def _ban_answer(self, seconds: float) -> Refused:
        until = self.core.now_ms() + int(seconds * 1000)
        return Refused(418, E.TOO_MANY_REQUESTS,
                        f"Way too much request weight used; IP banned until {until}. Please use "
                        "WebSocket Streams for live updates to avoid bans.",
                        {"Retry-After": str(max(1, round(seconds)))})

    def _authenticate(self, request: web.Request, params: dict[str, str], raw_query: str,
                      raw_body: str) -> None:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise Refused(401, E.BAD_API_KEY_FMT, E.MSG_BAD_KEY_FMT)
        if key != self.credentials.api_key:
            raise Refused(401, E.REJECTED_MBX_KEY, E.MSG_BAD_KEY)
        self._check_time(params)
        signature = params.get("signature")
        if not signature:
            raise Refused(400, E.MANDATORY_PARAM,
                           "Mandatory parameter 'signature' was not sent, was empty/null, or "
                           "malformed.")
        payload = unsigned(raw_query) + unsigned(raw_body)
        if not self.verifier.verify(payload, signature):
            raise Refused(400, E.INVALID_SIGNATURE, E.MSG_BAD_SIGNATURE)

    def _check_time(self, params: dict[str, Any]) -> None:
        """"Timing security": ``timestamp < serverTime + 1 s`` and ``serverTime - timestamp
        <= recvWindow`` (default 5000, at most 60000)."""
        try:
            ts = int(params["timestamp"])
            window = float(params.get("recvWindow", 5000))
        except (KeyError, ValueError):
            raise Refused(400, E.MANDATORY_PARAM, "Mandatory parameter 'timestamp' was not "
                           "sent, was empty/null, or malformed.") from None
        if window > 60000:
            raise Refused(400, -1131, "recvWindow must be less than 60000")
        if ts > 10**14:  # microseconds
            ts //= 1000
        server = self.core.now_ms()
        if ts >= server + 1000:
            raise Refused(400, E.INVALID_TIMESTAMP, E.MSG_AHEAD)
        if server - ts > window:
            raise Refused(400, E.INVALID_TIMESTAMP, E.MSG_RECV_WINDOW)

    # ---- public endpoints --------------------------------------------------------------------

    def _time(self, params: dict[str, str]) -> Any:
        return {"serverTime": self.core.now_ms()}

    def _symbols(self, params: dict[str, str]) -> list[str]:
        if "symbol" in params:
            names = [params["symbol"]]
        elif "symbols" in params:
            try:
                names = [str(s) for s in orjson.loads(params["symbols"])]
            except orjson.JSONDecodeError:
                raise Refused(400, E.MANDATORY_PARAM, "Mandatory parameter 'symbols' was not "
                               "sent, was empty/null, or malformed.") from None
        else:
            return list(self._inst)
        for n in names:
            if n not in self._inst:
                raise Refused(400, E.BAD_SYMBOL, E.MSG_BAD_SYMBOL)
        return names

    def _exchange_info(self, params: dict[str, str]) -> Any:
        lim = self.limits
        symbols = []
        for name in self._symbols(params):
            inst = self._inst[name]
            symbols.append({
                "symbol": name, "status": "TRADING",
                "baseAsset": inst.base, "baseAssetPrecision": 8,
                "quoteAsset": inst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": list(self.order_types[name]),
                "icebergAllowed": True, "ocoAllowed": False, "otoAllowed": False,
                "opoAllowed": False, "quoteOrderQtyMarketAllowed": False,
                "allowTrailingStop": False, "cancelReplaceAllowed": True, "amendAllowed": False,
                "pegInstructionsAllowed": False,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": num(inst.tick_size),
                     "maxPrice": "1000000.00000000", "tickSize": num(inst.tick_size)},
                    {"filterType": "LOT_SIZE", "minQty": num(inst.min_qty or inst.lot_size),
                     "maxQty": num(inst.max_qty or Decimal("9000")),
                     "stepSize": num(inst.lot_size)},
                    {"filterType": "NOTIONAL", "minNotional": num(inst.min_notional),
                     "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                     "applyMaxToMarket": False, "avgPriceMins": 5},
                    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                ],
                "permissions": [], "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER",
                                                    "EXPIRE_BOTH"],
            })
        return {
            "timezone": "UTC", "serverTime": self.core.now_ms(),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": lim.weight_limit},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self.listed_orders[0]},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                 "limit": self.listed_orders[1]},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
                 "limit": 61000},
            ],
            "exchangeFilters": [], "symbols": symbols,
        }

    def _order_counts(self, params: dict[str, str]) -> Any:
        """``GET /api/v3/rateLimit/order`` ("Query Unfilled Order Count"): the account's ORDERS
        limits and their use in the current windows."""
        lim, wall_ms = self.limits, self.core.now_ms()
        used_10s = lim.orders_10s if lim.orders_10s_slot == wall_ms // 10_000 else 0
        used_1d = lim.orders_1d if lim.orders_1d_slot == wall_ms // 86_400_000 else 0
        return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": lim.orders_10s_limit, "count": used_10s},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                 "limit": lim.orders_1d_limit, "count": used_1d}]

    def _ticker(self, params: dict[str, str]) -> Any:
        names = self._symbols(params)
        out = [{"symbol": n, "price": num(self.core.exchange.last_price(self._inst[n].symbol))}
               for n in names]
        return out[0] if "symbol" in params else out

    # ---- orders ------------------------------------------------------------------------------

    def _inst_of(self, params: dict[str, str]) -> str:
        name = params.get("symbol")
        if not name:
            raise missing("symbol")
        if name not in self._inst:
            raise Refused(400, E.BAD_SYMBOL, E.MSG_BAD_SYMBOL)
        return name

    def _paper(self, coid: str) -> PaperOrder | None:
        cid = self._cid_of.get(coid)
        return self.core.exchange.order(cid) if cid is not None else None

    def _find(self, params: dict[str, str], id_key: str, coid_key: str, symbol: str
              ) -> PaperOrder | None:
        order: PaperOrder | None = None
        if params.get(id_key):
            try:
                cid = self._by_oid.get(int(params[id_key]))
            except ValueError:
                raise missing(id_key) from None
            order = self.core.exchange.order(cid) if cid else None
            if order is not None and params.get(coid_key) and (
                    self._meta[cid or ""].coid != params[coid_key]):
                order = None
        elif params.get(coid_key):
            order = self._paper(params[coid_key])
        else:
            raise Refused(400, E.MANDATORY_PARAM, f"Param '{id_key}' or '{coid_key}' must be "
                           "sent, but both were empty/null!")
        if order is not None and self._meta[order.client_order_id].venue_symbol != symbol:
            return None
        return order

    def _new_request(self, params: dict[str, str], symbol: str, coid: str, cid: str
                     ) -> tuple[OrderRequest, str]:
        side_s, btype = params.get("side", ""), params.get("type", "")
        if side_s not in ("BUY", "SELL"):
            raise missing("side")
        tif_s = params.get("timeInForce")
        post_only = False
        stop: Decimal | None = None
        price: Decimal | None = None
        if btype == "LIMIT":
            otype = OrderType.LIMIT
        elif btype == "LIMIT_MAKER":
            otype, post_only = OrderType.LIMIT, True
        elif btype == "MARKET":
            otype = OrderType.MARKET
        elif btype == "STOP_LOSS_LIMIT":
            otype = OrderType.STOP_LIMIT
        elif btype == "STOP_LOSS":
            otype = OrderType.STOP
        else:
            raise Refused(400, -1116, "Invalid orderType.")
        if btype not in self.order_types[symbol]:
            raise Refused(400, E.NEW_ORDER_REJECTED,
                          NOT_FOR_SYMBOL.get(btype, "Unsupported order combination"))
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            price = dec(params, "price")
            if btype != "LIMIT_MAKER" and not tif_s:
                raise missing("timeInForce")
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            stop = dec(params, "stopPrice")
        if "quoteOrderQty" in params:
            raise Refused(400, -1013, "Unsupported order combination")
        qty = dec(params, "quantity")
        tifs = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
        if tif_s and tif_s not in tifs:
            raise Refused(400, -1115, "Invalid timeInForce.")
        tif = tifs[tif_s] if tif_s and otype is not OrderType.MARKET else TimeInForce.GTC
        if otype is OrderType.MARKET and tif_s:
            raise Refused(400, -1106, "Parameter 'timeInForce' sent when not required.")
        return OrderRequest(
            client_order_id=cid, symbol=self._inst[symbol].symbol,
            side=Side.BUY if side_s == "BUY" else Side.SELL, type=otype, quantity=qty,
            price=price, stop_price=stop, time_in_force=tif, post_only=post_only,
        ), btype

    def _claim_coid(self, params: dict[str, str], key: str) -> tuple[str, str]:
        """The order's Binance client order id and the paper one behind it."""
        coid = params.get(key) or ""
        if not coid:
            self._seq += 1
            coid = f"emu{self._seq:019d}"
        if not COID_RE.match(coid):
            raise Refused(400, E.ILLEGAL_CHARS, f"Illegal characters found in parameter "
                           f"'{key}'; legal range is '{COID_RULE}'.")
        prev = self._paper(coid)
        if prev is not None and prev.status.is_open:
            raise Refused(400, E.NEW_ORDER_REJECTED, E.MSG_DUPLICATE)
        cid = coid
        if self.core.exchange.order(cid) is not None:  # a closed order had it: an alias
            self._seq += 1
            cid = f"__{self._seq}"
        return coid, cid

    def _do_place(self, params: dict[str, str], symbol: str, coid_key: str, now: int
                  ) -> PaperOrder:
        """Validate and place (inside ``core.run``); raises Refused like Binance."""
        coid, cid = self._claim_coid(params, coid_key)
        req, btype = self._new_request(params, symbol, coid, cid)
        self._seq += 1
        try:
            self.core.exchange.place(req, now)
        except VenueRejected as exc:
            raise refusal(exc) from None
        order = self.core.exchange.order(cid)
        assert order is not None
        oid = int(order.venue_order_id.lstrip("P"))
        self._meta[cid] = Meta(coid, oid, symbol, btype, now // MS)
        self._cid_of[coid] = cid
        self._by_oid[oid] = cid
        return order

    def _place(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params)
        fills_before = len(self.core.exchange.fills())
        order: PaperOrder = self.core.run(
            lambda now: self._do_place(params, symbol, "newClientOrderId", now))
        resp_type = params.get("newOrderRespType") or (
            "FULL" if self._meta[order.client_order_id].btype in ("LIMIT", "MARKET") else "ACK")
        return self._order_response(order, resp_type, fills_before)

    def _order_response(self, order: PaperOrder, resp_type: str, fills_before: int) -> Any:
        meta = self._meta[order.client_order_id]
        ack = {"symbol": meta.venue_symbol, "orderId": meta.order_id, "orderListId": -1,
               "clientOrderId": meta.coid, "transactTime": self.core.now_ms()}
        if resp_type == "ACK":
            return ack
        body = ack | self._order_fields(order)
        body["workingTime"] = meta.created_ms if order.status is not VenueStatus.PENDING else -1
        if resp_type == "FULL":
            body["fills"] = [
                {"price": num(f.price), "qty": num(f.quantity), "commission": num(f.fee),
                 "commissionAsset": f.fee_currency, "tradeId": int(f.trade_id.lstrip("T"))}
                for f in self.core.exchange.fills()[fills_before:]
                if f.client_order_id == order.client_order_id
            ]
        return body

    def _status(self, order: PaperOrder) -> str:
        s = order.status
        if s is VenueStatus.PENDING:
            return "NEW"
        if s is VenueStatus.CANCELED and (
                order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
                or order.type is OrderType.MARKET):
            return "EXPIRED"  # Binance expires what an IOC/FOK/market order could not fill
        return s.name

    def _order_fields(self, order: PaperOrder) -> dict[str, Any]:
        meta = self._meta[order.client_order_id]
        out: dict[str, Any] = {
            "price": num(order.price), "origQty": num(order.quantity),
            "executedQty": num(order.filled), "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": num(order.notional), "status": self._status(order),
            "timeInForce": order.time_in_force.name, "type": meta.btype,
            "side": order.side.name, "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if order.stop_price is not None:
            out["stopPrice"] = num(order.stop_price)
        return out

    def _query_json(self, order: PaperOrder) -> Any:
        meta = self._meta[order.client_order_id]
        return {"symbol": meta.venue_symbol, "orderId": meta.order_id, "orderListId": -1,
                "clientOrderId": meta.coid, **self._order_fields(order),
                "stopPrice": num(order.stop_price), "icebergQty": "0.00000000",
                "time": meta.created_ms, "updateTime": order.updated_ns // MS,
                "isWorking": order.status is not VenueStatus.PENDING,
                "workingTime": meta.created_ms}

    def _cancel_json(self, order: PaperOrder, cancel_coid: str) -> Any:
        meta = self._meta[order.client_order_id]
        return {"symbol": meta.venue_symbol, "origClientOrderId": meta.placed_coid,
                "orderId": meta.order_id, "orderListId": -1, "clientOrderId": cancel_coid,
                "transactTime": self.core.now_ms(), **self._order_fields(order)}

    def _cancel_id(self, params: dict[str, str], key: str) -> str:
        if params.get(key):
            return params[key]
        self._seq += 1
        return f"emuc{self._seq:018d}"

    def _do_cancel(self, order: PaperOrder | None, now: int, cancel_coid: str) -> None:
        if order is None or not order.status.is_open:
            raise Refused(400, E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER)
        self.core.exchange.cancel(order.symbol, order.client_order_id, now)
        self._rename(order, cancel_coid)

    def _rename(self, order: PaperOrder, cancel_coid: str) -> None:
        """A cancel replaces the order's clientOrderId with the cancel's ``newClientOrderId``
        (or a generated one), "freeing it up for new orders" (WebSocket API "Cancel order"):
        the order is then found by its orderId or by the new id, no longer by the old one
        (a query by it answers -2013)."""
        meta = self._meta[order.client_order_id]
        if self._cid_of.get(meta.coid) == order.client_order_id:
            del self._cid_of[meta.coid]
        meta.coid = cancel_coid
        self._cid_of[cancel_coid] = order.client_order_id

    def _cancel(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params)
        order = self._find(params, "orderId", "origClientOrderId", symbol)
        cancel_coid = self._cancel_id(params, "newClientOrderId")
        self.core.run(lambda now: self._do_cancel(order, now, cancel_coid))
        assert order is not None
        return self._cancel_json(order, cancel_coid)

    def _cancel_all(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params)
        canon = self._inst[symbol].symbol
        doomed = [o for o in self.core.exchange.orders()
                  if o.symbol == canon and o.status.is_open]
        if not doomed:
            raise Refused(400, E.CANCEL_REJECTED, E.MSG_UNKNOWN_ORDER)
        names = {o.client_order_id: self._cancel_id({}, "") for o in doomed}

        def change(now: int) -> None:
            self.core.exchange.cancel_all(canon, now)
            for o in doomed:
                self._rename(o, names[o.client_order_id])

        self.core.run(change)
        return [self._cancel_json(o, names[o.client_order_id]) for o in doomed]

    def _cancel_replace(self, params: dict[str, str]) -> Any:
        """STOP_ON_FAILURE: the cancel first, the new order only if it succeeded (-2022 when
        not, -2021 with HTTP 409 when the new order failed); ALLOW_FAILURE tries both."""
        symbol = self._inst_of(params)
        mode = params.get("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise missing("cancelReplaceMode")
        old = self._find(params, "cancelOrderId", "cancelOrigClientOrderId", symbol)
        cancel_coid = self._cancel_id(params, "cancelNewClientOrderId")
        fills_before = len(self.core.exchange.fills())

        def change(now: int) -> tuple[Any, Any, bool, bool]:
            try:
                self._do_cancel(old, now, cancel_coid)
                assert old is not None
                cancel_resp, cancel_ok = self._cancel_json(old, cancel_coid), True
            except Refused as r:
                cancel_resp, cancel_ok = {"code": r.code, "msg": r.msg}, False
            if not cancel_ok and mode == "STOP_ON_FAILURE":
                return cancel_resp, None, False, False
            try:
                new = self._do_place(params, symbol, "newClientOrderId", now)
                resp_type = params.get("newOrderRespType") or "FULL"
                return cancel_resp, self._order_response(new, resp_type, fills_before), \
                    cancel_ok, True
            except Refused as r:
                return cancel_resp, {"code": r.code, "msg": r.msg}, cancel_ok, False

        cancel_resp, new_resp, cancel_ok, new_ok = self.core.run(change)
        data = {"cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
                "newOrderResult": ("SUCCESS" if new_ok else
                                   "NOT_ATTEMPTED" if new_resp is None else "FAILURE"),
                "cancelResponse": cancel_resp, "newOrderResponse": new_resp}
        if cancel_ok and new_ok:
            return data
        if cancel_ok or new_ok:
            raise Refused(409, E.CANCEL_REPLACE_PARTIAL, "Order cancel-replace partially failed.",
                           data=data)
        raise Refused(400, E.CANCEL_REPLACE_FAILED, "Order cancel-replace failed.", data=data)

    def _query(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params)
        order = self._find(params, "orderId", "origClientOrderId", symbol)
        if order is None:
            raise Refused(400, E.NO_SUCH_ORDER, E.MSG_NO_SUCH_ORDER)
        return self._query_json(order)

    def _open_orders(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params) if "symbol" in params else None
        canon = self._inst[symbol].symbol if symbol else None
        return [self._query_json(o) for o in self.core.exchange.orders()
                if o.status.is_open and (canon is None or o.symbol == canon)]

    def _my_trades(self, params: dict[str, str]) -> Any:
        symbol = self._inst_of(params)
        canon = self._inst[symbol].symbol
        start = int(params.get("startTime", 0))
        end = int(params.get("endTime", 2**62))
        from_id = int(params.get("fromId", 0))
        limit = min(int(params.get("limit", 500)), 1000)
        only = int(params["orderId"]) if "orderId" in params else None
        out = []
        for f in self.core.exchange.fills():
            order = self.core.exchange.order(f.client_order_id)
            if order is None or order.symbol != canon:
                continue
            meta = self._meta.get(order.client_order_id)
            oid = meta.order_id if meta else int(f.venue_order_id.lstrip("P"))
            tid, ms = int(f.trade_id.lstrip("T")), f.ts_ns // MS
            if ms < start or ms > end or tid < from_id or (only is not None and oid != only):
                continue
            out.append({"symbol": symbol, "id": tid, "orderId": oid, "orderListId": -1,
                        "price": num(f.price), "qty": num(f.quantity),
                        "quoteQty": num(f.price * f.quantity), "commission": num(f.fee),
                        "commissionAsset": f.fee_currency, "time": ms,
                        "isBuyer": order.side is Side.BUY,
                        "isMaker": f.liquidity is not None and f.liquidity.name == "MAKER",
                        "isBestMatch": True})
        if "startTime" in params or "fromId" in params:
            return out[:limit]
        return out[-limit:]

    def _account(self, params: dict[str, str]) -> Any:
        balances = [{"asset": b.asset, "free": num(b.free), "locked": num(b.locked)}
                    for b in self.core.exchange.balances()]
        if params.get("omitZeroBalances") == "true":
            balances = [b for b in balances
                        if Decimal(b["free"]) or Decimal(b["locked"])]
        fee = num(self.core.exchange.config.maker_fee)
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {"maker": fee, "taker": num(self.core.exchange.config.taker_fee),
                                    "buyer": "0.00000000", "seller": "0.00000000"},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False,
                "updateTime": self.core.now_ms(), "accountType": "SPOT", "balances": balances,
                "permissions": ["SPOT"], "uid": 354937868}

    # ---- WebSocket API -----------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.core.requests.append(("GET", "/ws-api/v3"))
        ws = await self.open_ws(request)
        if ws is None:
            return web.Response(status=503, text="Service Unavailable")
        pumps: dict[int, asyncio.Task[None]] = {}
        logged_on = False
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = orjson.loads(msg.data)
                    rid, method = req.get("id"), req["method"]
                    params = req.get("params") or {}
                except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
                    await ws.send_str(ws_err(None, 400, -1102, "Malformed request."))
                    continue
                try:
                    if method == "ping":
                        result: Any = {}
                    elif method == "time":
                        result = {"serverTime": self.core.now_ms()}
                    elif method in ("userDataStream.subscribe.signature", "session.logon"):
                        self._ws_authenticate(params)
                        if method == "session.logon":
                            logged_on = True
                            result = {"apiKey": self.credentials.api_key,
                                      "authorizedSince": self.core.now_ms(),
                                      "connectedSince": self.core.now_ms(),
                                      "returnRateLimits": False,
                                      "serverTime": self.core.now_ms(),
                                      "userDataStream": bool(pumps)}
                        else:
                            result = {"subscriptionId": self._subscribe(ws, pumps)}
                    elif method == "userDataStream.subscribe":
                        if not logged_on:
                            raise Refused(401, -1002,
                                           "You are not authorized to execute this request.")
                        result = {"subscriptionId": self._subscribe(ws, pumps)}
                    elif method == "userDataStream.unsubscribe":
                        sid = params.get("subscriptionId")
                        for k in [k for k in pumps if sid is None or k == sid]:
                            pumps.pop(k).cancel()
                        result = {}
                    else:
                        raise Refused(400, -1020, "Unsupported operation.")
                except Refused as r:
                    await ws.send_str(ws_err(rid, r.http, r.code, r.msg))
                    continue
                await ws.send_str(orjson.dumps({
                    "id": rid, "status": 200, "result": result,
                    "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                    "intervalNum": 1, "limit": self.limits.weight_limit,
                                    "count": self.limits.weight_used}],
                }).decode())
        finally:
            for t in pumps.values():
                t.cancel()
            self.websockets.discard(ws)
        return ws

    def _ws_authenticate(self, params: dict[str, Any]) -> None:
        if params.get("apiKey") != self.credentials.api_key:
            raise Refused(401, E.REJECTED_MBX_KEY, E.MSG_BAD_KEY)
        self._check_time(params)
        signature = params.get("signature")
        if not isinstance(signature, str) or not self.verifier.verify(ws_payload(params),
                                                                      signature):
            raise Refused(400, E.INVALID_SIGNATURE, E.MSG_BAD_SIGNATURE)

    def _subscribe(self, ws: web.WebSocketResponse, pumps: dict[int, asyncio.Task[None]]) -> int:
        sid = self._sub_seq
        self._sub_seq += 1
        queue = self.core.subscribe()
        pumps[sid] = self.spawn(self._pump(ws, sid, queue))
        return sid

    async def _pump(self, ws: web.WebSocketResponse, sid: int,
                    queue: asyncio.Queue[Published]) -> None:
        cum: dict[str, tuple[Decimal, Decimal]] = {}
        trades: set[str] = set()
        try:
            while not ws.closed:
                item = await queue.get()
                for event in self._user_events(item, cum, trades):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_str(orjson.dumps(
                            {"subscriptionId": sid, "event": event}).decode())
        finally:
            self.core.unsubscribe(queue)

    def _user_events(self, item: Published, cum: dict[str, tuple[Decimal, Decimal]],
                     trades: set[str]) -> list[dict[str, Any]]:
        """One change as Binance pushes it: an ``executionReport`` and, when balances moved,
        an ``outboundAccountPosition`` ("User Data Streams for Binance")."""
        ev = item.event
        if isinstance(ev, OrderRejected | OrderAmended):
            return []
        cid = ev.client_order_id
        order = self.core.exchange.order(cid)
        meta = self._meta.get(cid)
        if order is None or meta is None:
            return []
        now = self.core.now_ms()
        filled, quote = cum.get(cid, (ZERO, ZERO))
        report: dict[str, Any] = {
            "e": "executionReport", "E": now, "s": meta.venue_symbol, "c": meta.placed_coid,
            "S": order.side.name, "o": meta.btype, "f": order.time_in_force.name,
            "q": num(order.quantity), "p": num(order.price), "P": num(order.stop_price),
            "F": "0.00000000", "g": -1, "C": "", "r": "NONE", "i": meta.order_id,
            "l": "0.00000000", "z": num(filled), "L": "0.00000000", "n": "0", "N": None,
            "T": ev.ts_ns // MS, "t": -1, "I": now, "w": False, "m": False, "M": False,
            "O": meta.created_ms, "Z": num(quote), "Y": "0.00000000", "Q": "0.00000000",
            "W": meta.created_ms, "V": "EXPIRE_MAKER",
        }
        if isinstance(ev, OrderAccepted):
            pending = item.state is not None and item.state.status is VenueStatus.PENDING
            report.update(x="NEW", X="NEW", w=not pending)
        elif isinstance(ev, OrderFilled):
            if ev.trade_id not in trades:
                trades.add(ev.trade_id)
                filled, quote = filled + ev.quantity, quote + ev.quantity * ev.price
                cum[cid] = (filled, quote)
            done = filled >= order.quantity
            report.update(x="TRADE", X="FILLED" if done else "PARTIALLY_FILLED",
                          l=num(ev.quantity), L=num(ev.price), z=num(filled), Z=num(quote),
                          Y=num(ev.quantity * ev.price), n=num(ev.fee), N=ev.fee_currency,
                          t=int(ev.trade_id.lstrip("T")),
                          m=ev.liquidity is not None and ev.liquidity.name == "MAKER",
                          w=not done)
        elif isinstance(ev, OrderCanceled | OrderExpired):
            status = self._status(order) if isinstance(ev, OrderCanceled) else "EXPIRED"
            report.update(x=status, X=status, z=num(ev.filled_quantity or order.filled))
            if status == "CANCELED":  # c: the cancel's id (see _rename), C: the order's
                report.update(c=meta.coid, C=meta.placed_coid)
        inst = self._inst[meta.venue_symbol]
        balances = {b.asset: b for b in self.core.exchange.balances()}
        position = {"e": "outboundAccountPosition", "E": now, "u": now,
                    "B": [{"a": a, "f": num(balances[a].free), "l": num(balances[a].locked)}
                          for a in (inst.base, inst.quote) if a in balances]}
        return [report, position]


