"""An OKX API v5 emulator on loopback for tests: the REST endpoints the connector uses (public
time, instruments and tickers; the signed trade and account ones) and the private WebSocket
(login, ``orders`` and ``account`` channels, ``ping``/``pong``), over the paper exchange; and
the public WebSocket's ``books`` and ``trades`` channels (:mod:`emulators.okx_public`).

It checks what OKX checks: the four ``OK-ACCESS-*`` headers, the signature (HTTP 401 with 50113
"Invalid signature."), the timestamp within 30 s of its clock (50102), the per-endpoint limits
(HTTP 429 ``{"code":"50011","msg":"Too Many Requests"}``), the parameters (HTTP 400, 51000
"Parameter {x} error"), and answers per order with ``sCode``/``sMsg``/``subCode`` inside
``{"code":"1"}`` / ``{"code":"2"}``; every message is the documented text of
:data:`connectors.okx.errors.MESSAGES`. A clOrdId is refused (51016) only while an order with it
is pending; afterwards it may be reused, and lookups by clOrdId find the latest order. A
post-only order that would take is accepted and then cancelled with cancelSource 31, as on OKX.
Cancel All After (the dead-man switch) cancels everything ``timeOut`` s after the last call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from connectors.base import (
    AmendRequest,
    Balance,
    Instrument,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
)
from connectors.common.credentials import Credentials
from connectors.common.venue import MS
from connectors.okx import errors
from connectors.okx.signing import parse_iso_timestamp, sign, ws_login_sign
from connectors.paper.market import BTC_USDT, BTC_USDT_PERP, ETH_USDT, MarketConfig
from emulators.core import EmulatorCore, EmulatorServer, Published, plain_decimal
from emulators.okx_public import OkxPublic
from emulators.okx_wire import NO_FILL, Wire, fee_ccy, ord_id, s

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UID = "44705892343619584"
"""The account's uid, as the private channels' pushes name it in ``arg``."""

SWAP_BTC = replace(BTC_USDT_PERP, venue_symbol="BTC-USDT-SWAP", lot_size=Decimal("0.0001"),
                   min_qty=Decimal("0.0001"), min_notional=Decimal(0))
CT_VALS = {"BTC-USDT-SWAP": Decimal("0.01")}


def default_markets() -> tuple[MarketConfig, ...]:
    """OKX's BTC-USDT and ETH-USDT spot, and BTC-USDT-SWAP (ctVal 0.01 BTC): OKX states no
    minimum notional, only minSz."""
    return (
        MarketConfig(replace(BTC_USDT, min_notional=Decimal(0)), Decimal("97000"),
                     level_size=Decimal("0.5"), volatility=Decimal(0)),
        MarketConfig(replace(ETH_USDT, min_notional=Decimal(0)), Decimal("3400"),
                     level_size=Decimal("5"), volatility=Decimal(0)),
        MarketConfig(SWAP_BTC, Decimal("97000"), level_size=Decimal("1"), volatility=Decimal(0)),
    )


def default_balances() -> dict[str, Decimal]:
    return {"BTC": Decimal("100"), "ETH": Decimal("1000"), "USDT": Decimal("10000000")}


LIMITS: dict[str, tuple[int, float]] = {
    "time": (10, 2.0), "instruments": (20, 2.0), "order": (60, 2.0), "cancel": (60, 2.0),
    "amend": (60, 2.0), "batch": (300, 2.0), "cancel_batch": (300, 2.0),
    "order_query": (60, 2.0), "orders_pending": (60, 2.0), "fills": (60, 2.0),
    "fills_history": (10, 2.0),
    "balance": (10, 2.0), "positions": (10, 2.0), "cancel_all_after": (1, 1.0),
    "tickers": (20, 2.0),
}
"""docs-v5 rate limits per endpoint, as documented in :mod:`connectors.okx.connector`
(``PER_INSTRUMENT`` and ``WINDOWS`` cite each section). Counted per instrument (keys
``<name>:<instId>``): order, cancel, amend, batch and cancel_batch (one per order; a batch of one
counts as a single order) and order_query; instruments per instType."""

_CLORDID = re.compile(r"^[a-zA-Z0-9]{1,32}$")
_EXPIRY_MS = 30_000


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload, separators=(",", ":")),
                        content_type="application/json", headers=headers)


def _err(code: str, msg: str, status: int) -> web.Response:
    return _json({"code": code, "msg": msg, "data": []}, status)


def _auth_err(code: str) -> web.Response:
    """docs-v5 "Error Code": the authentication codes 50103-50113 come with HTTP 401."""
    return _err(code, errors.MESSAGES[code], 401)


def _fail_msg(code: str) -> str:
    """The envelope ``msg`` of ``code`` "1" (all failed) / "2" (some failed)."""
    return errors.MESSAGES.get(code, "")


def _insufficient(ccy: str) -> str:
    return errors.MESSAGES[errors.INSUFFICIENT].replace("{param0}", ccy)


def _answer(acks: list[dict[str, str]]) -> dict[str, Any]:
    """The envelope of per-order acks: code "0" (all succeeded), "1" (all failed) or "2" (some)."""
    good = sum(1 for a in acks if a["sCode"] == "0")
    code = "0" if good == len(acks) else ("1" if not good else "2")
    return {"code": code, "msg": _fail_msg(code), "data": acks}


def _ack(cid: str, oid: str, code: str = "0", msg: str = "", sub: str = "", **extra: str
         ) -> dict[str, str]:
    return {"clOrdId": cid, "ordId": oid, "tag": "", "ts": str(time.time_ns() // MS),
            "sCode": code, "sMsg": msg, "subCode": sub, **extra}


def _reduce_only(value: Any) -> bool:
    """``reduceOnly`` of "Place order": documented as a Boolean, which is what ccxt sends. The
    string forms "true"/"false" are accepted too: whether OKX takes them cannot be told from
    its docs without an account, and refusing what the venue might accept would hide nothing
    the connector does (it sends the Boolean). Anything else is 51000."""
    if value is True or value == "true":  # not ``in (True, ...)``: 1 == True
        return True
    if value is False or value == "false":
        return False
    raise _param("reduceOnly")


class _Bad(Exception):  # noqa: N818 - a parameter error answered as 51000
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _param(name: str) -> _Bad:
    return _Bad(errors.PARAM_ERROR, errors.MESSAGES[errors.PARAM_ERROR].replace("{param0}", name))


def _bad(code: str) -> _Bad:
    return _Bad(code, errors.MESSAGES[code])


class OkxEmulator(EmulatorServer):
    def __init__(
        self,
        credentials: Credentials,
        core: EmulatorCore | None = None,
        *,
        ct_vals: dict[str, Decimal] | None = None,
        limits: dict[str, tuple[int, float]] | None = None,
        dead_man_min_s: int = 10,
        ws_idle_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(core or EmulatorCore(default_markets(), balances=default_balances()))
        self.credentials = credentials
        self.limits = {**LIMITS, **(limits or {})}
        self.dead_man_min_s = dead_man_min_s
        self.ws_idle_timeout_s = ws_idle_timeout_s
        ex = self.core.exchange
        self.instruments: dict[str, Instrument] = {i.venue_symbol: i for i in ex.instruments()}
        self.wire = Wire(ex, self.instruments, CT_VALS if ct_vals is None else ct_vals)
        self._windows: dict[str, tuple[float, int]] = {}
        self._auto = 0
        self._ghosts: dict[str, dict[str, Any]] = {}
        """Post-only orders OKX accepted and at once cancelled (cancelSource 31)."""
        self._latest: dict[str, str] = {}
        """clOrdId -> our client order id of the latest order with it (when reused)."""
        self._dead_man_deadline: float | None = None
        self._dead_man_task: asyncio.Task[Any] | None = None
        self.dead_man_fired = 0
        self.rate_limited = 0
        self.logins = 0
        self._ws_state: dict[web.WebSocketResponse, set[str]] = {}
        """Each private connection's subscribed channels (``orders``, ``account``)."""
        self.public = OkxPublic(self.core, self.instruments, self.wire.contracts)
        """The public WebSocket's books and trades (its faults: ``public.faults``)."""

    @property
    def urls(self) -> dict[str, str]:
        return {"rest": self.base_url, "ws_private": self.ws_base_url + "/ws/v5/private",
                "ws_public": self.ws_base_url + "/ws/v5/public"}

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v5/public/time", self._wrap(self._time, "time", signed=False))
        r.add_get("/api/v5/public/instruments",
                  self._wrap(self._instruments, "instruments", signed=False))
        r.add_get("/api/v5/market/tickers", self._wrap(self._tickers, "tickers", signed=False))
        r.add_post("/api/v5/trade/order", self._wrap(self._place, "order", entry=True))
        r.add_post("/api/v5/trade/batch-orders", self._wrap(self._batch, "batch", entry=True))
        r.add_post("/api/v5/trade/cancel-order", self._wrap(self._cancel, "cancel", entry=True))
        r.add_post("/api/v5/trade/cancel-batch-orders",
                   self._wrap(self._cancel_batch, "cancel_batch", entry=True))
        r.add_post("/api/v5/trade/amend-order", self._wrap(self._amend, "amend", entry=True))
        r.add_post("/api/v5/trade/cancel-all-after",
                   self._wrap(self._cancel_all_after, "cancel_all_after", entry=True))
        r.add_get("/api/v5/trade/order", self._wrap(self._query, "order_query"))
        r.add_get("/api/v5/trade/orders-pending", self._wrap(self._pending, "orders_pending"))
        r.add_get("/api/v5/trade/fills", self._wrap(self._fills, "fills"))
        r.add_get("/api/v5/trade/fills-history", self._wrap(self._fills_history, "fills_history"))
        r.add_get("/api/v5/account/balance", self._wrap(self._balance, "balance"))
        r.add_get("/api/v5/account/positions", self._wrap(self._positions, "positions"))
        r.add_get("/ws/v5/private", self._ws)
        r.add_get("/ws/v5/public", self._ws_public)

    # ---- request pipeline ---------------------------------------------------------------------

    def _over_limit(self, key: str, count: int = 1) -> bool:
        name = key.split(":", 1)[0]
        limit, interval = self.limits[name]
        now = time.monotonic()
        start = now - now % interval
        w_start, used = self._windows.get(key, (start, 0))
        if w_start != start:
            used = 0
        if used + count > limit:
            self._windows[key] = (start, used)
            return True
        self._windows[key] = (start, used + count)
        return False

    def _over(self, limit: str, request: web.Request, payload: Any) -> bool:
        """Count the request on its windows; True when one is full (see :data:`LIMITS`)."""
        if limit in ("batch", "cancel_batch") and isinstance(payload, list):
            name = limit if len(payload) > 1 else ("order" if limit == "batch" else "cancel")
            counts: dict[str, int] = {}
            for item in payload:
                iid = item.get("instId", "") if isinstance(item, dict) else ""
                counts[f"{name}:{iid}"] = counts.get(f"{name}:{iid}", 0) + 1
            return any(self._over_limit(key, n) for key, n in counts.items())
        if limit in ("order", "cancel", "amend") and isinstance(payload, dict):
            return self._over_limit(f"{limit}:{payload.get('instId', '')}")
        if limit == "order_query":
            return self._over_limit(f"{limit}:{request.query.get('instId', '')}")
        if limit == "instruments":
            return self._over_limit(f"{limit}:{request.query.get('instType', '')}")
        return self._over_limit(limit)

    def _auth(self, request: web.Request, body: str) -> web.Response | None:
        """docs-v5 "REST Authentication": 401 with the venue's code when anything is off."""
        h = request.headers
        key, sig = h.get("OK-ACCESS-KEY"), h.get("OK-ACCESS-SIGN")
        ts, phrase = h.get("OK-ACCESS-TIMESTAMP"), h.get("OK-ACCESS-PASSPHRASE")
        if not key:
            return _auth_err("50103")
        if not phrase:
            return _auth_err("50104")
        if not sig:
            return _auth_err("50106")
        if not ts:
            return _auth_err("50107")
        if key != self.credentials.api_key:
            return _auth_err(errors.INVALID_KEY)
        if not hmac.compare_digest(phrase, self.credentials.passphrase or ""):
            return _auth_err(errors.PASSPHRASE_INCORRECT)
        try:
            ts_ms = parse_iso_timestamp(ts)
        except ValueError:
            return _auth_err("50112")
        if abs(ts_ms - self.core.now_ms()) > _EXPIRY_MS:
            return _auth_err(errors.TIMESTAMP_EXPIRED)
        want = sign(self.credentials.secret, ts, request.method, request.raw_path, body)
        if not hmac.compare_digest(want, sig):
            return _auth_err(errors.INVALID_SIGN)
        return None

    def _wrap(self, fn: Callable[[web.Request, Any], Any], limit: str, *, signed: bool = True,
              entry: bool = False) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            core = self.core
            core.requests.append((request.method, request.path))
            body = await request.text()
            if core.take("error_5xx_next"):
                return _err("50001", errors.MESSAGES["50001"], 503)
            if core.take("rate_limit_next"):
                self.rate_limited += 1
                return _json({"code": errors.RATE_LIMIT, "msg": "Too Many Requests"}, 429,
                             {"Retry-After": str(core.faults.retry_after_s)})
            if signed:
                refused = self._auth(request, body)
                if refused is not None:
                    return refused
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                return _err("50002", errors.MESSAGES["50002"], 400)
            if self._over(limit, request, payload):
                self.rate_limited += 1
                return _json({"code": errors.RATE_LIMIT, "msg": "Too Many Requests"}, 429)
            try:
                result = fn(request, payload)
            except _Bad as bad:
                return _err(bad.code, bad.msg, 400 if bad.code == errors.PARAM_ERROR else 200)
            if entry and core.take("timeout_next"):
                await core.hang()  # executed; the answer never comes
            return result if isinstance(result, web.StreamResponse) else _json(result)

        return handler

    # ---- public -------------------------------------------------------------------------------

    def _time(self, request: web.Request, _: Any) -> Any:
        return {"code": "0", "msg": "", "data": [{"ts": str(self.core.now_ms())}]}

    def _instruments(self, request: web.Request, _: Any) -> Any:
        t = request.query.get("instType")
        if t not in ("SPOT", "SWAP", "FUTURES", "OPTION", "MARGIN"):
            raise _param("instType")
        data = [self.wire.instrument(i) for i in self.instruments.values()
                if self.wire.inst_type(i) == t]
        return {"code": "0", "msg": "", "data": data}

    def _tickers(self, request: web.Request, _: Any) -> Any:
        """docs-v5 "Order Book Trading / Market Data / Get tickers": ``last`` is the exchange's
        last price, bid/ask the best levels of its book."""
        t = request.query.get("instType")
        if t not in ("SPOT", "SWAP", "FUTURES", "OPTION"):
            raise _param("instType")
        now = self.core.now_ms()
        data = [self.wire.ticker(i, now) for i in self.instruments.values()
                if self.wire.inst_type(i) == t]
        return {"code": "0", "msg": "", "data": data}

    # ---- orders -------------------------------------------------------------------------------

    def _inst(self, item: dict[str, Any]) -> Instrument:
        inst = self.instruments.get(str(item.get("instId", "")))
        if inst is None:
            raise _bad(errors.INSTRUMENT_UNKNOWN)
        return inst

    def _size(self, inst: Instrument, value: Any, name: str) -> Decimal:
        """A positive ``sz`` in base units (a SWAP's contracts times ctVal)."""
        sz = self._price(value, name)
        ct = self.wire.ct_vals.get(inst.venue_symbol)
        return sz * ct if ct is not None else sz

    def _price(self, value: Any, name: str) -> Decimal:
        """A positive number written as a plain decimal (OKX documents ``sz``, ``px``, ``newSz``
        and ``newPx`` as decimal strings; exponent notation such as ``1E-7`` is refused), else
        51000 "Parameter ``name`` error"."""
        px = plain_decimal(value)
        if px is None or px <= 0:
            raise _param(name)
        return px

    @staticmethod
    def _reason_code(exc: VenueRejected, op: str) -> tuple[str, str]:
        """(sCode, subCode) of a refusal of the paper exchange. Order-book cancels and amends of
        a filled, canceled or unknown order all answer 51400 / 51503 (51401/51402/51509/51510
        are documented for Nitro Spread only)."""
        r = exc.reason
        if r is RejectReason.INSUFFICIENT_BALANCE:
            return (errors.AMEND_INSUFFICIENT, "1030") if op == "amend" else \
                (errors.INSUFFICIENT, "1000")
        if r is RejectReason.UNKNOWN_SYMBOL:
            return errors.INSTRUMENT_UNKNOWN, ""
        if r is RejectReason.DUPLICATE_ORDER:
            return errors.DUPLICATE_CLORDID, ""
        if r is RejectReason.LOT_FILTER:
            return (errors.LOT_MULTIPLE if "multiple" in exc.text else errors.BELOW_MIN_SIZE), ""
        if r is RejectReason.MIN_NOTIONAL:
            return errors.BELOW_MIN_SIZE, ""
        if r is RejectReason.POST_ONLY_WOULD_TAKE:
            return errors.AMEND_POST_ONLY, ""
        if r in (RejectReason.UNKNOWN_ORDER, RejectReason.TOO_LATE):
            return (errors.CANCEL_FAILED if op == "cancel" else errors.AMEND_FAILED), ""
        return errors.PARAM_ERROR, ""

    def _place_one(self, item: Any) -> dict[str, str]:
        """One order of place / batch-orders (docs-v5 "Trade / Place order")."""
        if not isinstance(item, dict):
            raise _param("body")
        cid = str(item.get("clOrdId", ""))
        try:
            inst = self._inst(item)
            swap = inst.venue_symbol in self.wire.ct_vals
            if item.get("tdMode") not in (("cross", "isolated") if swap else ("cash",)):
                raise _param("tdMode")
            side = item.get("side")
            if side not in ("buy", "sell"):
                raise _param("side")
            if cid and not _CLORDID.match(cid):
                raise _param("clOrdId")
            ot = item.get("ordType")
            if ot not in ("market", "limit", "post_only", "ioc", "fok"):
                raise _param("ordType")
            reduce_only = _reduce_only(item.get("reduceOnly", False))
            qty_value = item.get("sz")
            if qty_value is None:
                raise _param("sz")
            price = None if ot == "market" else self._price(item.get("px"), "px")
            book = self.core.exchange.book(inst.symbol)
            if ot == "market" and not swap and side == "buy" and \
                    item.get("tgtCcy", "quote_ccy") == "quote_ccy":
                ask = book.best_ask()
                if ask is None:
                    raise _param("sz")
                qty = (self._size(inst, qty_value, "sz") / ask / inst.lot_size).to_integral_value(
                    rounding=ROUND_DOWN) * inst.lot_size
            else:
                qty = self._size(inst, qty_value, "sz")
        except _Bad as bad:
            return _ack(cid, "", bad.code, bad.msg)
        shown = cid
        if not cid:
            self._auto += 1
            cid = f"okxauto{self._auto}"
            self.wire.auto_cids.add(cid)
        elif self._pending_with(cid):
            return _ack(shown, "", errors.DUPLICATE_CLORDID,
                        errors.MESSAGES[errors.DUPLICATE_CLORDID])
        elif self._internal(cid) in self._ghosts or self.core.exchange.order(cid) is not None:
            self._auto += 1  # reused after its order ended: a new order under a new name of ours
            cid = f"okxreuse{self._auto}"
            self.wire.shown[cid] = shown
        req = OrderRequest(
            client_order_id=cid, symbol=inst.symbol, side=Side(side),
            type=OrderType.MARKET if ot == "market" else OrderType.LIMIT, quantity=qty,
            price=price,
            time_in_force={"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}.get(ot, TimeInForce.GTC),
            post_only=ot == "post_only", reduce_only=reduce_only,
        )
        try:
            acc = self.core.run(lambda now: self.core.exchange.place(req, now))
        except VenueRejected as exc:
            if exc.reason is RejectReason.POST_ONLY_WOULD_TAKE:
                self._named(shown, cid)
                return self._ghost(inst, req, shown)
            code, sub = self._reason_code(exc, "place")
            if code == errors.INSUFFICIENT:
                ccy = (inst.settle or inst.quote) if swap else \
                    (inst.quote if side == "buy" else inst.base)
                return _ack(shown, "", code, _insufficient(ccy), sub)
            if code == errors.PARAM_ERROR:
                name = "px" if exc.reason is RejectReason.PRICE_FILTER else "sz"
                return _ack(shown, "", code, _param(name).msg)
            return _ack(shown, "", code, errors.MESSAGES.get(code, exc.text), sub)
        self._named(shown, cid)
        return _ack(shown, ord_id(acc.venue_order_id), "0", "Order placed")

    def _internal(self, cl_ord_id: str) -> str:
        """Our client order id of the latest order placed with ``cl_ord_id``."""
        return self._latest.get(cl_ord_id, cl_ord_id)

    def _named(self, shown: str, cid: str) -> None:
        if shown:
            self._latest[shown] = cid

    def _pending_with(self, cl_ord_id: str) -> bool:
        """docs-v5 "Place order": a clOrdId must be unique among the *pending* orders."""
        o = self.core.exchange.order(self._internal(cl_ord_id))
        return o is not None and o.status.is_open

    def _ghost(self, inst: Instrument, req: OrderRequest, cid: str) -> dict[str, str]:
        """OKX accepts a post-only order that would take, then cancels it (cancelSource 31)."""
        self._auto += 1
        oid = str(3_000_000_000_000_000_000 + self._auto)
        now = str(self.core.now_ms())
        contracts = self.wire.contracts(inst, req.quantity)
        base = {
            "instType": self.wire.inst_type(inst), "instId": inst.venue_symbol, "ordId": oid,
            "clOrdId": cid, "tag": "", "px": s(req.price), "sz": s(contracts),
            "ordType": "post_only", "side": req.side.value, "accFillSz": "0", "avgPx": "",
            "fee": "0", "feeCcy": fee_ccy(inst, req.side), "cTime": now, "uTime": now,
            **NO_FILL,
        }
        live = {**base, "state": "live", "cancelSource": ""}
        dead = {**base, "state": "canceled", "cancelSource": "31"}
        self._ghosts[req.client_order_id] = dead
        if not self.core.faults.streams_down:
            for ws, channels in list(self._ws_state.items()):
                if "orders" in channels:
                    self.spawn(self._send(ws, [live]))
                    self.spawn(self._send(ws, [dead]))
        return _ack(cid, oid, "0", "Order placed")

    def _place(self, request: web.Request, body: Any) -> Any:
        return _answer([self._place_one(body)])

    def _batch(self, request: web.Request, body: Any) -> Any:
        if not isinstance(body, list) or not 0 < len(body) <= 20:
            raise _Bad(errors.BATCH_TOO_MANY,
                       errors.MESSAGES[errors.BATCH_TOO_MANY].replace("{param0}", "20"))
        acks, seen = [], set()
        for item in body:  # clOrdIds unique among pending orders *and* this request
            cid = str(item.get("clOrdId", "")) if isinstance(item, dict) else ""
            if cid and cid in seen:
                acks.append(_ack(cid, "", errors.DUPLICATE_CLORDID,
                                 errors.MESSAGES[errors.DUPLICATE_CLORDID]))
                continue
            seen.add(cid)
            acks.append(self._place_one(item))
        return _answer(acks)

    def _find(self, item: dict[str, Any]) -> tuple[Instrument, str]:
        """(instrument, our client order id) of an order named by clOrdId or ordId ("Either
        ordId or clOrdId is required, if both are passed, ordId will be used")."""
        inst = self._inst(item)
        cid = str(item.get("clOrdId") or "")
        oid = str(item.get("ordId") or "")
        if not cid and not oid:
            raise _bad(errors.ORDER_ID_REQUIRED)
        if oid:
            for o in self.core.exchange.orders():
                if ord_id(o.venue_order_id) == oid:
                    return inst, o.client_order_id
            for key, ghost in self._ghosts.items():
                if ghost["ordId"] == oid:
                    return inst, key
            return inst, ""
        return inst, self._internal(cid)

    def _cancel_one(self, item: Any) -> dict[str, str]:
        if not isinstance(item, dict):
            raise _param("body")
        try:
            inst, cid = self._find(item)
        except _Bad as bad:
            return _ack(str(item.get("clOrdId", "")), str(item.get("ordId", "")), bad.code,
                        bad.msg)
        o = self.core.exchange.order(cid)
        shown = self.wire.cid(o) if o is not None else str(item.get("clOrdId") or "")
        ghost = self._ghosts.get(cid)
        if ghost is not None:
            return _ack(ghost["clOrdId"], ghost["ordId"], errors.CANCEL_FAILED,
                        errors.MESSAGES[errors.CANCEL_FAILED])
        try:
            self.core.run(lambda now: self.core.exchange.cancel(inst.symbol, cid, now))
        except VenueRejected as exc:
            code, sub = self._reason_code(exc, "cancel")
            return _ack(shown, str(item.get("ordId", "")), code,
                        errors.MESSAGES.get(code, exc.text), sub)
        o = self.core.exchange.order(cid)
        return _ack(shown, ord_id(o.venue_order_id) if o else "", "0", "")

    def _cancel(self, request: web.Request, body: Any) -> Any:
        return _answer([self._cancel_one(body)])

    def _cancel_batch(self, request: web.Request, body: Any) -> Any:
        if not isinstance(body, list) or not 0 < len(body) <= 20:
            # docs-v5 "Cancel multiple orders" allows 20 per request; no code is documented
            # for more, so this answers the generic parameter error.
            raise _param("body")
        return _answer([self._cancel_one(item) for item in body])

    def _amend(self, request: web.Request, body: Any) -> Any:
        """docs-v5 "Trade / Amend order": newSz (total) and/or newPx."""
        if not isinstance(body, dict):
            raise _param("body")
        req_id = str(body.get("reqId", ""))

        def fail(code: str, msg: str, sub: str = "") -> Any:
            return {"code": "1", "msg": _fail_msg("1"),
                    "data": [_ack(str(body.get("clOrdId", "")), "", code, msg, sub,
                                  reqId=req_id)]}

        try:
            inst, cid = self._find(body)
            if body.get("newSz") is None and body.get("newPx") is None:
                raise _bad(errors.AMEND_NOTHING)
            qty = self._size(inst, body["newSz"], "newSz") if body.get("newSz") else None
            px = self._price(body["newPx"], "newPx") if body.get("newPx") else None
        except _Bad as bad:
            return fail(bad.code, bad.msg)
        o = self.core.exchange.order(cid)
        if o is not None:
            self.wire.req_ids[o.venue_order_id] = req_id
        try:
            self.core.run(lambda now: self.core.exchange.amend(
                AmendRequest(cid, inst.symbol, quantity=qty, price=px), now))
        except VenueRejected as exc:
            code, sub = self._reason_code(exc, "amend")
            if code == errors.PARAM_ERROR:
                name = "newPx" if exc.reason is RejectReason.PRICE_FILTER else "newSz"
                return fail(code, _param(name).msg)
            return fail(code, errors.MESSAGES.get(code, exc.text), sub)
        assert o is not None
        return {"code": "0", "msg": "", "data": [
            _ack(self.wire.cid(o), ord_id(o.venue_order_id), "0", "", reqId=req_id)]}

    def _cancel_all_after(self, request: web.Request, body: Any) -> Any:
        """docs-v5 "Trade / Cancel All After": timeOut 0 (off) or [10, 120] seconds."""
        try:
            timeout = int(str((body or {}).get("timeOut")))
        except ValueError:
            raise _param("timeOut") from None
        if timeout != 0 and not self.dead_man_min_s <= timeout <= 120:
            raise _param("timeOut")
        now_ms = self.core.now_ms()
        if timeout == 0:
            self._dead_man_deadline = None
            trigger = "0"
        else:
            self._dead_man_deadline = time.monotonic() + timeout
            trigger = str(now_ms + timeout * 1000)
            if self._dead_man_task is None or self._dead_man_task.done():
                self._dead_man_task = self.spawn(self._dead_man())
        return {"code": "0", "msg": "", "data": [{"triggerTime": trigger, "tag": "",
                                                   "ts": str(now_ms)}]}

    async def _dead_man(self) -> None:
        while self._dead_man_deadline is not None:
            left = self._dead_man_deadline - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)
                continue
            self._dead_man_deadline = None
            self.dead_man_fired += 1
            self.core.run(lambda now: self.core.exchange.cancel_all(None, now))

    # ---- queries ------------------------------------------------------------------------------

    def _query(self, request: web.Request, _: Any) -> Any:
        q = request.query
        try:
            inst, cid = self._find(dict(q))
        except _Bad as bad:
            return {"code": bad.code, "msg": bad.msg, "data": []}
        ghost = self._ghosts.get(cid)
        if ghost is not None and ghost["instId"] == inst.venue_symbol:
            return {"code": "0", "msg": "", "data": [ghost]}
        o = self.core.exchange.order(cid)
        if o is None or o.symbol != inst.symbol:
            return {"code": errors.ORDER_NOT_FOUND,
                    "msg": errors.MESSAGES[errors.ORDER_NOT_FOUND], "data": []}
        return {"code": "0", "msg": "", "data": [self.wire.order(o)]}

    def _pending(self, request: web.Request, _: Any) -> Any:
        q = request.query
        inst_id, inst_type = q.get("instId"), q.get("instType")
        after = int(q["after"]) if q.get("after") else None
        limit = min(int(q.get("limit", "100")), 100)
        rows = []
        for o in sorted((o for o in self.core.exchange.orders() if o.status.is_open),
                        key=lambda o: -o.seq):
            item = self.wire.order(o)
            if inst_id and item["instId"] != inst_id:
                continue
            if inst_type and item["instType"] != inst_type:
                continue
            if after is not None and int(item["ordId"]) >= after:
                continue
            rows.append(item)
        return {"code": "0", "msg": "", "data": rows[:limit]}

    def _fills(self, request: web.Request, _: Any) -> Any:
        q = request.query
        begin = int(q.get("begin", "0"))
        end = int(q["end"]) if q.get("end") else None
        after = int(q["after"]) if q.get("after") else None
        limit = min(int(q.get("limit", "100")), 100)
        rows = []
        for f in reversed(self.core.exchange.fills()):
            item = self.wire.fill(f)
            ts = int(item["ts"])
            if ts < begin or (end is not None and ts > end):
                continue
            if after is not None and int(item["billId"]) >= after:
                continue
            if any(q.get(k) and q[k] != item[k] for k in ("instType", "instId", "ordId")):
                continue
            rows.append(item)
        return {"code": "0", "msg": "", "data": rows[:limit]}

    def _fills_history(self, request: web.Request, body: Any) -> Any:
        """"Get transaction details (last 3 months)": like /trade/fills, instType required."""
        if request.query.get("instType") not in ("SPOT", "SWAP", "MARGIN", "FUTURES", "OPTION"):
            raise _param("instType")
        return self._fills(request, body)

    def _balance(self, request: web.Request, _: Any) -> Any:
        return {"code": "0", "msg": "", "data": [self._account(self.core.exchange.balances())]}

    def _account(self, balances: list[Balance]) -> dict[str, Any]:
        """One account as "Get balance" and the ``account`` channel show it: per currency
        ``availBal`` (free), ``frozenBal`` (held by orders), ``cashBal`` and ``eq`` (their
        sum: no borrowing, no unrealized PnL in spot), ``uTime``."""
        now = str(self.core.now_ms())
        details = [{"ccy": b.asset, "availBal": s(b.free), "frozenBal": s(b.locked),
                    "cashBal": s(b.total), "eq": s(b.total), "uTime": now} for b in balances]
        return {"totalEq": "", "uTime": now, "details": details}

    def _account_push(self, balances: list[Balance], snapshot: bool) -> dict[str, Any]:
        """docs-v5 "Trading Account / WebSocket / Account channel": a ``snapshot`` (the
        currencies not zero, on subscription) or an ``event_update`` (the currencies a change
        touched)."""
        msg: dict[str, Any] = {"arg": {"channel": "account", "uid": _UID},
                               "eventType": "snapshot" if snapshot else "event_update"}
        if snapshot:
            msg |= {"curPage": 1, "lastPage": True}
        return msg | {"data": [self._account(balances)]}

    def _touched(self, pub: Published) -> list[Balance]:
        """The balances of the currencies of the instrument of the order that changed."""
        order = self.core.exchange.order(pub.event.client_order_id)
        if order is None:
            return []
        inst = self.wire.by_symbol[order.symbol]
        assets = {inst.base, inst.quote, inst.settle}
        return [b for b in self.core.exchange.balances() if b.asset in assets]

    def _positions(self, request: web.Request, _: Any) -> Any:
        rows = []
        for p in self.core.exchange.positions():
            inst = self.wire.by_symbol[p.symbol]
            rows.append({"instType": "SWAP", "instId": inst.venue_symbol, "mgnMode": "cross",
                         "posSide": "net", "pos": s(self.wire.contracts(inst, p.quantity)),
                         "avgPx": s(p.entry_price), "ccy": inst.settle or inst.quote,
                         "uTime": str(self.core.now_ms())})
        return {"code": "0", "msg": "", "data": rows}

    # ---- the private WebSocket ----------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, items: list[dict[str, Any]]) -> None:
        if ws.closed or not items:
            return
        msg = {"arg": {"channel": "orders", "instType": "ANY", "uid": _UID}, "data": items}
        await self._send_json(ws, msg)

    async def _send_json(self, ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(msg, separators=(",", ":")))

    async def _pump(self, ws: web.WebSocketResponse, q: asyncio.Queue[Published]) -> None:
        while not ws.closed:
            pub = await q.get()
            channels = self._ws_state.get(ws, set())
            if "orders" in channels:
                item = self.wire.push(pub.event)
                if item is not None:
                    await self._send(ws, [item])
            if "account" in channels and not ws.closed:
                touched = self._touched(pub)
                if touched:
                    await self._send_json(ws, self._account_push(touched, snapshot=False))

    def _login(self, args: Any) -> tuple[str, str] | None:
        """None when the login is good, else (code, msg) (docs-v5 "WebSocket / Login")."""
        def no(code: str) -> tuple[str, str]:
            return code, errors.MESSAGES[code]

        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            return no(errors.WS_INVALID_REQUEST)
        a = args[0]
        if a.get("apiKey") != self.credentials.api_key:
            return no(errors.WS_INVALID_KEY)
        if a.get("passphrase") != (self.credentials.passphrase or ""):
            return no(errors.WS_WRONG_PASSPHRASE)
        ts = str(a.get("timestamp", ""))
        if not ts.isdigit():
            return no(errors.WS_INVALID_TIMESTAMP)
        if abs(int(ts) * 1000 - self.core.now_ms()) > _EXPIRY_MS:
            return no(errors.WS_TIMESTAMP_EXPIRED)
        if not hmac.compare_digest(ws_login_sign(self.credentials.secret, ts),
                                   str(a.get("sign", ""))):
            return no(errors.WS_INVALID_SIGN)
        return None

    async def _ws_public(self, request: web.Request) -> web.StreamResponse:
        """The public WebSocket (no login): see :mod:`emulators.okx_public`."""
        self.core.requests.append(("GET", request.path))
        ws = await self.open_ws(request)
        if ws is None:
            return web.Response(status=503, text="streams are down")
        try:
            await self.public.serve(ws, self.ws_idle_timeout_s)
        finally:
            self.websockets.discard(ws)
            await ws.close()
        return ws

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.core.requests.append(("GET", request.path))
        ws = await self.open_ws(request)
        if ws is None:
            return web.Response(status=503, text="streams are down")
        conn_id = secrets.token_hex(4)
        logged_in = False
        q: asyncio.Queue[Published] | None = None
        pump: asyncio.Task[Any] | None = None
        self._ws_state[ws] = set()

        close_code: int = WSCloseCode.OK
        close_reason = b""

        async def reply(obj: dict[str, Any]) -> None:
            await ws.send_str(json.dumps({**obj, "connId": conn_id}, separators=(",", ":")))

        def invalid(req: Any = None) -> dict[str, Any]:
            """docs-v5 "Order channel" failure example: 60012 "Invalid request: <request>"."""
            msg = errors.MESSAGES[errors.WS_INVALID_REQUEST]
            text = msg if req is None else f"{msg}: {req}"
            return {"event": "error", "code": errors.WS_INVALID_REQUEST, "msg": text}

        try:
            while not ws.closed:
                try:
                    msg = await ws.receive(timeout=self.ws_idle_timeout_s)
                except TimeoutError:  # close frame 4004 (docs-v5 "Error Code / WebSocket")
                    close_code, close_reason = 4004, b"No data received in 30s"
                    break
                if msg.type is not WSMsgType.TEXT:
                    break
                if msg.data == "ping":
                    await ws.send_str("pong")
                    continue
                try:
                    req = json.loads(msg.data)
                    op = req.get("op")
                except (ValueError, AttributeError):
                    await reply(invalid(msg.data))
                    continue
                if op == "login":
                    failure = self._login(req.get("args"))
                    if failure is not None:
                        await reply({"event": "error", "code": failure[0], "msg": failure[1]})
                        close_code, close_reason = 4001, b"Login Failed"
                        break
                    logged_in = True
                    self.logins += 1
                    await reply({"event": "login", "code": "0", "msg": ""})
                elif op == "subscribe":
                    if not logged_in:
                        await reply({"event": "error", "code": errors.WS_NOT_LOGGED_IN,
                                     "msg": errors.MESSAGES[errors.WS_NOT_LOGGED_IN]})
                        continue
                    channels = self._ws_state[ws]
                    new_account = False
                    for arg in req.get("args") or []:
                        channel = arg.get("channel")
                        if channel not in ("orders", "account"):
                            text = errors.MESSAGES[errors.WS_NO_CHANNEL].replace(
                                "{0}", str(channel))
                            await reply({"event": "error", "code": errors.WS_NO_CHANNEL,
                                         "msg": text})
                            continue
                        echo = {"id": str(req["id"])} if req.get("id") else {}
                        await reply({**echo, "event": "subscribe", "arg": arg})
                        new_account |= channel == "account" and channel not in channels
                        channels.add(channel)
                        if q is None:
                            q = self.core.subscribe()
                            pump = self.spawn(self._pump(ws, q))
                    if new_account:  # the initial snapshot: every currency not zero
                        held = [b for b in self.core.exchange.balances() if b.total]
                        await self._send_json(ws, self._account_push(held, snapshot=True))
                else:
                    await reply(invalid(msg.data))
        finally:
            self._ws_state.pop(ws, None)
            if pump is not None:
                pump.cancel()
            if q is not None:
                self.core.unsubscribe(q)
            self.websockets.discard(ws)
            await ws.close(code=close_code, message=close_reason)
        return ws
