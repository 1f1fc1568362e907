"""PaperConnector through the contract: cancel, cancel_all, duplicates, queries, fills_since,
the event stream and the market clock."""

from __future__ import annotations

import asyncio

import pytest

from connectors.base import (
    Connector,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)
from connectors.paper import PaperConfig, PaperConnector

from .helpers import PERP, SPOT, D, FakeClock, async_test, connector, limit

BUY, SELL = Side.BUY, Side.SELL


def test_venue_info_and_capabilities() -> None:
    venue = connector()
    assert isinstance(venue, Connector) and venue.name == "paper"
    caps = venue.capabilities
    assert caps.order_types == frozenset(OrderType) and caps.time_in_force == frozenset(TimeInForce)
    assert caps.amend and caps.amend_keeps_priority_on_qty_down and caps.bulk_cancel
    assert caps.post_only and caps.reduce_only
    rules = venue.info.client_order_id_rules
    assert rules.max_length == 36 and rules.pattern == r"^[A-Za-z0-9_-]+$"


@async_test
async def test_default_instruments_near_real_prices() -> None:
    venue = PaperConnector(PaperConfig())
    by_symbol = {i.symbol: i for i in await venue.instruments()}
    assert set(by_symbol) == {"BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT:USDT"}
    btc = by_symbol["BTC/USDT"]
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == (D("0.01"), D("0.00001"), D("5"))
    assert by_symbol["ETH/USDT"].lot_size == D("0.0001")
    assert by_symbol["SOL/USDT"].lot_size == D("0.001")
    perp = by_symbol["BTC/USDT:USDT"]
    assert (perp.tick_size, perp.lot_size, perp.settle) == (D("0.1"), D("0.001"), "USDT")
    mids = {s: venue.exchange.market(s).mid for s in by_symbol}
    assert mids == {"BTC/USDT": 97000, "ETH/USDT": 3400, "SOL/USDT": 180, "BTC/USDT:USDT": 97000}
    balances = {b.asset: b.free for b in await venue.balances()}
    assert balances == {"BTC": 10, "ETH": 100, "SOL": 1000, "USDT": 1_000_000}


@async_test
async def test_place_batch_without_a_batch_endpoint_places_one_by_one() -> None:
    """Connector.place_batch's default: one outcome per order, in order, never raised."""
    venue = connector()
    assert not venue.capabilities.batch_place
    out = await venue.place_batch([limit("b1", BUY, "1", "99"), limit("b1", BUY, "1", "98"),
                                   limit("b2", BUY, "1", "97")])
    assert isinstance(out[0], OrderAccepted) and isinstance(out[2], OrderAccepted)
    assert isinstance(out[1], VenueRejected)
    assert out[1].reason is RejectReason.DUPLICATE_ORDER
    assert await venue.place_batch([]) == []


@async_test
async def test_cancel_and_its_rejects() -> None:
    venue = connector()
    await venue.place(limit("a", BUY, "1", "99"))
    await venue.cancel(SPOT, "a")
    state = await venue.query_order(SPOT, "a")
    assert state is not None and state.status is VenueStatus.CANCELED
    for symbol, cid, reason in [
        (SPOT, "a", RejectReason.TOO_LATE),
        (SPOT, "nope", RejectReason.UNKNOWN_ORDER),
        (PERP, "a", RejectReason.UNKNOWN_ORDER),
    ]:
        with pytest.raises(VenueRejected) as info:
            await venue.cancel(symbol, cid)
        assert info.value.reason is reason
    assert [type(e) for e in venue.drain_nowait()] == [OrderAccepted, OrderCanceled]


@async_test
async def test_cancel_all_by_symbol_and_everything() -> None:
    venue = connector()
    for i in range(3):
        await venue.place(limit(f"s{i}", BUY, "1", f"9{i}"))
    await venue.place(limit("p0", BUY, "1", "90", symbol=PERP))
    venue.drain_nowait()
    assert await venue.cancel_all(SPOT) == 3
    canceled = venue.drain_nowait()
    assert [(type(e), e.client_order_id) for e in canceled] == [
        (OrderCanceled, f"s{i}") for i in range(3)
    ]
    assert [o.client_order_id for o in await venue.open_orders()] == ["p0"]
    assert await venue.cancel_all() == 1
    assert await venue.cancel_all() == 0
    assert all(b.locked == 0 for b in await venue.balances())
    with pytest.raises(VenueRejected):
        await venue.cancel_all("NOPE/USD")


