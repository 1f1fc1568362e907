"""ccxt's own clients (``ccxt.async_support``: binance, okx, bybit), not our connectors, against
our emulators on loopback: balance, place, query, open orders, trades and cancel. ccxt is a
second, independent reading of each venue's API (its signing, paths, parameters and parsing);
an emulator that misread the venue's docs the same way our connector does fails here.

Only the hosts are changed (``override_urls``: scheme and host of every ``urls['api']`` entry,
paths kept); ccxt's requests for what the emulators do not serve (currencies, account-type
probes, option and inverse markets) are turned off with ccxt's own options.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
from venue_common.support import run

from connectors.base import Side
from connectors.ccxt.exchange import override_urls
from connectors.common.credentials import Credentials
from emulators.binance import BinanceEmulator
from emulators.bybit import BybitEmulator
from emulators.core import EmulatorServer
from emulators.okx import OkxEmulator

BINANCE = Credentials("ccxt-binance-key-0000000000000001", "ccxt-binance-secret-000000000001")
OKX = Credentials("0d6f1f1c-7c58-4d34-9a3e-1c6b3b6a2f10", "3B1C44E1F1D4B2A9C5E6F7A8B9C0D1E2",
                  "fixgw-Passphrase1")
BYBIT = Credentials("ccxt-bybit-key-01", "ccxt-bybit-secret-01")
BTC = "BTC/USDT"


def d(value: Any) -> Decimal:
    """ccxt's float as the decimal it was printed from."""
    return Decimal(str(value))


@asynccontextmanager
async def client(emu: EmulatorServer, exchange_id: str, creds: Credentials,
                 options: dict[str, Any]) -> AsyncIterator[Any]:
    await emu.start()
    config: dict[str, Any] = {"apiKey": creds.api_key, "secret": creds.secret,
                              "enableRateLimit": False, "options": options}
    if creds.passphrase:
        config["password"] = creds.passphrase
    ex = getattr(ccxt, exchange_id)(config)
    ex.has["fetchCurrencies"] = False  # private currency lists: not served
    override_urls(ex, emu.urls)
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()
        await emu.stop()


async def round_trip(ex: Any, emu: EmulatorServer, coid_param: dict[str, Any],
                     base_before: Decimal) -> None:
    """The same checks for each venue: a resting buy at 97000 (the first an outside seller
    meets), partly filled as maker (0.004 of 0.01), then cancelled."""
    order = await ex.create_order(BTC, "limit", "buy", 0.01, 97000, coid_param)
    oid = order["id"]
    assert oid
    got = await ex.fetch_open_orders(BTC)
    assert [o["id"] for o in got] == [oid]
    o = got[0]
    assert (o["status"], o["side"], o["type"]) == ("open", "buy", "limit")
    assert d(o["amount"]) == Decimal("0.01") and d(o["price"]) == 97000
    assert o["clientOrderId"] == next(iter(coid_param.values()))
    emu.core.trade_against(BTC, Side.SELL, Decimal("0.004"), Decimal("97000"))
    trades = await ex.fetch_my_trades(BTC)
    assert len(trades) == 1
    t = trades[0]
    assert t["order"] == oid and t["side"] == "buy" and t["takerOrMaker"] == "maker"
    assert d(t["amount"]) == Decimal("0.004") and d(t["price"]) == 97000
    # the fee of a spot buy: 0.1 % of the 0.004 BTC received, in BTC
    assert t["fee"]["currency"] == "BTC" and d(t["fee"]["cost"]) == Decimal("0.000004")
    await ex.cancel_order(oid, BTC)
    assert await ex.fetch_open_orders(BTC) == []
    bal = await ex.fetch_balance()
    assert d(bal["BTC"]["total"]) == base_before + Decimal("0.004") - Decimal("0.000004")
    assert d(bal["USDT"]["used"]) == 0


def test_ccxt_binance() -> None:
    async def go() -> None:
        emu = BinanceEmulator(BINANCE)
        options = {"fetchCurrencies": False, "fetchMarkets": {"types": ["spot"]},
                   "fetchMargins": False}
        async with client(emu, "binance", BINANCE, options) as ex:
            bal = await ex.fetch_balance()
            assert d(bal["BTC"]["free"]) == 10 and d(bal["USDT"]["free"]) == 1_000_000
            await round_trip(ex, emu, {"clientOrderId": "ccxtB1"}, Decimal("10"))
            (order,) = list(emu.core.exchange.orders())
            state = await ex.fetch_order(str(int(order.venue_order_id[1:])), BTC)
            assert state["status"] == "canceled" and d(state["filled"]) == Decimal("0.004")
    run(go())


def test_ccxt_okx() -> None:
    async def go() -> None:
        emu = OkxEmulator(OKX)
        options = {"fetchMarkets": {"types": ["spot", "swap"]}}
        async with client(emu, "okx", OKX, options) as ex:
            bal = await ex.fetch_balance()
            assert d(bal["BTC"]["free"]) == 100 and d(bal["USDT"]["free"]) == 10_000_000
            await round_trip(ex, emu, {"clientOrderId": "ccxtO1"}, Decimal("100"))
            first = next(iter(emu.core.exchange.orders()))
            state = await ex.fetch_order(emu.wire.order(first)["ordId"], BTC)
            assert state["status"] == "canceled" and d(state["filled"]) == Decimal("0.004")
            # reduceOnly goes as a Boolean: with no position the venue refuses the order
            with pytest.raises(ccxt.ExchangeError):
                await ex.create_order("BTC/USDT:USDT", "limit", "sell", 1, 98000,
                                      {"reduceOnly": True, "clientOrderId": "ccxtO2"})
            assert emu.core.exchange.order("ccxtO2") is None
    run(go())


def test_ccxt_bybit() -> None:
    async def go() -> None:
        emu = BybitEmulator(BYBIT)
        options = {"fetchMarkets": {"types": ["spot", "linear"]}, "enableUnifiedMargin": False,
                   "enableUnifiedAccount": True}
        async with client(emu, "bybit", BYBIT, options) as ex:
            bal = await ex.fetch_balance()
            assert d(bal["BTC"]["free"]) == 100 and d(bal["USDT"]["free"]) == 10_000_000
            await round_trip(ex, emu, {"clientOrderId": "ccxtY1"}, Decimal("100"))
            oid = next(iter(emu.core.exchange.orders())).venue_order_id
            state = await ex.fetch_closed_order(oid, BTC)
            # Bybit's spot-only PartiallyFilledCanceled (enum "orderStatus"), which ccxt calls
            # closed (ccxt issue 18685)
            assert state["info"]["orderStatus"] == "PartiallyFilledCanceled"
            assert state["status"] == "closed" and d(state["filled"]) == Decimal("0.004")
    run(go())
