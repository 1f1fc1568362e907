"""The OKX connector against the OKX emulator over loopback."""

from __future__ import annotations

import time
from dataclasses import replace
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
from connectors.okx import OkxConnector
from emulators.core import EmulatorCore
from emulators.okx import OkxEmulator, default_balances, default_markets

from .helpers import CREDS, Collector, limit_buy, run, settings, venue, wait_for


def test_start_instruments_and_rules() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            insts = {i.symbol: i for i in await conn.instruments()}
            assert set(insts) == {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT"}
            perp = insts["BTC/USDT:USDT"]
            assert perp.venue_symbol == "BTC-USDT-SWAP" and perp.lot_size == Decimal("0.0001")
            assert insts["BTC/USDT"].tick_size == Decimal("0.01")
            assert abs(conn.offset_ms) < 1000
            assert (await conn.health()).connected
            assert emu.logins == 1
            assert conn.info.client_order_id_rules.max_length == 32

    run(go())


def test_place_ack_fill_query_fills_balances() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            before = {b.asset: b for b in await conn.balances()}
            acc = await conn.place(limit_buy("fgw1", "0.01", "96000"))
            assert isinstance(acc, OrderAccepted) and acc.venue_order_id
            await wait_for(lambda: col.of(OrderAccepted))
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("10"), Decimal("96000"))
            fills = await wait_for(lambda: col.of(OrderFilled))
            f = fills[0]
            assert f.quantity == Decimal("0.01") and f.price == Decimal("96000")
            # OKX charges a spot buy in the currency received: 0.01 BTC x 0.1 % = 0.00001 BTC
            assert f.liquidity is not None and f.fee == Decimal("0.00001")
            assert f.fee_currency == "BTC"
            assert conn.last_price("BTC/USDT") == Decimal("96000")
            st = await conn.query_order("BTC/USDT", "fgw1")
            assert st is not None and st.status is VenueStatus.FILLED
            assert st.filled_quantity == Decimal("0.01") and st.average_price == Decimal("96000")
            got = await conn.fills_since(time.time_ns() - 60_000_000_000)
            assert [g.trade_id for g in got] == [f.trade_id]
            after = {b.asset: b for b in await conn.balances()}
            assert after["BTC"].total == before["BTC"].total + Decimal("0.01") - f.fee
            assert await conn.query_order("BTC/USDT", "fgwnothere") is None
            await col.stop()

    run(go())


def test_cancel_amend_open_orders_cancel_all() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            for i in range(3):
                await conn.place(limit_buy(f"fgwc{i}", "0.01", f"9{i}000"))
            await conn.place(limit_buy("fgwe1", "0.1", "3000", symbol="ETH/USDT"))
            opened = await conn.open_orders()
            assert {o.client_order_id for o in opened} == {"fgwc0", "fgwc1", "fgwc2", "fgwe1"}
            assert len(await conn.open_orders("ETH/USDT")) == 1

            await conn.cancel("BTC/USDT", "fgwc0")
            await wait_for(lambda: col.of(OrderCanceled))
            with pytest.raises(VenueRejected) as exc:
                await conn.cancel("BTC/USDT", "fgwc0")
            assert exc.value.reason is RejectReason.TOO_LATE
            assert "51400" in exc.value.text  # one code for filled, canceled and unknown ...
            with pytest.raises(VenueRejected) as exc:
                await conn.cancel("BTC/USDT", "fgwnever")
            assert exc.value.reason is RejectReason.UNKNOWN_ORDER  # ... told apart by a query
            assert "51400" in exc.value.text
            with pytest.raises(VenueRejected) as exc:
                await conn.amend(AmendRequest("fgwc0", "BTC/USDT", price=Decimal("90000")))
            assert exc.value.reason is RejectReason.TOO_LATE and "51503" in exc.value.text

            await conn.amend(AmendRequest("fgwc1", "BTC/USDT", quantity=Decimal("0.02"),
                                          price=Decimal("90500")))
            amended = await wait_for(lambda: col.of(OrderAmended))
            assert amended[0].quantity == Decimal("0.02")
            assert amended[0].price == Decimal("90500")
            st = await conn.query_order("BTC/USDT", "fgwc1")
            assert st is not None and st.quantity == Decimal("0.02")
            with pytest.raises(VenueRejected) as exc:
                await conn.amend(AmendRequest("fgwc0", "BTC/USDT", price=Decimal("90000")))
            assert exc.value.reason is RejectReason.TOO_LATE

            assert await conn.cancel_all("ETH/USDT") == 1
            assert await conn.cancel_all() == 2
            assert await conn.open_orders() == []
            await wait_for(lambda: len(col.of(OrderCanceled)) == 4)
            await col.stop()

    run(go())


