"""Where the Bybit connector and its emulator follow Bybit's documentation (github.com/
bybit-exchange/docs, ``docs/v5``) on points both once read differently: the coin a spot fee is
charged in ("Spot Fee Currency Instruction", ``enum.mdx``), Get Trade History's 7-day window
(``order/execution.mdx``) and numbers written as plain decimals (Place Order)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import (
    AmendRequest,
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderType,
    Side,
    VenueRejected,
)
from connectors.bybit import schemas
from connectors.bybit.limits import EXECUTION_WINDOW_MS
from connectors.bybit.schemas import Execution

from .helpers import Pair, pair, run

BTC = "BTC/USDT"
DAY_NS = 86_400 * 1_000_000_000


def execution(side: str, *, maker: bool, rate: str, fee_coin: str = "") -> Execution:
    return Execution(symbol="BTCUSDT", orderId="1", orderLinkId="o", side=side, execId="e",
                     execPrice="97000", execQty="0.01", execFee="0.00001", execTime="1",
                     isMaker=maker, feeRate=rate, feeCurrency=fee_coin)


@pytest.mark.parametrize(("side", "maker", "rate", "coin"), [
    ("Buy", False, "0.001", "BTC"),  # positive rate: the coin received
    ("Sell", False, "0.001", "USDT"),
    ("Buy", True, "0.001", "BTC"),
    ("Sell", True, "0.001", "USDT"),
    ("Buy", True, "-0.0001", "USDT"),  # a maker's negative rate: the coin given
    ("Sell", True, "-0.0001", "BTC"),
    ("Buy", False, "-0.0001", "BTC"),  # a taker with a negative maker rate: the coin received
    ("Sell", False, "-0.0001", "USDT"),
])
def test_spot_fee_coin_follows_the_instruction(side: str, maker: bool, rate: str,
                                               coin: str) -> None:
    ex = execution(side, maker=maker, rate=rate)
    assert ex.spot_fee_coin("BTC", "USDT") == coin
    assert ex.to_fill(ex.spot_fee_coin("BTC", "USDT")).fee_currency == coin
    named = execution(side, maker=maker, rate=rate, fee_coin="XYZ")
    assert named.to_fill(coin).fee_currency == "XYZ"  # what Bybit names wins


def test_a_spot_fill_without_fee_currency_is_charged_in_the_coin_received() -> None:
    """The emulator's executions without ``feeCurrency``: the connector's fallback must still
    say BTC for a buy (the base coin) and USDT for a sell."""
    async def go() -> None:
        async with pair() as p:
            named = p.emulator.execution_doc

            def unnamed(fill: OrderFilled) -> dict[str, Any]:
                doc = named(fill)
                doc.pop("feeCurrency", None)
                return doc

            p.emulator.execution_doc = unnamed  # type: ignore[method-assign]
            c = p.connector
            await c.place(OrderRequest("b1", BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                                       Decimal("97000")))
            p.core.trade_against(BTC, Side.SELL, Decimal("0.01"), Decimal("97000"))
            buy = await p.wait_event(OrderFilled, "b1")
            # below the market maker's ask: the first an outside buyer meets
            await c.place(OrderRequest("s1", BTC, Side.SELL, OrderType.LIMIT, Decimal("0.02"),
                                       Decimal("97000")))
            p.core.trade_against(BTC, Side.BUY, Decimal("0.02"), Decimal("97000"))
            sell = await p.wait_event(OrderFilled, "s1")
            assert (buy[0].fee, buy[0].fee_currency) == (Decimal("0.00001"), "BTC")
            assert (sell[0].fee, sell[0].fee_currency) == (Decimal("1.94"), "USDT")
            rest = {f.client_order_id: f for f in await c.fills_since(time.time_ns() - DAY_NS)}
            assert rest["b1"].fee_currency == "BTC" and rest["s1"].fee_currency == "USDT"
    run(go())


def fill_at(p: Pair, coid: str, ts_ns: int) -> None:
    """An outside seller fills order ``coid`` (resting at 97000) at time ``ts_ns``."""
    exchange = p.core.exchange
    p.core.run(lambda _now: exchange.trade_against(BTC, Side.SELL, Decimal("0.001"),
                                                   Decimal("97000"), ts_ns))
    assert exchange.fills()[-1].client_order_id == coid


def test_fills_since_reads_every_week_up_to_now() -> None:
    """Three weeks of fills (20, 10 and 0 days ago): Bybit answers ``startTime`` alone with
    ``[startTime, startTime + 7 days]``, so the connector asks week after week up to now."""
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            await c.place(OrderRequest("w1", BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                                       Decimal("97000")))
            now = time.time_ns()
            for days in (20, 10, 0):
                fill_at(p, "w1", now - days * DAY_NS)
            p.core.requests.clear()
            got = await c.fills_since(now - 21 * DAY_NS)
            assert [round((now - f.ts_ns) / DAY_NS) for f in got] == [20, 10, 0]
            asked = [r for r in p.core.requests if r[1] == "/v5/execution/list"]
            assert len(asked) >= 4  # 21 days: at least 4 windows of at most 7 days (per category)
            windows = c.fill_windows(now - 21 * DAY_NS)
            assert all(0 < end - start <= EXECUTION_WINDOW_MS for start, end in windows)
            assert all(b[0] == a[1] + 1 for a, b in zip(windows, windows[1:], strict=False))
            assert windows[-1][1] >= now // 1_000_000
            # since long ago: no further back than the 2 years Bybit keeps
            far = c.fill_windows(0)
            assert far[0][0] >= now // 1_000_000 - 731 * 86_400_000
    run(go())


def test_the_emulator_holds_to_the_seven_day_window() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            await c.place(OrderRequest("x1", BTC, Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                                       Decimal("97000")))
            now = time.time_ns()
            fill_at(p, "x1", now - 10 * DAY_NS)
            fill_at(p, "x1", now - DAY_NS)
            now_ms = now // 1_000_000
            path = "/v5/execution/list"

            async def ages(**params: Any) -> list[int]:
                env = await c._call(schemas.EXECUTIONS, "GET", path,
                                    {"category": "spot"} | params, category="spot")
                return [round((now_ms - int(e.execTime)) / 86_400_000) for e in env.result.list]

            assert await ages() == [1]  # neither bound: the last 7 days
            assert await ages(startTime=now_ms - 11 * 86_400_000) == [10]  # start + 7 days
            assert await ages(endTime=now_ms - 5 * 86_400_000) == [10]  # end - 7 days
            assert await ages(startTime=now_ms - 7 * 86_400_000, endTime=now_ms) == [1]
            with pytest.raises(VenueRejected, match="10001"):
                await ages(startTime=now_ms - 7 * 86_400_000 - 1, endTime=now_ms)
    run(go())


def test_numbers_are_sent_as_plain_decimals() -> None:
    """``str(Decimal)`` writes ``1E+1`` and ``9.7E+4``; Bybit documents decimal strings, and the
    emulator refuses exponent notation with 10001 as a bad parameter."""
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            req = OrderRequest("e1", "ETH/USDT", Side.BUY, OrderType.LIMIT, Decimal("1E+1"),
                               Decimal("3.3E+3"))
            body = c.order_body(req)
            assert (body["qty"], body["price"]) == ("10", "3300")
            assert isinstance(await c.place(req), OrderAccepted)
            await c.amend(AmendRequest("e1", "ETH/USDT", quantity=Decimal("2E+1"),
                                       price=Decimal("3.2E+3")))
            order = p.core.exchange.order("e1")
            assert order is not None and (order.quantity, order.price) == (20, 3200)
            small = c.order_body(OrderRequest("e2", BTC, Side.BUY, OrderType.LIMIT,
                                              Decimal("1E-5"), Decimal("97000")))
            assert small["qty"] == "0.00001"
            for bad in ("1E+1", "1e1", "-1", "0x10", " 1"):
                with pytest.raises(VenueRejected, match="10001"):
                    await c._call(schemas.ORDER_IDS, "POST", "/v5/order/create",
                                  {"category": "spot", "symbol": "ETHUSDT", "side": "Buy",
                                   "orderType": "Limit", "qty": bad, "price": "3300",
                                   "orderLinkId": "bad1"}, category="spot")
            with pytest.raises(VenueRejected, match="10001"):
                await c._call(schemas.ORDER_IDS, "POST", "/v5/order/create",
                              {"category": "spot", "symbol": "ETHUSDT", "side": "Buy",
                               "orderType": "Limit", "qty": "1", "price": "3.3E+3",
                               "orderLinkId": "bad2"}, category="spot")
    run(go())


def test_fills_since_a_time_ahead_of_the_venues_clock_asks_a_valid_window() -> None:
    """Our clock ahead of Bybit's by more than the slack (or a ``since`` in the future): the
    windows still satisfy 0 <= endTime - startTime <= 7 days, so the venue answers (an empty
    list) instead of refusing the request with 10001."""
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            ahead = time.time_ns() + 10 * 60 * 10**9  # ten minutes past the venue's now
            windows = c.fill_windows(ahead)
            assert windows and all(0 <= end - start <= EXECUTION_WINDOW_MS
                                   for start, end in windows)
            assert list(await c.fills_since(ahead)) == []
    run(go())