@async_test
async def test_duplicate_client_order_id_of_an_open_or_past_order() -> None:
    venue = connector()
    await venue.place(limit("dup", BUY, "1", "99"))
    with pytest.raises(VenueRejected) as info:
        await venue.place(limit("dup", SELL, "1", "101"))
    assert info.value.reason is RejectReason.DUPLICATE_ORDER
    await venue.cancel(SPOT, "dup")
    with pytest.raises(VenueRejected) as info:
        await venue.place(limit("dup", BUY, "1", "99"))
    assert info.value.reason is RejectReason.DUPLICATE_ORDER
    with pytest.raises(VenueRejected):  # a rejected request leaves its id free
        await venue.place(limit("fresh", BUY, "1000000", "99"))
    await venue.place(limit("fresh", BUY, "1", "99"))


@async_test
async def test_query_and_open_orders() -> None:
    venue = connector()
    assert await venue.query_order(SPOT, "x") is None
    accepted = await venue.place(limit("x", BUY, "1", "99"))
    await venue.place(limit("y", SELL, "1", "101", symbol=PERP))
    state = await venue.query_order(SPOT, "x")
    assert state is not None
    assert (state.venue_order_id, state.status, state.quantity, state.price) == (
        accepted.venue_order_id,
        VenueStatus.NEW,
        D("1"),
        D("99"),
    )
    assert await venue.query_order(PERP, "x") is None
    assert [o.client_order_id for o in await venue.open_orders(SPOT)] == ["x"]
    assert [o.client_order_id for o in await venue.open_orders()] == ["x", "y"]


@async_test
async def test_fills_since_keeps_every_fill_and_filters_by_time() -> None:
    clock = FakeClock()
    venue = connector(clock=clock)
    await venue.place(limit("a", SELL, "2", "100"))
    t1 = clock.advance(1)
    await venue.place(limit("b", BUY, "1", "100"))
    t2 = clock.advance(1)
    await venue.place(limit("c", BUY, "1", "100"))
    every = await venue.fills_since(0)
    assert [(f.client_order_id, f.ts_ns) for f in every] == [
        ("a", t1),
        ("b", t1),
        ("a", t2),
        ("c", t2),
    ]
    assert len({f.trade_id for f in every}) == 4
    assert [f.client_order_id for f in await venue.fills_since(t2)] == ["a", "c"]
    assert await venue.fills_since(t2 + 1) == []
    streamed = [e for e in venue.drain_nowait() if isinstance(e, OrderFilled)]
    assert streamed == list(every)


@async_test
async def test_events_come_in_order_and_the_stream_ends_on_close() -> None:
    venue = connector(levels=2)
    accepted = await venue.place(limit("a", BUY, "1.5", "100.02"))
    await venue.place(limit("b", BUY, "1", "99"))
    await venue.cancel(SPOT, "b")
    await venue.close()
    seen = [e async for e in venue.events()]
    assert seen[0] is accepted
    assert [(type(e).__name__, e.client_order_id) for e in seen] == [
        ("OrderAccepted", "a"),
        ("OrderFilled", "a"),
        ("OrderFilled", "a"),
        ("OrderAccepted", "b"),
        ("OrderCanceled", "b"),
    ]
    assert [e.price for e in seen if isinstance(e, OrderFilled)] == [D("100.01"), D("100.02")]


@async_test
async def test_market_clock_ticks_while_started_and_stops_on_close() -> None:
    venue = connector(levels=1, volatility="0.001", tick_interval_s=0.001)
    mid0 = venue.exchange.market(SPOT).mid
    await venue.start()
    assert venue.running and (await venue.health()).connected
    mids = set()
    for _ in range(20):
        await asyncio.wait_for(venue.next_tick(), timeout=5)
        mids.add(venue.exchange.market(SPOT).mid)
    assert mids - {mid0}  # the random walk moved
    await venue.close()
    assert not venue.running
    assert (await venue.health()).detail == "clock stopped"
