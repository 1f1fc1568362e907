"""An OKX API v5 emulator on loopback for tests: the REST endpoints the connector uses and the
private WebSocket (login, ``orders`` channel, ``ping``/``pong``), over the paper exchange.

It checks what OKX checks: the four ``OK-ACCESS-*`` headers, the signature (HTTP 401 with 50113
"Invalid Sign"), the timestamp within 30 s of its clock (50102), the per-endpoint limits (HTTP
429 ``{"code":"50011","msg":"Too Many Requests"}``), the parameters (51000 "Parameter {x}
error"), and answers per order with ``sCode``/``sMsg`` inside ``{"code":"1"}``. A post-only
order that would take is accepted and then cancelled with cancelSource 31, as on OKX. Cancel
All After (the dead-man switch) cancels everything ``timeOut`` s after the last call.
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
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from aiohttp import WSMsgType, web

from connectors.base import (
    AmendRequest,
    Instrument,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)
from connectors.common.credentials import Credentials
from connectors.common.emulator import EmulatorCore, EmulatorServer, Published
from connectors.okx import errors
from connectors.okx.emulator_wire import MS, Wire, ord_id, s
from connectors.okx.signing import parse_iso_timestamp, sign, ws_login_sign
from connectors.paper.market import BTC_USDT, BTC_USDT_PERP, ETH_USDT, MarketConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
}
"""docs-v5 rate limits per endpoint (trade endpoints per instrument: keys ``<name>:<instId>``)."""

_CLORDID = re.compile(r"^[a-zA-Z0-9]{1,32}$")
_EXPIRY_MS = 30_000


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload, separators=(",", ":")),
                        content_type="application/json", headers=headers)


def _err(code: str, msg: str, status: int) -> web.Response:
    return _json({"code": code, "msg": msg, "data": []}, status)


def _ack(cid: str, oid: str, code: str = "0", msg: str = "", **extra: str) -> dict[str, str]:
    return {"clOrdId": cid, "ordId": oid, "tag": "", "ts": str(time.time_ns() // MS),
            "sCode": code, "sMsg": msg, **extra}


class _Bad(Exception):  # noqa: N818 - a parameter error answered as 51000
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _param(name: str) -> _Bad:
    return _Bad(errors.PARAM_ERROR, f"Parameter {name} error")


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
        self._dead_man_deadline: float | None = None
        self._dead_man_task: asyncio.Task[Any] | None = None
        self.dead_man_fired = 0
        self.rate_limited = 0
        self.logins = 0
        self._ws_state: dict[web.WebSocketResponse, bool] = {}

    @property
    def urls(self) -> dict[str, str]:
        return {"rest": self.base_url, "ws_private": self.ws_base_url + "/ws/v5/private"}

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/v5/public/time", self._wrap(self._time, "time", signed=False))
        r.add_get("/api/v5/public/instruments",
                  self._wrap(self._instruments, "instruments", signed=False))
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

    def _auth(self, request: web.Request, body: str) -> web.Response | None:
        """docs-v5 "REST Authentication": 401 with the venue's code when anything is off."""
        h = request.headers
        key, sig = h.get("OK-ACCESS-KEY"), h.get("OK-ACCESS-SIGN")
        ts, phrase = h.get("OK-ACCESS-TIMESTAMP"), h.get("OK-ACCESS-PASSPHRASE")
        if not key:
            return _err("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.', 401)
        if not phrase:
            return _err("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401)
        if not sig:
            return _err("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.', 401)
        if not ts:
            return _err("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401)
        if key != self.credentials.api_key:
            return _err(errors.INVALID_KEY, "Invalid OK-ACCESS-KEY", 401)
        if not hmac.compare_digest(phrase, self.credentials.passphrase or ""):
            return _err(errors.PASSPHRASE_INCORRECT,
                        'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
        try:
            ts_ms = parse_iso_timestamp(ts)
        except ValueError:
            return _err("50112", "Invalid OK-ACCESS-TIMESTAMP", 401)
        if abs(ts_ms - self.core.now_ms()) > _EXPIRY_MS:
            return _err(errors.TIMESTAMP_EXPIRED, "Timestamp request expired", 401)
        want = sign(self.credentials.secret, ts, request.method, request.raw_path, body)
        if not hmac.compare_digest(want, sig):
            return _err(errors.INVALID_SIGN, "Invalid Sign", 401)
        return None

    def _wrap(self, fn: Callable[[web.Request, Any], Any], limit: str, *, signed: bool = True,
              entry: bool = False) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            core = self.core
            core.requests.append((request.method, request.path))
            body = await request.text()
            if core.take("error_5xx_next"):
                return _err("50001", "Service temporarily unavailable. Try again later", 503)
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
                return _err("50002", "JSON syntax error", 400)
            key = limit
            if limit in ("order", "cancel", "amend") and isinstance(payload, dict):
                key = f"{limit}:{payload.get('instId', '')}"
            count = len(payload) if isinstance(payload, list) else 1
            if self._over_limit(key, count):
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

    # ---- orders -------------------------------------------------------------------------------

    def _inst(self, item: dict[str, Any]) -> Instrument:
        inst = self.instruments.get(str(item.get("instId", "")))
        if inst is None:
            raise _Bad(errors.INSTRUMENT_UNKNOWN, "Instrument ID does not exist")
        return inst

    def _size(self, inst: Instrument, value: Any, name: str) -> Decimal:
        try:
            sz = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise _param(name) from None
        if not sz.is_finite() or sz <= 0:
            raise _param(name)
        ct = self.wire.ct_vals.get(inst.venue_symbol)
        return sz * ct if ct is not None else sz

    def _price(self, value: Any, name: str) -> Decimal:
        try:
            px = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise _param(name) from None
        if not px.is_finite() or px <= 0:
            raise _param(name)
        return px

    @staticmethod
    def _reason_code(exc: VenueRejected, op: str, status: VenueStatus | None) -> str:
        r = exc.reason
        if r is RejectReason.INSUFFICIENT_BALANCE:
            return "51502" if op == "amend" else errors.INSUFFICIENT
        if r is RejectReason.UNKNOWN_SYMBOL:
            return errors.INSTRUMENT_UNKNOWN
        if r is RejectReason.DUPLICATE_ORDER:
            return errors.DUPLICATE_CLORDID
        if r is RejectReason.LOT_FILTER:
            return errors.LOT_MULTIPLE if "multiple" in exc.text else errors.BELOW_MIN_SIZE
        if r is RejectReason.MIN_NOTIONAL:
            return errors.BELOW_MIN_SIZE
        if r is RejectReason.POST_ONLY_WOULD_TAKE:
            return errors.AMEND_POST_ONLY
        if r in (RejectReason.UNKNOWN_ORDER, RejectReason.TOO_LATE):
            if op == "cancel":
                return {VenueStatus.CANCELED: errors.CANCEL_ALREADY_CANCELED,
                        VenueStatus.FILLED: errors.CANCEL_ALREADY_DONE}.get(
                            status or VenueStatus.NEW, errors.CANCEL_FAILED)
            return {VenueStatus.CANCELED: errors.AMEND_CANCELED,
                    VenueStatus.FILLED: errors.AMEND_DONE}.get(
                        status or VenueStatus.NEW, errors.AMEND_FAILED)
        return errors.PARAM_ERROR

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
            qty_value = item.get("sz")
            if qty_value is None:
                raise _param("sz")
            price = None if ot == "market" else self._price(item.get("px"), "px")
            book = self.core.exchange.book(inst.symbol)
            if ot == "market" and not swap and side == "buy" and \
                    item.get("tgtCcy", "quote_ccy") == "quote_ccy":
                ask = book.best_ask()
                if ask is None:
                    raise _Bad("51000", "Parameter sz error")
                qty = (self._size(inst, qty_value, "sz") / ask / inst.lot_size).to_integral_value(
                    rounding=ROUND_DOWN) * inst.lot_size
            else:
                qty = self._size(inst, qty_value, "sz")
        except _Bad as bad:
            return _ack(cid, "", bad.code, bad.msg)
        auto = not cid
        if auto:
            self._auto += 1
            cid = f"okxauto{self._auto}"
            self.wire.auto_cids.add(cid)
        if cid in self._ghosts:
            return _ack(cid, "", errors.DUPLICATE_CLORDID, "Duplicated clOrdId")
        req = OrderRequest(
            client_order_id=cid, symbol=inst.symbol, side=Side(side),
            type=OrderType.MARKET if ot == "market" else OrderType.LIMIT, quantity=qty,
            price=price,
            time_in_force={"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}.get(ot, TimeInForce.GTC),
            post_only=ot == "post_only", reduce_only=str(item.get("reduceOnly")) == "true",
        )
        shown = "" if auto else cid
        try:
            acc = self.core.run(lambda now: self.core.exchange.place(req, now))
        except VenueRejected as exc:
            if exc.reason is RejectReason.POST_ONLY_WOULD_TAKE:
                return self._ghost(inst, req, shown)
            code = self._reason_code(exc, "place", None)
            if code == errors.DUPLICATE_CLORDID:
                return _ack(shown, "", code, "Duplicated clOrdId")
            if code == errors.PARAM_ERROR and exc.reason is RejectReason.PRICE_FILTER:
                return _ack(shown, "", code, "Parameter px error")
            return _ack(shown, "", code, exc.text)
        return _ack(shown, ord_id(acc.venue_order_id), "0", "Order placed")

    def _ghost(self, inst: Instrument, req: OrderRequest, cid: str) -> dict[str, str]:
        """OKX accepts a post-only order that would take, then cancels it (cancelSource 31)."""
        self._auto += 1
        oid = str(3_000_000_000_000_000_000 + self._auto)
        now = str(self.core.now_ms())
        contracts = req.quantity / self.wire.ct_vals.get(inst.venue_symbol, Decimal(1))
        base = {
            "instType": self.wire.inst_type(inst), "instId": inst.venue_symbol, "ordId": oid,
            "clOrdId": cid, "tag": "", "px": s(req.price), "sz": s(contracts),
            "ordType": "post_only", "side": req.side.value, "accFillSz": "0", "avgPx": "",
            "fee": "0", "feeCcy": inst.settle or inst.quote, "cTime": now, "uTime": now,
            "tradeId": "", "fillSz": "", "fillPx": "", "fillFee": "", "fillFeeCcy": "",
            "execType": "", "fillTime": "", "amendResult": "", "reqId": "", "code": "0",
            "msg": "",
        }
        live = {**base, "state": "live", "cancelSource": ""}
        dead = {**base, "state": "canceled", "cancelSource": "31"}
        self._ghosts[req.client_order_id] = dead
        if not self.core.faults.streams_down:
            for ws, subscribed in list(self._ws_state.items()):
                if subscribed:
                    self.spawn(self._send(ws, [live]))
                    self.spawn(self._send(ws, [dead]))
        return _ack(cid, oid, "0", "Order placed")

    def _place(self, request: web.Request, body: Any) -> Any:
        ack = self._place_one(body)
        ok = ack["sCode"] == "0"
        return {"code": "0" if ok else "1", "msg": "" if ok else "All operations failed",
                "data": [ack]}

    def _batch(self, request: web.Request, body: Any) -> Any:
        if not isinstance(body, list) or not 0 < len(body) <= 20:
            raise _Bad("51111", "Maximum 20 orders can be placed in bulk")
        acks = [self._place_one(item) for item in body]
        good = sum(1 for a in acks if a["sCode"] == "0")
        code = "0" if good == len(acks) else ("1" if not good else "2")
        return {"code": code, "msg": "" if code == "0" else "Operation failed", "data": acks}

    def _find(self, item: dict[str, Any]) -> tuple[Instrument, str]:
        """(instrument, our client order id) of an order named by clOrdId or ordId."""
        inst = self._inst(item)
        cid = str(item.get("clOrdId") or "")
        oid = str(item.get("ordId") or "")
        if not cid and not oid:
            raise _Bad("51003", "Either client order ID or order ID is required")
        if not cid:
            for o in self.core.exchange.orders():
                if ord_id(o.venue_order_id) == oid:
                    return inst, o.client_order_id
            return inst, ""
        return inst, cid

    def _status(self, cid: str) -> VenueStatus | None:
        o = self.core.exchange.order(cid)
        return o.status if o is not None else None

    def _cancel_one(self, item: Any) -> dict[str, str]:
        if not isinstance(item, dict):
            raise _param("body")
        try:
            inst, cid = self._find(item)
        except _Bad as bad:
            return _ack(str(item.get("clOrdId", "")), str(item.get("ordId", "")), bad.code,
                        bad.msg)
        shown = "" if cid in self.wire.auto_cids else cid
        ghost = self._ghosts.get(cid)
        if ghost is not None:
            return _ack(shown, ghost["ordId"], errors.CANCEL_ALREADY_CANCELED,
                        "Cancellation failed as the order is already canceled")
        try:
            self.core.run(lambda now: self.core.exchange.cancel(inst.symbol, cid, now))
        except VenueRejected as exc:
            return _ack(shown, str(item.get("ordId", "")),
                        self._reason_code(exc, "cancel", self._status(cid)), exc.text)
        o = self.core.exchange.order(cid)
        return _ack(shown, ord_id(o.venue_order_id) if o else "", "0", "")

    def _cancel(self, request: web.Request, body: Any) -> Any:
        ack = self._cancel_one(body)
        ok = ack["sCode"] == "0"
        return {"code": "0" if ok else "1", "msg": "" if ok else "All operations failed",
                "data": [ack]}

    def _cancel_batch(self, request: web.Request, body: Any) -> Any:
        if not isinstance(body, list) or not 0 < len(body) <= 20:
            raise _Bad("51501", "Maximum 20 orders can be canceled in bulk")
        acks = [self._cancel_one(item) for item in body]
        good = sum(1 for a in acks if a["sCode"] == "0")
        code = "0" if good == len(acks) else ("1" if not good else "2")
        return {"code": code, "msg": "" if code == "0" else "Operation failed", "data": acks}

    def _amend(self, request: web.Request, body: Any) -> Any:
        """docs-v5 "Trade / Amend order": newSz (total) and/or newPx."""
        if not isinstance(body, dict):
            raise _param("body")
        req_id = str(body.get("reqId", ""))

        def fail(code: str, msg: str, oid: str = "") -> Any:
            return {"code": "1", "msg": "All operations failed",
                    "data": [_ack(str(body.get("clOrdId", "")), oid, code, msg, reqId=req_id)]}

        try:
            inst, cid = self._find(body)
            if body.get("newSz") is None and body.get("newPx") is None:
                raise _Bad("51500", "Either order price or amount is required")
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
            code = self._reason_code(exc, "amend", self._status(cid))
            if code == errors.PARAM_ERROR:
                name = "newPx" if exc.reason is RejectReason.PRICE_FILTER else "newSz"
                return fail(code, f"Parameter {name} error")
            return fail(code, exc.text)
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
        if o is None or o.symbol != inst.symbol or (
                q.get("clOrdId") and q["clOrdId"] != o.client_order_id):
            return {"code": errors.ORDER_NOT_FOUND, "msg": "Order does not exist", "data": []}
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
        details = [{"ccy": b.asset, "availBal": s(b.free), "frozenBal": s(b.locked),
                    "cashBal": s(b.total), "eq": s(b.total), "uTime": str(self.core.now_ms())}
                   for b in self.core.exchange.balances()]
        return {"code": "0", "msg": "", "data": [{"totalEq": "", "uTime":
                                                   str(self.core.now_ms()), "details": details}]}

    def _positions(self, request: web.Request, _: Any) -> Any:
        by_symbol = {i.symbol: i for i in self.instruments.values()}
        rows = []
        for p in self.core.exchange.positions():
            inst = by_symbol[p.symbol]
            rows.append({"instType": "SWAP", "instId": inst.venue_symbol, "mgnMode": "cross",
                         "posSide": "net", "pos": s(self.wire.contracts(inst, p.quantity)),
                         "avgPx": s(p.entry_price), "ccy": inst.settle or inst.quote,
                         "uTime": str(self.core.now_ms())})
        return {"code": "0", "msg": "", "data": rows}

    # ---- the private WebSocket ----------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, items: list[dict[str, Any]]) -> None:
        if ws.closed or not items:
            return
        msg = {"arg": {"channel": "orders", "instType": "ANY", "uid": "44705892343619584"},
               "data": items}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(msg, separators=(",", ":")))

    async def _pump(self, ws: web.WebSocketResponse, q: asyncio.Queue[Published]) -> None:
        while not ws.closed:
            pub = await q.get()
            item = self.wire.push(pub.event)
            if item is not None:
                await self._send(ws, [item])

    def _login(self, args: Any) -> tuple[str, str] | None:
        """None when the login is good, else (code, msg) (docs-v5 "WebSocket / Login")."""
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            return "60012", "Illegal request"
        a = args[0]
        if a.get("apiKey") != self.credentials.api_key:
            return "60005", "Invalid OK-ACCESS-KEY"
        if a.get("passphrase") != (self.credentials.passphrase or ""):
            return "60024", "Wrong passphrase"
        ts = str(a.get("timestamp", ""))
        if not ts.isdigit():
            return "60004", "Invalid timestamp"
        if abs(int(ts) * 1000 - self.core.now_ms()) > _EXPIRY_MS:
            return errors.WS_TIMESTAMP_EXPIRED, "Timestamp request expired"
        if not hmac.compare_digest(ws_login_sign(self.credentials.secret, ts),
                                   str(a.get("sign", ""))):
            return errors.WS_INVALID_SIGN, "Invalid sign"
        return None

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self.core.requests.append(("GET", request.path))
        ws = await self.open_ws(request)
        if ws is None:
            return web.Response(status=503, text="streams are down")
        conn_id = secrets.token_hex(4)
        logged_in = False
        q: asyncio.Queue[Published] | None = None
        pump: asyncio.Task[Any] | None = None
        self._ws_state[ws] = False

        async def reply(obj: dict[str, Any]) -> None:
            await ws.send_str(json.dumps({**obj, "connId": conn_id}, separators=(",", ":")))

        try:
            while not ws.closed:
                try:
                    msg = await ws.receive(timeout=self.ws_idle_timeout_s)
                except TimeoutError:
                    break  # OKX closes a connection that sent nothing for 30 s
                if msg.type is not WSMsgType.TEXT:
                    break
                if msg.data == "ping":
                    await ws.send_str("pong")
                    continue
                try:
                    req = json.loads(msg.data)
                    op = req.get("op")
                except (ValueError, AttributeError):
                    await reply({"event": "error", "code": "60012", "msg": "Illegal request"})
                    continue
                if op == "login":
                    failure = self._login(req.get("args"))
                    if failure is not None:
                        await reply({"event": "error", "code": failure[0], "msg": failure[1]})
                        break
                    logged_in = True
                    self.logins += 1
                    await reply({"event": "login", "code": "0", "msg": ""})
                elif op == "subscribe":
                    if not logged_in:
                        await reply({"event": "error", "code": errors.WS_NOT_LOGGED_IN,
                                     "msg": "Please log in"})
                        continue
                    for arg in req.get("args") or []:
                        if arg.get("channel") != "orders":
                            await reply({"event": "error", "code": "60018",
                                         "msg": f"Wrong URL or channel:{arg.get('channel')}"})
                            continue
                        await reply({"event": "subscribe", "arg": arg})
                        if q is None:
                            q = self.core.subscribe()
                            pump = self.spawn(self._pump(ws, q))
                            self._ws_state[ws] = True
                else:
                    await reply({"event": "error", "code": "60012", "msg": "Illegal request"})
        finally:
            self._ws_state.pop(ws, None)
            if pump is not None:
                pump.cancel()
            if q is not None:
                self.core.unsubscribe(q)
            self.websockets.discard(ws)
            await ws.close()
        return ws
