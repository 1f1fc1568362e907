"""Where the Binance connector and its emulator follow binance-spot-api-docs on points both once
read differently: the order limits are the venue's and the account's (exchangeInfo
``rateLimits``, ``GET /api/v3/rateLimit/order``), a cancel replaces the order's clientOrderId
(WebSocket API "Cancel order"), the refusal texts of an order type a symbol does not enable
(errors.md), and decimal parameters (-1100 and its legal range)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from connectors.base import (
    OrderAccepted,
    OrderCanceled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.binance import BinanceConnector
from connectors.binance import errors as E
from connectors.common.ratelimit import Priority
from emulators.binance import BinanceEmulator

from .helpers import CRED, running, settings_for, wait_for

D = Decimal
BTC = "BTC/USDT"
LIMITS = {"weight_limit": 3000, "orders_10s_limit": 7, "orders_1d_limit": 3,
          "listed_orders": (9, 900)}


def bid(coid: str, price: str = "90000") -> OrderRequest:
    return OrderRequest(coid, BTC, Side.BUY, OrderType.LIMIT, D("0.001"), D(price))


def test_order_limits_are_the_venues_and_the_accounts() -> None:
    """exchangeInfo lists 9 per 10 s and 900 per day; the account's rateLimit/order says 7 and
    3: the connector counts against 7 and 3, so the fourth order of the day is held back by
    the connector itself and never reaches the venue (which would answer 429 -1015)."""
    async def main() -> None:
        async with running(emu_options=LIMITS, max_429_wait_s=0.3) as (emu, conn, _):
            windows = conn.limiter.windows
            assert windows["weight"].spec.limit == 3000
            assert (windows["orders_10s"].spec.limit, windows["orders_1d"].spec.limit) == (7, 3)
            assert ("GET", "/api/v3/rateLimit/order") in emu.core.requests
            for n in range(3):
                assert isinstance(await conn.place(bid(f"fgwL{n}")), OrderAccepted)
            with pytest.raises(VenueUnavailable, match="rate limit"):
                await conn.place(bid("fgwL3"))
            placed = [r for r in emu.core.requests if r == ("POST", "/api/v3/order")]
            assert len(placed) == 3 and 429 not in emu.statuses
            # a connector started now reads what the account has used of its day
            other = BinanceConnector(settings_for(emu, max_429_wait_s=0.3))
            try:
                await other.start()
                assert other.limiter.windows["orders_1d"].used == 3
                with pytest.raises(VenueUnavailable, match="rate limit"):
                    await other.place(bid("fgwL4"))
            finally:
                await other.close()
            assert 429 not in emu.statuses
    asyncio.run(main())


def test_exchange_info_limits_hold_until_the_account_says_otherwise() -> None:
    async def main() -> None:
        emu = BinanceEmulator(CRED, **LIMITS)  # type: ignore[arg-type]
        await emu.start()
        conn = BinanceConnector(settings_for(emu))
        try:
            await conn._load_instruments()  # exchangeInfo only
            windows = conn.limiter.windows
            assert (windows["orders_10s"].spec.limit, windows["orders_1d"].spec.limit) == (
                9, 900)
            assert windows["raw_5m"].spec.limit == 61000
            await conn._load_order_limits()
            assert (windows["orders_10s"].spec.limit, windows["orders_1d"].spec.limit) == (7, 3)
            assert conn.limiter._wait_needed({"raw_5m": 1}, Priority.ORDER) <= 0
        finally:
            await conn.close()
            await emu.stop()
    asyncio.run(main())


def test_a_cancel_replaces_the_client_order_id_and_the_order_is_still_found() -> None:
    async def main() -> None:
        async with running() as (emu, conn, events):
            acc = await conn.place(bid("fgwK1"))
            await conn.cancel(BTC, "fgwK1")
            (cxl,) = await wait_for(lambda: events.of(OrderCanceled))
            assert cxl.client_order_id == "fgwK1"  # the report's C (origClientOrderId)
            # the venue no longer knows the order by its first id ...
            assert await conn._fetch_order(BTC, "fgwK1") is None
            # ... but by its orderId, which the connector uses
            state = await conn.query_order(BTC, "fgwK1")
            assert state is not None and state.status is VenueStatus.CANCELED
            assert state.client_order_id == "fgwK1"
            assert state.venue_order_id == acc.venue_order_id
            raw = await conn._fetch_order(BTC, order_id=int(acc.venue_order_id))
            assert raw is not None and raw.clientOrderId != "fgwK1"  # the cancel's id
            # the id is free again: a new order may take it
            again = await conn.place(bid("fgwK1", "90001"))
            assert again.venue_order_id != acc.venue_order_id
            state = await conn.query_order(BTC, "fgwK1")
            assert state is not None and state.status is VenueStatus.NEW
            assert state.venue_order_id == again.venue_order_id
    asyncio.run(main())


def test_a_cancel_with_a_new_client_order_id_renames_the_order() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _):
            acc = await conn.place(bid("fgwN1"))
            resp = await conn._request("DELETE", "/api/v3/order",
                                       {"symbol": "BTCUSDT", "origClientOrderId": "fgwN1",
                                        "newClientOrderId": "myCancel1"}, weight=1)
            assert resp.status == 200
            by_new = await conn._fetch_order(BTC, "myCancel1")
            assert by_new is not None and str(by_new.orderId) == acc.venue_order_id
            assert by_new.clientOrderId == "myCancel1" and by_new.status == "CANCELED"
            gone = await conn._request("GET", "/api/v3/order",
                                       {"symbol": "BTCUSDT", "origClientOrderId": "fgwN1"},
                                       weight=4)
            assert gone.status == 400 and b"-2013" in gone.body
    asyncio.run(main())


@pytest.mark.parametrize("text", E.NOT_FOR_SYMBOL)
def test_type_not_enabled_texts_are_unsupported(text: str) -> None:
    assert E.reject_reason(E.NEW_ORDER_REJECTED, text) is RejectReason.UNSUPPORTED


def test_an_order_type_the_symbol_does_not_enable_is_refused_as_unsupported() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _):
            emu.order_types["BTCUSDT"] = ("LIMIT", "LIMIT_MAKER")
            stop = OrderRequest("fgwT1", BTC, Side.SELL, OrderType.STOP, D("0.001"),
                                stop_price=D("90000"))
            with pytest.raises(VenueRejected) as info:
                await conn.place(stop)
            assert info.value.reason is RejectReason.UNSUPPORTED
            assert "Stop loss orders are not supported for this symbol." in info.value.text
            market = OrderRequest("fgwT2", BTC, Side.BUY, OrderType.MARKET, D("0.001"))
            with pytest.raises(VenueRejected) as info:
                await conn.place(market)
            assert info.value.reason is RejectReason.UNSUPPORTED
            assert "Market orders are not supported for this symbol." in info.value.text
    asyncio.run(main())


def test_decimals_are_plain_and_exponents_are_illegal_characters() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _):
            params = conn._order_params(OrderRequest("fgwD1", BTC, Side.BUY, OrderType.LIMIT,
                                                     D("1E-3"), D("9E+4")))
            assert (params["quantity"], params["price"]) == ("0.001", "90000")
            for field, bad in (("quantity", "1E-3"), ("price", "9E+4"), ("quantity", "-1")):
                order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                         "timeInForce": "GTC", "quantity": "0.001", "price": "90000",
                         "newClientOrderId": "fgwD2"} | {field: bad}
                resp = await conn._request("POST", "/api/v3/order", order, weight=1, orders=1)
                err = conn._error(resp)
                assert resp.status == 400 and err is not None and err.code == E.ILLEGAL_CHARS
                assert err.msg == (f"Illegal characters found in parameter '{field}'; legal "
                                   "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
            assert emu.core.exchange.open_orders() == []
    asyncio.run(main())
