"""CcxtConnector's streaming path (ccxt.pro ``watch_orders``/``watch_my_trades`` and the REST
catch-up after a reconnect) with ccxt's real ``okx`` class pointed at the OKX emulator on
loopback (connectors/okx/emulator.py): REST under ``/api/v5`` and the private WebSocket.

What ccxt 4.5's okx does there (ccxt/pro/okx.py, ccxt/async_support/okx.py):
* REST base ``urls['api']['rest']`` = ``https://{hostname}``, WebSocket base
  ``urls['api']['ws']`` = ``wss://ws.okx.com:443/ws/v5``, ``get_url`` appends ``/private``;
  the connector's ``ws_private`` override keeps those paths and swaps scheme and host.
* ``authenticate``: ``{"op":"login","args":[{apiKey, passphrase, timestamp (s), sign}]}``,
  sign = base64 HMAC-SHA256 of ``timestamp + "GET" + "/users/self/verify"`` (OKX docs-v5
  "WebSocket / Login"); both watchers then subscribe ``{"channel":"orders",
  "instType":"ANY"}`` (watch_my_trades reads the trades from the ``orders`` channel's
  ``tradeId``/``fillSz``/``fillPx`` fields: OKX docs-v5 "Trade / WS / Order channel").
* load_markets: GET ``public/instruments?instType=SPOT`` (options
  ``fetchMarkets.types = ["spot"]``) after ``asset/currencies`` (private; the emulator does
  not serve it, so ``has.fetchCurrencies`` is turned off); createOrder is POST
  ``trade/batch-orders``, cancelOrder POST ``trade/cancel-order``, fetchMyTrades GET
  ``trade/fills-history``, fetchOpenOrders GET ``trade/orders-pending``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from venue_common.support import Collector, run, until

from connectors.base import (
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderType,
    Side,
)
from connectors.ccxt import CcxtConnector
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from emulators.okx import OkxEmulator

CREDS = Credentials("0d6f1f1c-7c58-4d34-9a3e-1c6b3b6a2f10", "3B1C44E1F1D4B2A9C5E6F7A8B9C0D1E2",
                    "fixgw-Passphrase1")
OPTIONS: dict[str, Any] = {
    "events": "stream",  # ccxt.pro watch_orders / watch_my_trades
    "fetchMarkets": {"types": ["spot"]},
    "has": {"fetchCurrencies": False},  # GET asset/currencies: not in the emulator
    "rateLimit": 5,  # ccxt throttles okx at 110 ms per cost unit; loopback needs less
}
FILLS_REST = ("GET", "/api/v5/trade/fills-history")


@asynccontextmanager
async def venue(**kw: Any) -> AsyncIterator[tuple[CcxtConnector, OkxEmulator, Collector]]:
    emu = OkxEmulator(CREDS)
    await emu.start()
    kw.setdefault("dead_man_s", None)
    kw.setdefault("request_timeout_s", 0.5)
    kw.setdefault("reconnect_base_s", 0.05)
    kw.setdefault("reconnect_cap_s", 0.2)
    conn = CcxtConnector(VenueSettings(name="okx", credentials=CREDS, urls=emu.urls, **kw),
                         "okx", OPTIONS)
    events = None
    try:
        await conn.start()
        events = Collector(conn)
        await subscribed(emu)
        yield conn, emu, events
    finally:
        if events is not None:
            await events.stop()
        await conn.close()
        await emu.stop()


async def subscribed(emu: OkxEmulator) -> None:
    """ccxt logged in and its ``orders`` subscription is live at the emulator."""
    await until(lambda: any(emu._ws_state.values()))


def bid(coid: str, qty: str = "0.01", price: str = "97000") -> OrderRequest:
    """Above the emulator's market maker's best bid: the first a seller meets."""
    return OrderRequest(coid, "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal(qty),
                        Decimal(price))


def canceled(events: Collector, coid: str) -> list[OrderCanceled]:
    return [e for e in events.of(OrderCanceled) if e.client_order_id == coid]


def test_urls_point_rest_and_websocket_at_the_emulator() -> None:
    settings = VenueSettings(name="okx", credentials=CREDS, urls={
        "rest": "http://127.0.0.1:8080", "ws_private": "ws://127.0.0.1:8080/ws/v5/private"})
    conn = CcxtConnector(settings, "okx", OPTIONS)
    api = conn.exchange.urls["api"]
    assert api["rest"] == "http://127.0.0.1:8080"
    assert api["ws"] == "ws://127.0.0.1:8080/ws/v5"
    assert conn.exchange.get_url("orders", "private") == "ws://127.0.0.1:8080/ws/v5/private"
    assert conn.streaming
    run(conn.close())


def test_place_fill_cancel_through_the_stream() -> None:
    async def go() -> None:
        async with venue() as (conn, emu, events):
            assert emu.logins == 1  # ccxt's login signature passed the emulator's check
            ack = await conn.place(bid("fgwS1"))
            assert isinstance(ack, OrderAccepted) and ack.venue_order_id
            traded, ours = emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.004"))
            assert ours == Decimal("0.004")
            (fill,) = await until(lambda: events.of(OrderFilled))
            assert fill.client_order_id == "fgwS1"
            assert fill.venue_order_id == ack.venue_order_id and fill.trade_id
            assert fill.quantity == Decimal("0.004") and fill.price == Decimal("97000")
            assert fill.liquidity is Liquidity.MAKER and fill.fee_currency == "BTC"
            assert FILLS_REST not in emu.core.requests  # it came over the WebSocket
            await conn.cancel("BTC/USDT", "fgwS1")
            (cxl,) = await until(lambda: canceled(events, "fgwS1"))
            assert cxl.filled_quantity == Decimal("0.004")
            # the cancel came after the fill on the same connection: nothing else is owed
            assert events.of(OrderFilled) == [fill]
            assert [type(e) for e in events.events] == [OrderAccepted, OrderFilled,
                                                        OrderCanceled]
            # the stream's fee is the fee charged, as fetchMyTrades (REST) gives it
            (rest,) = await conn.fills_since(0)
            assert rest.trade_id == fill.trade_id
            assert rest.fee == fill.fee == Decimal("0.000004")  # 0.004 BTC bought * 0.1 %
    run(go())


def test_fill_while_the_stream_is_down_is_caught_up_once() -> None:
    async def go() -> None:
        async with venue() as (conn, emu, events):
            ack = await conn.place(bid("fgwR1"))
            emu.core.faults.streams_down = True
            assert await emu.drop_streams() >= 1
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.003"))
            logins = emu.logins
            emu.core.faults.streams_down = False
            # nothing more happens on the account: the catch-up must not wait for a push
            (fill,) = await until(lambda: events.of(OrderFilled))
            assert emu.logins > logins and FILLS_REST in emu.core.requests
            assert fill.client_order_id == "fgwR1" and fill.venue_order_id == ack.venue_order_id
            assert fill.quantity == Decimal("0.003") and fill.fee == Decimal("0.000003")
            await subscribed(emu)
            # a second fill after the reconnect comes over the stream, the first not again
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.002"))
            await until(lambda: len(events.of(OrderFilled)) >= 2)
            await conn.cancel("BTC/USDT", "fgwR1")
            (cxl,) = await until(lambda: canceled(events, "fgwR1"))
            assert cxl.filled_quantity == Decimal("0.005")
            fills = events.of(OrderFilled)
            assert [f.quantity for f in fills] == [Decimal("0.003"), Decimal("0.002")]
            assert len({f.trade_id for f in fills}) == 2
    run(go())


def test_duplicated_stream_events_give_one_fill_each() -> None:
    async def go() -> None:
        async with venue() as (conn, emu, events):
            emu.core.faults.duplicate_events = True
            await conn.place(bid("fgwD1", "0.002"))
            await conn.place(bid("fgwD2", "0.002"))
            # fills fgwD1 (first in time) and part of fgwD2: two trades, each pushed twice
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.003"))
            await until(lambda: len(events.of(OrderFilled)) >= 2)
            await conn.cancel("BTC/USDT", "fgwD2")
            await until(lambda: canceled(events, "fgwD2"))
            fills = events.of(OrderFilled)
            assert sorted((f.client_order_id, f.quantity) for f in fills) == [
                ("fgwD1", Decimal("0.002")), ("fgwD2", Decimal("0.001"))]
            assert len({f.trade_id for f in fills}) == 2
            assert len(canceled(events, "fgwD2")) == 1
            assert conn.duplicates_dropped > 0  # the duplicates reached the connector
    run(go())


def test_last_price_from_tickers() -> None:
    """ccxt okx has no fetchLastPrices: fetchTickers, GET market/tickers?instType=SPOT."""
    async def go() -> None:
        async with venue() as (conn, emu, _):
            assert conn.last_price("BTC/USDT") == emu.core.exchange.last_price("BTC/USDT")
            assert ("GET", "/api/v5/market/tickers") in emu.core.requests
    run(go())
