"""BybitConnector against BybitEmulator over loopback: the order lifecycle and the account."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from connectors.base import (
    AmendRequest,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)
from connectors.bybit import BybitConnector
from connectors.common.credentials import Credentials
from emulators.bybit import BybitEmulator, bybit_markets
from emulators.core import EmulatorCore

from .helpers import CREDS, pair, run, settings

BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"


def limit(coid: str, side: Side, qty: str, price: str, symbol: str = BTC,
          **kw: object) -> OrderRequest:
    return OrderRequest(coid, symbol, side, OrderType.LIMIT, Decimal(qty), Decimal(price),
                        **kw)  # type: ignore[arg-type]


def test_instruments_and_balances() -> None:
    async def go() -> None:
        async with pair() as p:
            insts = {i.symbol: i for i in await p.connector.instruments()}
            assert set(insts) == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"}
            assert insts[BTC].venue_symbol == "BTCUSDT"
            assert insts[BTC].tick_size == Decimal("0.01")
            assert insts[BTC].lot_size == Decimal("0.00001")
            assert insts[BTC].min_notional == Decimal("5")
            assert insts[PERP].lot_size == Decimal("0.001")
            bal = {b.asset: b for b in await p.connector.balances()}
            assert bal["USDT"].free == Decimal("10000000")
            assert (await p.connector.health()).connected
    run(go())


def test_place_fill_cancel_query() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            acc = await c.place(limit("o1", Side.BUY, "0.01", "97000"))
            assert isinstance(acc, OrderAccepted) and acc.venue_order_id
            await p.wait_event(OrderAccepted, "o1")
            traded = p.core.trade_against(BTC, Side.SELL, Decimal("0.004"), Decimal("97000"))
            assert traded[1] == Decimal("0.004")
            fills = await p.wait_event(OrderFilled, "o1")
            assert fills[0].quantity == Decimal("0.004") and fills[0].price == Decimal("97000")
            # a spot buy pays in the base coin (Spot Fee Currency Instruction): 0.004 x 0.1 %
            assert fills[0].fee_currency == "BTC" and fills[0].fee == Decimal("0.000004")
            assert c.last_price(BTC) == Decimal("97000")
            state = await c.query_order(BTC, "o1")
            assert state is not None and state.status is VenueStatus.PARTIALLY_FILLED
            assert [s.client_order_id for s in await c.open_orders()] == ["o1"]
            history = await c.fills_since(time.time_ns() - 60_000_000_000)
            assert [f.trade_id for f in history] == [fills[0].trade_id]
            await c.cancel(BTC, "o1")
            canceled = await p.wait_event(OrderCanceled, "o1")
            assert canceled[0].filled_quantity == Decimal("0.004")
            state = await c.query_order(BTC, "o1")
            assert state is not None and state.status is VenueStatus.CANCELED
            assert await c.query_order(BTC, "never") is None
            with pytest.raises(VenueRejected) as e:
                await c.cancel(BTC, "o1")
            assert e.value.reason is RejectReason.TOO_LATE
            with pytest.raises(VenueRejected) as e:
                await c.cancel(BTC, "never")
            assert e.value.reason is RejectReason.UNKNOWN_ORDER
    run(go())


def test_amend_and_cancel_all() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            await c.place(limit("a1", Side.BUY, "0.01", "90000"))
            await c.place(limit("a2", Side.SELL, "0.01", "99000"))
            await c.place(limit("p1", Side.BUY, "0.01", "90000", symbol=PERP))
            await c.amend(AmendRequest("a1", BTC, quantity=Decimal("0.02"),
                                       price=Decimal("90100")))
            amended = await p.wait_event(OrderAmended, "a1")
            assert amended[0].quantity == Decimal("0.02")
            assert amended[0].price == Decimal("90100")
            order = p.core.exchange.order("a1")
            assert order is not None and order.price == Decimal("90100")
            assert await c.cancel_all(BTC) == 2
            assert len(await c.open_orders()) == 1
            assert await c.cancel_all() == 1
            assert await c.open_orders() == []
    run(go())


def test_rejections_are_mapped() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            cases = [
                (limit("r1", Side.BUY, "0.000001", "90000"), RejectReason.LOT_FILTER),
                (limit("r2", Side.BUY, "0.01", "90000.001"), RejectReason.PRICE_FILTER),
                (limit("r3", Side.BUY, "0.00001", "90000"), RejectReason.MIN_NOTIONAL),
                (limit("r4", Side.BUY, "200", "90000"), RejectReason.INSUFFICIENT_BALANCE),
                (limit("r5", Side.BUY, "0.001", "100", symbol=PERP),
                 RejectReason.MIN_NOTIONAL),
            ]
            for req, reason in cases:
                with pytest.raises(VenueRejected) as e:
                    await c.place(req)
                assert e.value.reason is reason, (req.client_order_id, e.value)
            await c.place(limit("d1", Side.BUY, "0.01", "90000"))
            with pytest.raises(VenueRejected) as e:
                await c.place(limit("d1", Side.BUY, "0.01", "90000"))
            assert e.value.reason is RejectReason.DUPLICATE_ORDER
    run(go())


def test_post_only_that_would_take_is_cancelled() -> None:
    async def go() -> None:
        async with pair() as p:
            req = limit("po1", Side.BUY, "0.01", "99000", post_only=True)
            await p.connector.place(req)
            ev = await p.wait_event(OrderCanceled, "po1")
            assert ev[0].reason == "EC_PostOnlyWillTakeLiquidity"
            state = await p.connector.query_order(BTC, "po1")
            assert state is not None and state.status is VenueStatus.CANCELED
            assert p.core.exchange.order("po1") is None
    run(go())


def test_market_and_perpetual_position() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            await c.place(OrderRequest("m1", PERP, Side.BUY, OrderType.MARKET, Decimal("0.01"),
                                       time_in_force=TimeInForce.IOC))
            await p.wait_event(OrderFilled, "m1")
            pos = await c.positions()
            assert len(pos) == 1 and pos[0].symbol == PERP
            assert pos[0].quantity == Decimal("0.01")
            await c.place(OrderRequest("m2", BTC, Side.BUY, OrderType.MARKET, Decimal("0.01")))
            fills = await p.wait_event(OrderFilled, "m2")
            assert sum(f.quantity for f in fills) == Decimal("0.01")
    run(go())


def test_bad_signature_gets_10004() -> None:
    async def go() -> None:
        emulator = BybitEmulator(CREDS)
        await emulator.start()
        bad = BybitConnector(settings(emulator, credentials=Credentials(CREDS.api_key, "wrong")))
        try:
            await bad.sync_time()  # public: no signature
            await bad.load_instruments()
            with pytest.raises(VenueRejected) as e:
                await bad.place(limit("b1", Side.BUY, "0.01", "90000"))
            assert e.value.text.startswith("10004 error sign!")
            assert emulator.core.exchange.order("b1") is None
        finally:
            await bad.close()
            await emulator.stop()
    run(go())


def test_clock_offset_is_measured_and_used() -> None:
    async def go() -> None:
        core = EmulatorCore(bybit_markets(), clock=lambda: time.time_ns() + 3_000_000_000)
        async with pair(core, recv_window_ms=1000) as p:
            assert 2800 <= p.connector.offset_ms <= 3200
            await p.connector.place(limit("t1", Side.BUY, "0.01", "90000"))
            assert p.core.exchange.order("t1") is not None
    run(go())


def test_rate_limit_headers_are_folded_in() -> None:
    async def go() -> None:
        async with pair() as p:
            await p.connector.place(limit("h1", Side.BUY, "0.01", "90000"))
            assert p.connector.limiter.windows["create:spot"].used >= 1
    run(go())