def test_venue_refusals_are_mapped() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            cases = [
                (limit_buy("fgwr1", "1000", "96000"), RejectReason.INSUFFICIENT_BALANCE),
                (limit_buy("fgwr2", "0.000015", "96000"), RejectReason.LOT_FILTER),
                (limit_buy("fgwr3", "0.01", "96000.001"), RejectReason.PRICE_FILTER),
                (limit_buy("fgwr4", symbol="DOGE/USDT"), RejectReason.UNKNOWN_SYMBOL),
                (limit_buy("fgwr5", time_in_force=TimeInForce.GTD), RejectReason.UNSUPPORTED),
            ]
            for req, reason in cases:
                with pytest.raises(VenueRejected) as exc:
                    await conn.place(req)
                assert exc.value.reason is reason, (req, exc.value)
                if reason is RejectReason.INSUFFICIENT_BALANCE:  # docs-v5 "Error Code" text
                    assert "51008 Order failed. Insufficient USDT balance in account" in \
                        exc.value.text
            assert "fgwr1" not in conn.tracked

    run(go())


def test_post_only_that_would_take_is_cancelled() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            await conn.place(limit_buy("fgwp1", "0.01", "98000", post_only=True))
            canceled = await wait_for(lambda: col.of(OrderCanceled))
            assert "post-only" in canceled[0].reason
            st = await conn.query_order("BTC/USDT", "fgwp1")
            assert st is not None and st.status is VenueStatus.CANCELED
            await col.stop()

    run(go())


def test_market_order_and_batch() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            await conn.place(OrderRequest("fgwm1", "BTC/USDT", Side.BUY, OrderType.MARKET,
                                          Decimal("0.01")))
            await wait_for(lambda: col.of(OrderFilled))
            assert sum(f.quantity for f in col.of(OrderFilled)) == Decimal("0.01")
            # docs-v5 "Place order": a clOrdId must be unique among *pending* orders only, and
            # within one batch; a pending one (fgwb1) is refused with 51016
            out = await conn.place_batch([limit_buy("fgwb1"), limit_buy("fgwb2"),
                                          limit_buy("fgwb1")])
            assert isinstance(out[0], OrderAccepted) and isinstance(out[1], OrderAccepted)
            assert isinstance(out[2], VenueRejected)
            assert out[2].reason is RejectReason.DUPLICATE_ORDER
            again = await conn.place_batch([limit_buy("fgwb3"), limit_buy("fgwb2")])
            assert isinstance(again[0], OrderAccepted)
            assert isinstance(again[1], VenueRejected)
            assert again[1].reason is RejectReason.DUPLICATE_ORDER
            # ... while the clOrdId of the filled market order may be used again: a new order,
            # which "Get order details" then returns (the latest with that clOrdId)
            first = await conn.query_order("BTC/USDT", "fgwm1")
            assert first is not None and first.status is VenueStatus.FILLED
            reused = await conn.place(limit_buy("fgwm1"))
            assert reused.venue_order_id != first.venue_order_id
            latest = await conn.query_order("BTC/USDT", "fgwm1")
            assert latest is not None and latest.status is VenueStatus.NEW
            assert latest.venue_order_id == reused.venue_order_id
            assert latest.client_order_id == "fgwm1"
            await col.stop()

    run(go())


