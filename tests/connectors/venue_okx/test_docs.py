"""Where the OKX connector and its emulator follow OKX's docs-v5 on points both once read
differently: ``reduceOnly`` is a Boolean ("Trade / Place order"), sizes and prices are decimal
strings (no exponent), and a spot fill's fee is in the currency received (``feeCcy``: the
docs' own "Get order details" / "Get transaction details" examples show BTC for a BTC-USDT buy,
the orders channel's example USDT for a sell)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from connectors.base import (
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderType,
    Side,
    VenueRejected,
)
from connectors.okx import schemas

from .helpers import Collector, limit_buy, run, venue, wait_for

SWAP = "BTC/USDT:USDT"


def test_reduce_only_is_sent_and_read_as_a_boolean() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            req = OrderRequest("fgwr1", SWAP, Side.SELL, OrderType.LIMIT, Decimal("0.05"),
                               Decimal("98000"), reduce_only=True)
            _, body = conn._order_body(req)
            assert body["reduceOnly"] is True
            assert orjson.loads(orjson.dumps(body))["reduceOnly"] is True
            # no position: the venue refuses the reduce-only order, as it would not were the
            # flag not read (it would rest as a plain sell)
            with pytest.raises(VenueRejected):
                await conn.place(req)
            assert emu.core.exchange.order("fgwr1") is None
            assert await conn.open_orders(SWAP) == []
            # a position of 0.05, then a reduce-only sell of it rests
            await conn.place(limit_buy("fgwr2", "0.05", "96000", symbol=SWAP))
            emu.core.trade_against(SWAP, Side.SELL, Decimal("20"), Decimal("96000"))
            await wait_for(lambda: col.of(OrderFilled))
            await conn.place(OrderRequest("fgwr3", SWAP, Side.SELL, OrderType.LIMIT,
                                          Decimal("0.05"), Decimal("98000"), reduce_only=True))
            assert [o.client_order_id for o in await conn.open_orders(SWAP)] == ["fgwr3"]
            resting = emu.core.exchange.order("fgwr3")
            assert resting is not None and resting.reduce_only
            await col.stop()

    run(go())


async def _place_raw(conn: Any, **fields: Any) -> tuple[str, str]:
    body = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell", "ordType": "limit",
            "sz": "1", "px": "98000", "clOrdId": "raw1"} | fields
    _, env = await conn._call("POST", "/api/v5/trade/order", schemas.ACKS, body=body,
                              cost="order:BTC-USDT-SWAP", mutating=True)
    return env.data[0].sCode, env.data[0].sMsg


def test_the_emulator_refuses_what_is_not_a_boolean_or_a_decimal_string() -> None:
    async def go() -> None:
        async with venue() as (_, conn):
            assert await _place_raw(conn, reduceOnly="yes") == ("51000",
                                                                "Parameter reduceOnly error")
            assert await _place_raw(conn, reduceOnly=1, clOrdId="raw2") == (
                "51000", "Parameter reduceOnly error")
            for sz in ("1E+0", "1e0", "-1", "0x1"):
                assert await _place_raw(conn, sz=sz) == ("51000", "Parameter sz error")
            assert await _place_raw(conn, px="9.8E+4") == ("51000", "Parameter px error")
            assert (await _place_raw(conn, clOrdId="raw3"))[0] == "0"
            assert (await _place_raw(conn, clOrdId="raw4", reduceOnly=False))[0] == "0"

    run(go())


def test_sizes_and_prices_are_plain_decimals() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            _, body = conn._order_body(OrderRequest("fgwp1", "BTC/USDT", Side.BUY,
                                                    OrderType.LIMIT, Decimal("1E-2"),
                                                    Decimal("9.6E+4")))
            assert (body["sz"], body["px"]) == ("0.01", "96000")
            acc = await conn.place(OrderRequest("fgwp1", "BTC/USDT", Side.BUY, OrderType.LIMIT,
                                                Decimal("1E-2"), Decimal("9.6E+4")))
            assert isinstance(acc, OrderAccepted)

    run(go())


def test_a_spot_sell_pays_its_fee_in_the_quote_currency() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            await conn.place(OrderRequest("fgwf1", "BTC/USDT", Side.SELL, OrderType.LIMIT,
                                          Decimal("0.01"), Decimal("97000")))
            emu.core.trade_against("BTC/USDT", Side.BUY, Decimal("0.01"), Decimal("97000"))
            (fill,) = await wait_for(lambda: col.of(OrderFilled))
            assert (fill.fee, fill.fee_currency) == (Decimal("0.97"), "USDT")
            (rest,) = await conn.fills_since(time.time_ns() - 60_000_000_000)
            assert (rest.fee, rest.fee_currency) == (Decimal("0.97"), "USDT")
            await col.stop()

    run(go())


@pytest.mark.parametrize(("side", "ccy"), [(Side.BUY, "BTC"), (Side.SELL, "USDT")])
def test_an_orders_fee_currency_is_the_one_received(side: Side, ccy: str) -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            price = "90000" if side is Side.BUY else "99000"
            await conn.place(OrderRequest("fgwc1", "BTC/USDT", side, OrderType.LIMIT,
                                          Decimal("0.01"), Decimal(price)))
            order = emu.core.exchange.order("fgwc1")
            assert order is not None
            assert emu.wire.order(order)["feeCcy"] == ccy

    run(go())
