"""``Connector.query_order(..., venue_order_id=...)``: the caller (the gateway, which stores
every order's venue order id) names the venue's id of the order, and each venue connector asks
by it. After a restart the connector has forgotten that id; on Binance a cancel has replaced
the order's clientOrderId, so a query by the original client order id answers -2013."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from venue_binance.helpers import running as binance_running
from venue_binance.helpers import settings_for as binance_settings
from venue_binance.helpers import wait_for
from venue_bybit.helpers import pair as bybit_pair
from venue_bybit.helpers import settings as bybit_settings
from venue_okx.helpers import settings as okx_settings
from venue_okx.helpers import venue as okx_venue

from connectors.base import (
    OrderCanceled,
    OrderRequest,
    OrderType,
    Side,
    VenueStatus,
)
from connectors.binance import BinanceConnector
from connectors.bybit import BybitConnector
from connectors.okx import OkxConnector

D = Decimal
BTC = "BTC/USDT"


def bid(coid: str, price: str) -> OrderRequest:
    return OrderRequest(coid, BTC, Side.BUY, OrderType.LIMIT, D("0.002"), D(price))


def test_a_fresh_binance_connector_finds_a_cancelled_order_by_its_venue_order_id() -> None:
    """Placed, partly filled and cancelled through one connector; a fresh one (a restart) is
    given the orderId: it finds the order, names it by our client order id, and from then on
    attributes the order's trades to it (not to the id the cancel gave the order)."""

    async def main() -> None:
        async with binance_running() as (emu, conn, events):
            best = emu.core.exchange.book(BTC).best_bid()
            assert best is not None
            price = best + D("0.01")  # the first an outside seller meets
            acc = await conn.place(bid("fgwV1", str(price)))
            emu.core.trade_against(BTC, Side.SELL, D("0.001"), price)
            await conn.cancel(BTC, "fgwV1")
            await wait_for(lambda: events.of(OrderCanceled))
            fresh = BinanceConnector(binance_settings(emu))
            try:
                await fresh.start()
                # by the client order id alone: the venue no longer knows it (-2013)
                assert await fresh.query_order(BTC, "fgwV1") is None
                state = await fresh.query_order(BTC, "fgwV1",
                                                venue_order_id=acc.venue_order_id)
                assert state is not None
                assert state.status is VenueStatus.CANCELED
                assert state.client_order_id == "fgwV1"
                assert state.venue_order_id == acc.venue_order_id
                assert state.filled_quantity == D("0.001")
                fills = await fresh.fills_since(time.time_ns() - 60 * 10**9)
                assert [(f.client_order_id, f.quantity) for f in fills] == [
                    ("fgwV1", D("0.001"))]
            finally:
                await fresh.close()

    asyncio.run(main())


def test_okx_queries_by_ord_id_when_given() -> None:
    async def main() -> None:
        async with okx_venue() as (emu, conn):
            acc = await conn.place(bid("fgwO1", "90000"))
            await conn.cancel(BTC, "fgwO1")
            fresh = OkxConnector(okx_settings(emu))
            try:
                await fresh.start()
                state = await fresh.query_order(BTC, "fgwO1", venue_order_id=acc.venue_order_id)
                assert state is not None and state.status is VenueStatus.CANCELED
                assert (state.client_order_id, state.venue_order_id) == (
                    "fgwO1", acc.venue_order_id)
                # the ordId is what is asked: another one is not this order
                assert await fresh.query_order(BTC, "fgwO1", venue_order_id="1") is None
            finally:
                await fresh.close()

    asyncio.run(main())


def test_bybit_queries_by_order_id_when_given() -> None:
    async def main() -> None:
        async with bybit_pair() as p:
            acc = await p.connector.place(bid("fgwB1", "90000"))
            await p.connector.cancel(BTC, "fgwB1")
            fresh = BybitConnector(bybit_settings(p.emulator))
            try:
                await fresh.start()
                state = await fresh.query_order(BTC, "fgwB1", venue_order_id=acc.venue_order_id)
                assert state is not None and state.status is VenueStatus.CANCELED
                assert (state.client_order_id, state.venue_order_id) == (
                    "fgwB1", acc.venue_order_id)
                assert await fresh.query_order(BTC, "fgwB1", venue_order_id="nope") is None
            finally:
                await fresh.close()

    asyncio.run(main())
