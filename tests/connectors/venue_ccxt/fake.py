"""A small stand-in for a ccxt async exchange: the unified methods CcxtConnector calls, over an
in-memory book of orders and trades (for the mapping, precision and polling tests)."""

from __future__ import annotations

import itertools
from typing import Any

import ccxt.async_support as ccxt_async
from ccxt.base.decimal_to_precision import (
    ROUND,
    TICK_SIZE,
    TRUNCATE,
    decimal_to_precision,
)

SPOT = {
    "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "settle": None,
    "type": "spot", "spot": True, "swap": False, "linear": None, "active": True,
    "precision": {"amount": 1e-05, "price": 0.01},
    "limits": {"amount": {"min": 1e-05, "max": 9000.0}, "price": {"min": 0.01, "max": None},
               "cost": {"min": 5.0, "max": None}},
}
PERP = {
    "id": "BTCUSDT_PERP", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT",
    "settle": "USDT", "type": "swap", "spot": False, "swap": True, "linear": True,
    "active": True, "contractSize": 1.0,
    "precision": {"amount": 0.001, "price": 0.1},
    "limits": {"amount": {"min": 0.001, "max": None}, "price": {"min": 0.1, "max": None},
               "cost": {"min": 100.0, "max": None}},
}


class FakeExchange:
    precisionMode = TICK_SIZE
    rateLimit = 1

    def __init__(self, **has: Any) -> None:
        self.id = "fake"
        self.has: dict[str, Any] = {
            "createMarketOrder": True, "createLimitOrder": True, "cancelAllOrders": True,
            "createOrders": False, "editOrder": True, "fetchTime": True,
            "fetchClosedOrders": True, "fetchPositions": True, "cancelAllOrdersAfter": False,
            "watchOrders": False, "watchMyTrades": False, "createPostOnlyOrder": True,
            "createReduceOnlyOrder": True,
        }
        self.has.update(has)
        self.features: dict[str, Any] = {
            "spot": {"createOrder": {"timeInForce": {"GTC": True, "IOC": True, "FOK": False,
                                                     "PO": True, "GTD": False},
                                     "triggerPrice": False}},
        }
        self.options: dict[str, Any] = {}
        self.markets = {"BTC/USDT": SPOT, "BTC/USDT:USDT": PERP}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, list[Exception]] = {}
        """method name -> exceptions to raise on its next calls"""
        self.server_ms = 1_800_000_000_000
        self.dead_man: list[int] = []
        self.closed = False
        self._ids = itertools.count(100)
        self.last_response_headers: dict[str, str] = {}
        self.prices: dict[str, float] = {"BTC/USDT": 97000.01, "BTC/USDT:USDT": 97010.5}
        """last prices served by fetch_last_prices/fetch_tickers/fetch_ticker, which are
        off in ``has`` unless a test turns them on"""

    def _enter(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        errs = self.fail.get(name)
        if errs:
            raise errs.pop(0)

    def amount_to_precision(self, symbol: str, amount: Any) -> str:
        p = self.markets[symbol]["precision"]["amount"]
        out: str = decimal_to_precision(amount, TRUNCATE, p, self.precisionMode)
        if out == "0":
            raise ccxt_async.InvalidOrder("amount must be greater than minimum amount precision")
        return out

    def price_to_precision(self, symbol: str, price: Any) -> str:
        p = self.markets[symbol]["precision"]["price"]
        out: str = decimal_to_precision(price, ROUND, p, self.precisionMode)
        return out

    async def load_markets(self, reload: bool = False) -> dict[str, Any]:
        self._enter("load_markets")
        return self.markets

    async def fetch_time(self) -> int:
        self._enter("fetch_time")
        return self.server_ms

    async def create_order(self, symbol: str, type: str, side: str, amount: str,
                           price: str | None = None, params: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
        params = params or {}
        self._enter("create_order", symbol, type, side, amount, price, params)
        coid = params.get("clientOrderId")
        if any(o["clientOrderId"] == coid for o in self.orders.values()):
            raise ccxt_async.InvalidOrder('fake {"code":-2010,"msg":"Duplicate order sent."}')
        oid = str(next(self._ids))
        order = {"id": oid, "clientOrderId": coid, "symbol": symbol, "type": type,
                 "side": side, "amount": float(amount),
                 "price": float(price) if price else None, "status": "open",
                 "filled": 0.0, "remaining": float(amount), "average": None,
                 "timestamp": self.server_ms, "info": {}}
        self.orders[oid] = order
        return dict(order)

    def fill(self, oid: str, qty: float, price: float, trade_id: str,
             maker: bool = True) -> None:
        o = self.orders[oid]
        o["filled"] += qty
        o["remaining"] = o["amount"] - o["filled"]
        if o["remaining"] <= 1e-12:
            o["status"] = "closed"
        self.trades.append({"id": trade_id, "order": oid, "symbol": o["symbol"],
                            "side": o["side"], "price": price, "amount": qty,
                            "timestamp": self.server_ms + len(self.trades),
                            "takerOrMaker": "maker" if maker else "taker",
                            "fee": {"cost": 0.01, "currency": "USDT"}, "info": {}})

    async def cancel_order(self, id: str, symbol: str | None = None,
                           params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._enter("cancel_order", id, symbol)
        o = self.orders.get(id)
        if o is None or o["status"] != "open":
            raise ccxt_async.OrderNotFound("fake Unknown order sent.")
        o["status"] = "canceled"
        return dict(o)

    async def edit_order(self, id: str, symbol: str, type: str, side: str, amount: str,
                         price: str | None = None, params: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
        self._enter("edit_order", id, symbol, type, side, amount, price, params)
        o = self.orders[id]
        o["amount"] = float(amount)
        o["price"] = float(price) if price else None
        if params and params.get("clientOrderId"):
            o["clientOrderId"] = params["clientOrderId"]
        return dict(o)

    async def fetch_order(self, id: str, symbol: str | None = None,
                          params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._enter("fetch_order", id, symbol, params)
        coid = (params or {}).get("clientOrderId")
        for o in self.orders.values():
            if o["id"] == id or (coid and o["clientOrderId"] == coid):
                return dict(o)
        raise ccxt_async.OrderNotFound("fake Order does not exist.")

    async def fetch_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        self._enter("fetch_open_orders", symbol)
        return [dict(o) for o in self.orders.values()
                if o["status"] == "open" and symbol in (None, o["symbol"])]

    async def fetch_closed_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        self._enter("fetch_closed_orders", symbol)
        return [dict(o) for o in self.orders.values()
                if o["status"] != "open" and symbol in (None, o["symbol"])]

    async def fetch_my_trades(self, symbol: str | None = None, since: int | None = None
                              ) -> list[dict[str, Any]]:
        self._enter("fetch_my_trades", symbol, since)
        return [dict(t) for t in self.trades
                if symbol in (None, t["symbol"]) and (since is None or t["timestamp"] >= since)]

    async def cancel_all_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        self._enter("cancel_all_orders", symbol)
        out = []
        for o in self.orders.values():
            if o["status"] == "open" and symbol in (None, o["symbol"]):
                o["status"] = "canceled"
                out.append(dict(o))
        return out

    async def cancel_all_orders_after(self, timeout_ms: int) -> dict[str, Any]:
        self._enter("cancel_all_orders_after", timeout_ms)
        self.dead_man.append(timeout_ms)
        return {}

    async def fetch_balance(self) -> dict[str, Any]:
        self._enter("fetch_balance")
        return {"free": {"USDT": 900.5, "BTC": 0.1, "DOGE": 0.0},
                "used": {"USDT": 100.0, "BTC": 0.0, "DOGE": 0.0},
                "total": {"USDT": 1000.5, "BTC": 0.1, "DOGE": 0.0}, "info": {}}

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[dict[str, Any]]:
        self._enter("fetch_positions", symbols)
        return [{"symbol": "BTC/USDT:USDT", "contracts": 0.5, "contractSize": 1.0,
                 "side": "short", "entryPrice": 97000.5, "info": {}}]

    def _one_type(self, symbols: list[str] | None) -> list[str]:
        """ccxt's market_symbols(..., sameTypeOnly=True): one market type per call."""
        syms = list(symbols) if symbols else [s for s in self.markets if "/" in s]
        if len({self.markets[s]["type"] for s in syms}) > 1:
            raise ccxt_async.BadRequest("fake symbols must be of the same type")
        return syms

    async def fetch_last_prices(self, symbols: list[str] | None = None
                                ) -> dict[str, dict[str, Any]]:
        self._enter("fetch_last_prices", symbols)
        return {s: {"symbol": s, "timestamp": None, "price": self.prices[s], "side": None,
                    "info": {}} for s in self._one_type(symbols) if s in self.prices}

    def _ticker(self, symbol: str) -> dict[str, Any]:
        price = self.prices[symbol]
        return {"symbol": symbol, "timestamp": self.server_ms, "last": price, "close": price,
                "bid": None, "ask": None, "info": {}}

    async def fetch_tickers(self, symbols: list[str] | None = None
                            ) -> dict[str, dict[str, Any]]:
        self._enter("fetch_tickers", symbols)
        return {s: self._ticker(s) for s in self._one_type(symbols) if s in self.prices}

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        self._enter("fetch_ticker", symbol)
        return self._ticker(symbol)

    async def close(self) -> None:
        self.closed = True