def test_perpetual_contracts_and_positions() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            await conn.place(limit_buy("fgws1", "0.05", "96000", symbol="BTC/USDT:USDT"))
            pending = await conn.open_orders("BTC/USDT:USDT")
            assert pending[0].quantity == Decimal("0.05")
            emu.core.trade_against("BTC/USDT:USDT", Side.SELL, Decimal("20"), Decimal("96000"))
            fills = await wait_for(lambda: col.of(OrderFilled))
            assert fills[0].quantity == Decimal("0.05")
            pos = await conn.positions()
            assert [(p.symbol, p.quantity) for p in pos] == [("BTC/USDT:USDT", Decimal("0.05"))]
            with pytest.raises(VenueRejected):  # 0.00005 BTC is half a lot of 0.01 contracts
                await conn.place(limit_buy("fgws2", "0.00005", "96000", symbol="BTC/USDT:USDT"))
            await col.stop()

    run(go())


def test_bad_signature_is_refused() -> None:
    async def go() -> None:
        emu = OkxEmulator(CREDS)
        await emu.start()
        wrong = replace(CREDS, secret="not-the-secret")
        conn = OkxConnector(settings(emu, credentials=wrong))
        try:
            await conn.sync_time()  # public endpoints: unsigned
            await conn.load_instruments()
            with pytest.raises(VenueRejected) as exc:
                await conn.balances()
            assert "50113" in exc.value.text
            with pytest.raises(VenueRejected) as exc:
                await conn.place(limit_buy("fgwx1"))
            assert "50113" in exc.value.text
            assert not list(emu.core.exchange.orders())
        finally:
            await conn.close()
            await emu.stop()

    run(go())


def test_clock_offset_is_measured_and_used() -> None:
    async def go() -> None:
        skew = 90_000_000_000  # the venue's clock is 90 s ahead of ours
        core = EmulatorCore(default_markets(), balances=default_balances(),
                            clock=lambda: time.time_ns() + skew)
        async with venue(core) as (emu, conn):
            assert abs(conn.offset_ms - 90_000) < 1_000
            await conn.place(limit_buy("fgwt1"))
            conn.offset_ms = 0  # our clock drifted: OKX answers 50102, the connector measures
            assert await conn.balances()  # again and retries once
            assert abs(conn.offset_ms - 90_000) < 1_000
            paths = [p for _, p in emu.core.requests]
            assert paths.count("/api/v5/public/time") == 2

    run(go())


def test_old_fills_come_from_fills_history() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            await conn.place(limit_buy("fgwh1", "0.01", "96000"))
            await conn.place(limit_buy("fgwh2", "0.01", "96000", symbol="BTC/USDT:USDT"))
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("10"), Decimal("96000"))
            emu.core.trade_against("BTC/USDT:USDT", Side.SELL, Decimal("20"), Decimal("96000"))
            week_ago = time.time_ns() - 7 * 86_400 * 1_000_000_000
            got = await conn.fills_since(week_ago)
            assert sorted(f.client_order_id for f in got) == ["fgwh1", "fgwh2"]
            assert ("GET", "/api/v5/trade/fills-history") in emu.core.requests
            recent = await conn.fills_since(time.time_ns() - 60_000_000_000)
            assert {f.trade_id for f in recent} == {f.trade_id for f in got}

    run(go())


def test_venue_client_order_ids_fit_okx_rules() -> None:
    import re

    from connectors.base import venue_client_order_id
    from connectors.okx.connector import CLIENT_ORDER_ID_RULES

    for oid in ("O-1", "20261121-000042", "x" * 40, "ord_7/9"):
        for version in (0, 3):
            cid = venue_client_order_id(oid, version, CLIENT_ORDER_ID_RULES)
            assert re.fullmatch(r"[a-zA-Z0-9]{1,32}", cid), cid
