"""Connector <-> emulator over loopback: the REST endpoints, the user data stream, errors."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.base import (
    AmendRequest,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueRejected,
    VenueStatus,
)
from connectors.binance import BinanceConnector
from connectors.common.credentials import Credentials
from emulators.binance import BinanceEmulator, binance_balances, binance_markets
from emulators.core import EmulatorCore

from .helpers import CRED, running, settings_for, wait_for

D = Decimal


def buy(coid: str, price: str = "96000", qty: str = "0.01", symbol: str = "BTC/USDT",
        **kw: object) -> OrderRequest:
    return OrderRequest(coid, symbol, Side.BUY, OrderType.LIMIT, D(qty), D(price), **kw)  # type: ignore[arg-type]


def test_instruments_and_balances() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _):
            inst = {i.symbol: i for i in await conn.instruments()}
            assert set(inst) == {"BTC/USDT", "ETH/USDT"}
            btc = inst["BTC/USDT"]
            assert (btc.venue_symbol, btc.tick_size, btc.lot_size) == ("BTCUSDT", D("0.01"),
                                                                      D("0.00001"))
            assert (btc.min_qty, btc.min_notional) == (D("0.00001"), D("5"))
            bal = {b.asset: b for b in await conn.balances()}
            assert bal["USDT"].free == D("1000000")
            assert conn.limiter.windows["weight"].used >= emu.limits.weight_used - 1
    asyncio.run(main())


def test_place_ack_fill_and_fills_since() -> None:
    async def main() -> None:
        async with running() as (emu, conn, events):
            # the tickers are read at start: the gateway's price checks have a price at once
            assert conn.last_price("BTC/USDT") == emu.core.exchange.last_price("BTC/USDT")
            t0 = time.time_ns()
            acc = await conn.place(buy("fgwA1"))
            assert isinstance(acc, OrderAccepted) and acc.venue_order_id == "1"
            await wait_for(lambda: len(events.of(OrderAccepted)) == 1)
            emu.core.trade_against("BTC/USDT", Side.SELL, D("6"), D("96000"))
            await wait_for(lambda: len(events.of(OrderFilled)) == 1)
            fill = events.of(OrderFilled)[0]
            assert fill.client_order_id == "fgwA1" and fill.trade_id.startswith("BTCUSDT:")
            assert (fill.quantity, fill.price, fill.liquidity) == (D("0.01"), D("96000"),
                                                                   Liquidity.MAKER)
            # Binance takes a buy's commission from the base asset received (commission FAQ)
            assert fill.fee == D("0.00001") and fill.fee_currency == "BTC"
            assert conn.last_price("BTC/USDT") == D("96000")
            rest = await conn.fills_since(t0 - 1_000_000_000)
            assert [(f.trade_id, f.client_order_id, f.quantity) for f in rest] == [
                (fill.trade_id, "fgwA1", D("0.01"))]
            state = await conn.query_order("BTC/USDT", "fgwA1")
            assert state is not None and state.status is VenueStatus.FILLED
    asyncio.run(main())


def test_cancel_query_open_orders() -> None:
    async def main() -> None:
        async with running() as (_, conn, events):
            await conn.place(buy("fgwC1"))
            open_ = await conn.open_orders()
            assert [s.client_order_id for s in open_] == ["fgwC1"]
            assert open_[0].price == D("96000") and open_[0].symbol == "BTC/USDT"
            await conn.cancel("BTC/USDT", "fgwC1")
            await wait_for(lambda: len(events.of(OrderCanceled)) == 1)
            ev = events.of(OrderCanceled)[0]
            assert ev.client_order_id == "fgwC1" and ev.filled_quantity == 0
            with pytest.raises(VenueRejected) as err:
                await conn.cancel("BTC/USDT", "fgwC1")
            assert err.value.reason is RejectReason.UNKNOWN_ORDER
            assert await conn.query_order("BTC/USDT", "nope") is None
            state = await conn.query_order("BTC/USDT", "fgwC1")
            assert state is not None and state.status is VenueStatus.CANCELED
    asyncio.run(main())


def test_rejects_are_mapped() -> None:
    async def main() -> None:
        async with running() as (_, conn, _events):
            cases = [
                (buy("r1", price="96000.001"), RejectReason.PRICE_FILTER),
                (buy("r2", qty="0.000001"), RejectReason.LOT_FILTER),
                (buy("r3", qty="0.00001"), RejectReason.MIN_NOTIONAL),
                (buy("r4", qty="100"), RejectReason.INSUFFICIENT_BALANCE),
                (buy("r5", price="98000", post_only=True), RejectReason.POST_ONLY_WOULD_TAKE),
            ]
            for req, reason in cases:
                with pytest.raises(VenueRejected) as err:
                    await conn.place(req)
                assert err.value.reason is reason, (req, err.value)
            assert conn.tracked == {}
    asyncio.run(main())


def test_amend_by_cancel_replace() -> None:
    async def main() -> None:
        async with running() as (emu, conn, events):
            await conn.place(buy("fgwM1", qty="0.02"))
            emu.core.trade_against("BTC/USDT", Side.SELL, D("5.005"), D("96000"))
            await wait_for(lambda: len(events.of(OrderFilled)) == 1)
            await conn.amend(AmendRequest("fgwM1", "BTC/USDT", quantity=D("0.03"),
                                          price=D("95900")))
            await wait_for(lambda: len(events.of(OrderAmended)) == 1)
            amended = events.of(OrderAmended)[0]
            assert (amended.client_order_id, amended.quantity, amended.price) == (
                "fgwM1", D("0.03"), D("95900"))
            state = await conn.query_order("BTC/USDT", "fgwM1")
            assert state is not None and state.status is VenueStatus.NEW
            assert (state.quantity, state.filled_quantity, state.price) == (
                D("0.03"), D("0.005"), D("95900"))
            assert state.venue_order_id == amended.venue_order_id
            open_ = emu.core.exchange.open_orders()
            assert len(open_) == 1 and open_[0].quantity == D("0.025")
            assert not events.of(OrderCanceled)
            await conn.cancel("BTC/USDT", "fgwM1")
            await wait_for(lambda: len(events.of(OrderCanceled)) == 1)
            # the one cancel is of the new venue order: the replace's own CANCELED (of the old
            # one, streamed before it) was dropped
            [canceled] = events.of(OrderCanceled)
            assert canceled.venue_order_id == amended.venue_order_id
            assert canceled.filled_quantity == D("0.005")
            with pytest.raises(VenueRejected) as err:
                await conn.amend(AmendRequest("fgwM1", "BTC/USDT", price=D("95000")))
            assert err.value.reason is RejectReason.TOO_LATE
    asyncio.run(main())


def test_amend_new_order_refused_cancels() -> None:
    async def main() -> None:
        async with running() as (_, conn, events):
            await conn.place(buy("fgwM2", qty="0.01"))
            with pytest.raises(VenueRejected) as err:
                await conn.amend(AmendRequest("fgwM2", "BTC/USDT", quantity=D("100")))
            assert err.value.reason is RejectReason.INSUFFICIENT_BALANCE
            await wait_for(lambda: len(events.of(OrderCanceled)) == 1)
            assert await conn.open_orders() == []
    asyncio.run(main())


def test_cancel_all() -> None:
    async def main() -> None:
        async with running() as (_, conn, _events):
            await conn.place(buy("fgwX1"))
            await conn.place(buy("fgwX2", price="95000"))
            await conn.place(buy("fgwX3", price="3000", qty="0.01", symbol="ETH/USDT"))
            assert await conn.cancel_all("BTC/USDT") == 2
            assert await conn.cancel_all() == 1
            assert await conn.cancel_all() == 0
            assert await conn.cancel_all("ETH/USDT") == 0
    asyncio.run(main())


def test_bad_signature_gets_binance_error() -> None:
    async def main() -> None:
        emu = BinanceEmulator(CRED)
        await emu.start()
        wrong = Credentials(CRED.api_key, "not-the-secret")
        conn = BinanceConnector(settings_for(emu, wrong))
        try:
            with pytest.raises(VenueRejected) as err:
                await conn.balances()
            assert "-1022" in err.value.text and "Signature" in err.value.text
            assert emu.statuses[-1] == 400
            bad_key = BinanceConnector(settings_for(emu, Credentials("other-key", "x")))
            with pytest.raises(VenueRejected) as err:
                await bad_key.balances()
            assert "-2015" in err.value.text and emu.statuses[-1] == 401
            await bad_key.close()
        finally:
            await conn.close()
            await emu.stop()
    asyncio.run(main())


def test_clock_offset_and_recv_window() -> None:
    async def main() -> None:
        skew_ns = 8_000_000_000
        core = EmulatorCore(binance_markets(), balances=binance_balances(),
                            clock=lambda: time.time_ns() + skew_ns)
        async with running(core) as (_, conn, _events):
            assert abs(conn.offset_ms - 8000) < 200
            assert await conn.balances()
            conn.offset_ms = 0
            with pytest.raises(VenueRejected) as err:
                await conn.balances()
            assert "-1021" in err.value.text and "recvWindow" in err.value.text
            await conn.sync_time()
            assert await conn.balances()
    asyncio.run(main())


def test_ed25519_key_round_trip() -> None:
    async def main() -> None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        cred = Credentials("ed-key-0000000000001", "", private_key_pem=pem)
        async with running(credentials=cred) as (_, conn, events):
            assert conn.signer.kind == "ed25519"
            assert conn.stream.connected.is_set()
            await conn.place(buy("fgwE1"))
            await wait_for(lambda: len(events.of(OrderAccepted)) == 1)
    asyncio.run(main())
