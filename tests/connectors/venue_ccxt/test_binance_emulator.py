"""CcxtConnector with ccxt's real ``binance`` class pointed at the Binance emulator on loopback
(connectors/binance/emulator.py): REST only, events by polling (the emulator serves the
WebSocket API user data stream, which ccxt.pro's binance does not use this way)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from venue_common.support import drain, run, until

from connectors.base import (
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.ccxt import CcxtConnector
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from emulators.binance import BinanceEmulator, binance_balances, binance_markets
from emulators.core import EmulatorCore

CREDS = Credentials("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
                    "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j")
OPTIONS = {"fetchCurrencies": False, "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
           "rateLimit": 5,  # ccxt throttles binance at 50 ms per weight unit; loopback needs less
           "events": "poll", "poll_interval_s": 0.02}


@asynccontextmanager
async def venue(creds: Credentials = CREDS, core: EmulatorCore | None = None,
                options: dict[str, Any] | None = None,
                **kw: Any) -> AsyncIterator[tuple[CcxtConnector, Any]]:
    emu = BinanceEmulator(CREDS, core)
    await emu.start()
    kw.setdefault("dead_man_s", None)
    kw.setdefault("request_timeout_s", 0.5)
    conn = CcxtConnector(VenueSettings(name="bn", credentials=creds, urls=emu.urls, **kw),
                         "binance", {**OPTIONS, **(options or {})})
    try:
        await conn.start()
        yield conn, emu
    finally:
        await conn.close()
        await emu.stop()


def collect(conn: CcxtConnector, into: list[VenueEvent]) -> list[VenueEvent]:
    into.extend(drain(conn))
    return into


def bid(coid: str, qty: str = "0.01", price: str = "97000") -> OrderRequest:
    """Above the emulator's market maker's best bid (96999.99): the first a seller meets."""
    return OrderRequest(coid, "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal(qty),
                        Decimal(price))


def test_instruments_and_clock() -> None:
    ahead_ns = 30_000_000_000  # the venue's clock runs 30 s ahead: beyond recvWindow

    async def go() -> None:
        core = EmulatorCore(binance_markets(), balances=binance_balances(),
                            clock=lambda: time.time_ns() + ahead_ns)
        async with venue(core=core) as (conn, _):
            assert abs(conn.clock_offset_ms - 30_000) < 1000
            inst = {i.symbol: i for i in await conn.instruments()}
            btc = inst["BTC/USDT"]
            assert btc.venue_symbol == "BTCUSDT" and btc.tick_size == Decimal("0.01")
            assert btc.lot_size > 0 and btc.min_notional > 0
            assert "ETH/USDT" in inst
            assert await conn.balances()  # signed, with the venue's time: accepted
    run(go())


def test_place_fill_cancel_query_through_the_emulator() -> None:
    async def go() -> None:
        async with venue() as (conn, emu):
            ack = await conn.place(bid("fgwA1", "0.01"))
            assert isinstance(ack, OrderAccepted) and ack.venue_order_id
            st = await conn.query_order("BTC/USDT", "fgwA1")
            assert st is not None and st.status is VenueStatus.NEW
            assert st.quantity == Decimal("0.01") and st.price == Decimal("97000")
            assert [o.client_order_id for o in await conn.open_orders()] == ["fgwA1"]
            traded, ours = emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.004"))
            assert ours == Decimal("0.004")
            evs: list[VenueEvent] = []
            await until(lambda: any(isinstance(e, OrderFilled) for e in collect(conn, evs)))
            await conn.poll_once()  # and once more: nothing new
            evs += drain(conn)
            fills = [e for e in evs if isinstance(e, OrderFilled)]
            assert len(fills) == 1
            f = fills[0]
            assert f.quantity == Decimal("0.004") and f.price == Decimal("97000")
            assert f.liquidity is Liquidity.MAKER and f.fee is not None and f.fee_currency
            assert f.trade_id and f.venue_order_id == ack.venue_order_id
            since = await conn.fills_since(0)
            assert [x.trade_id for x in since] == [f.trade_id]
            await conn.cancel("BTC/USDT", "fgwA1")
            await until(lambda: not conn._events.empty())
            (ev,) = drain(conn)
            assert isinstance(ev, OrderCanceled) and ev.filled_quantity == Decimal("0.004")
            st = await conn.query_order("BTC/USDT", "fgwA1")
            assert st is not None and st.status is VenueStatus.CANCELED
            assert await conn.query_order("BTC/USDT", "fgwNever") is None
            bals = {b.asset: b for b in await conn.balances()}
            assert f.fee_currency == "BTC" and f.fee == Decimal("0.000004")  # from what it got
            assert bals["BTC"].total == Decimal("10.004") - Decimal("0.000004")
    run(go())


def test_cancel_all_and_unknown_symbol() -> None:
    async def go() -> None:
        async with venue() as (conn, emu):
            await conn.place(bid("fgwB1", price="90000"))
            await conn.place(bid("fgwB2", price="90001"))
            await conn.place(OrderRequest("fgwB3", "ETH/USDT", Side.BUY, OrderType.LIMIT,
                                          Decimal("0.1"), Decimal("3000")))
            assert await conn.cancel_all("BTC/USDT") == 2
            assert [o.client_order_id for o in await conn.open_orders()] == ["fgwB3"]
            assert await conn.cancel_all() == 1
            assert await conn.open_orders() == []
            with pytest.raises(VenueRejected) as ei:
                await conn.place(OrderRequest("fgwB4", "XRP/USDT", Side.BUY, OrderType.LIMIT,
                                              Decimal(1), Decimal(1)))
            assert ei.value.reason is RejectReason.UNKNOWN_SYMBOL
    run(go())


def test_bad_signature_is_refused_by_the_venue() -> None:
    async def go() -> None:
        wrong = Credentials(CREDS.api_key, "x" * 64)
        async with venue(creds=wrong) as (conn, emu):
            with pytest.raises(VenueUnavailable, match="-1022"):
                await conn.balances()
            assert 401 in emu.statuses or 400 in emu.statuses
    run(go())


def test_timeout_then_query_then_duplicate() -> None:
    async def go() -> None:
        async with venue() as (conn, emu):
            emu.core.faults.timeout_next = 1
            with pytest.raises(VenueAmbiguous):
                await conn.place(bid("fgwC1", price="90000"))
            st = await conn.query_order("BTC/USDT", "fgwC1")
            assert st is not None and st.status is VenueStatus.NEW
            with pytest.raises(VenueRejected) as ei:
                await conn.place(bid("fgwC1", price="90000"))
            assert ei.value.reason is RejectReason.DUPLICATE_ORDER
            assert len(emu.core.exchange.open_orders()) == 1
            assert "fgwC1" in conn.tracked
    run(go())


def test_429_storm_places_once_without_ban() -> None:
    async def go() -> None:
        async with venue() as (conn, emu):
            emu.core.faults.rate_limit_next = 3
            emu.core.faults.retry_after_s = 0
            await conn.place(bid("fgwD1", price="90000"))
            assert len(emu.core.exchange.open_orders()) == 1
            assert conn.rate_limited == 3
            assert 418 not in emu.statuses
            assert (await conn.health()).connected
    run(go())


def test_no_dead_man_switch_on_binance_spot() -> None:
    async def go() -> None:
        async with venue(dead_man_s=1.0) as (conn, _):
            assert not conn.dead_man_armed  # ccxt binance has no cancelAllOrdersAfter
    run(go())


def test_last_price_from_ticker_price() -> None:
    """ccxt binance fetchLastPrices: GET /api/v3/ticker/price (all symbols, one request),
    at the end of start() and then every price_poll_s."""
    async def go() -> None:
        async with venue(options={"price_poll_s": 0.05}) as (conn, emu):
            ex = emu.core.exchange
            assert conn.last_price("BTC/USDT") == ex.last_price("BTC/USDT") == Decimal(97000)
            assert conn.last_price("ETH/USDT") == ex.last_price("ETH/USDT")
            assert ("GET", "/api/v3/ticker/price") in emu.core.requests
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("0.01"))
            assert ex.last_price("BTC/USDT") == Decimal("96999.99")
            await until(lambda: conn.last_price("BTC/USDT") == ex.last_price("BTC/USDT"))
    run(go())


def test_last_price_of_configured_symbols_only() -> None:
    async def go() -> None:
        async with venue(symbols=("BTC/USDT",)) as (conn, emu):
            assert conn.last_price("BTC/USDT") == emu.core.exchange.last_price("BTC/USDT")
            assert conn.last_price("ETH/USDT") is None
    run(go())
