"""Failure scenarios: the stream down during a fill, a place that times out, a storm of rate
limits, duplicated and reordered events, and the dead-man switch (DCP) after a crash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import (
    OrderAccepted,
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueRejected,
)

from .helpers import pair, run, wait_until

BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"


def bid(coid: str, qty: str = "0.01", symbol: str = BTC, price: str = "97000") -> OrderRequest:
    return OrderRequest(coid, symbol, Side.BUY, OrderType.LIMIT, Decimal(qty), Decimal(price))


def test_fill_while_stream_down_is_emitted_once_after_reconnect() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            await c.place(bid("w1"))
            await p.wait_event(OrderAccepted, "w1")
            stream = c._stream
            assert stream is not None
            connects = stream.connects
            p.core.faults.streams_down = True
            await p.emulator.drop_streams()
            await wait_until(lambda: not stream.connected.is_set(), what="stream down")
            p.core.trade_against(BTC, Side.SELL, Decimal("0.004"), Decimal("97000"))
            p.core.faults.streams_down = False
            fills = await p.wait_event(OrderFilled, "w1")
            assert stream.connects > connects
            assert fills[0].trade_id == p.core.exchange.fills()[0].trade_id
            await c.after_reconnect()  # a second catch-up finds nothing new
            assert len(p.of(OrderFilled, "w1")) == 1
    run(go())


def test_place_timeout_then_query_then_retry_is_not_a_second_order() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            p.core.faults.timeout_next = 1
            with pytest.raises(VenueAmbiguous):
                await c.place(bid("x1"))
            state = await c.query_order(BTC, "x1")
            assert state is not None and state.client_order_id == "x1"
            with pytest.raises(VenueRejected) as e:
                await c.place(bid("x1"))
            assert e.value.reason is RejectReason.DUPLICATE_ORDER
            assert [o.client_order_id for o in p.core.exchange.orders()] == ["x1"]
    run(go())


def test_storm_of_rate_limits_places_once_without_a_ban() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            p.core.faults.rate_limit_next = 6
            p.core.faults.retry_after_s = 0
            await c.place(bid("s1"))
            creates = [r for r in p.core.requests if r == ("POST", "/v5/order/create")]
            assert len(creates) == 7
            assert [o.client_order_id for o in p.core.exchange.orders()] == ["s1"]
            assert not c.limiter.banned
            assert p.emulator.ip_banned_until_ms == 0
    run(go())


def test_rate_limit_that_never_ends_is_a_rate_limit_reject() -> None:
    async def go() -> None:
        async with pair(max_429_wait_s=0.3) as p:
            p.core.faults.rate_limit_next = 1000
            p.core.faults.retry_after_s = 0
            with pytest.raises(VenueRejected) as e:
                await p.connector.place(bid("s2"))
            assert e.value.reason is RejectReason.RATE_LIMIT
            assert p.core.exchange.order("s2") is None
    run(go())


def test_duplicated_and_reordered_events_give_each_fill_once() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            p.core.faults.duplicate_events = True
            p.core.faults.reorder_events = True
            await c.place(bid("d1", qty="0.03"))
            for _ in range(3):
                p.core.trade_against(BTC, Side.SELL, Decimal("0.01"), Decimal("97000"))
            fills = await p.wait_event(OrderFilled, "d1", n=3)
            assert sorted(f.trade_id for f in fills) == sorted(
                f.trade_id for f in p.core.exchange.fills())
            assert c.duplicates_dropped > 0
            assert len(p.of(OrderAccepted, "d1")) == 1
    run(go())


def test_dead_man_switch_cancels_everything_after_a_crash() -> None:
    async def go() -> None:
        async with pair(dead_man_s=3) as p:
            c = p.connector
            assert c.dcp_armed
            assert p.emulator.dcp == {"SPOT": 3, "DERIVATIVES": 3}
            await c.place(bid("k1"))
            await c.place(bid("k2", qty="0.01", symbol=PERP, price="90000"))
            exchange = p.core.exchange
            assert len(exchange.open_orders()) == 2
            # crash: the connector's stream and tasks stop, nothing is cancelled by it
            for t in c._tasks:
                t.cancel()
            assert c._stream is not None
            await c._stream.close()
            await wait_until(lambda: not exchange.open_orders(), within_s=8,
                             what="DCP cancels all")
            assert p.emulator.dcp_fired == 2
    run(go(), timeout=20)


def test_ip_limit_answers_403_and_the_connector_stops_sending() -> None:
    async def go() -> None:
        from connectors.base import VenueUnavailable
        async with pair() as p:
            p.emulator.ip_limit = 1  # everything from now on is over the IP limit
            p.emulator._ip_window = (-1, 0)
            await p.connector.balances()  # the first of the window passes
            with pytest.raises(VenueUnavailable):
                await p.connector.place(bid("ip1"))
            assert p.connector.limiter.banned
            sent = len(p.core.requests)
            with pytest.raises(VenueUnavailable):
                await p.connector.place(bid("ip2"))
            assert len(p.core.requests) == sent  # refused locally, nothing sent
            assert not (await p.connector.health()).connected
    run(go())
