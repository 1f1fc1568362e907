"""The synthetic market: seeded random walk on the tick grid, recorded replay, the market maker's
levels, replenishment, and quotes that trade with our resting orders as the mid moves."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import Liquidity, OrderFilled, Side
from connectors.paper.book import OrderBook
from connectors.paper.exchange import PaperOrder
from connectors.paper.market import MarketConfig, SyntheticMarket

from .helpers import SEC, SPOT, T0, TST_USD, D, exchange, limit

BUY, SELL = Side.BUY, Side.SELL


def _walk(seed: int, n: int = 50) -> list[Decimal]:
    market: SyntheticMarket[PaperOrder] = SyntheticMarket(
        MarketConfig(TST_USD, D("100"), volatility=D("0.001")), seed
    )
    return [market.advance(T0 + i) for i in range(n)]


def test_random_walk_is_seeded_decimal_and_on_the_tick() -> None:
    walk = _walk(1)
    assert walk == _walk(1) and walk != _walk(2)
    assert all(isinstance(m, Decimal) and m % D("0.01") == 0 for m in walk)
    assert len(set(walk)) > 10
    assert all(abs(m - D("100")) < 20 for m in walk)


def test_recorded_market_replays_its_points() -> None:
    path = [(T0, D("100")), (T0 + SEC, D("101.5")), (T0 + 3 * SEC, D("99.004"))]
    market: SyntheticMarket[PaperOrder] = SyntheticMarket(
        MarketConfig(TST_USD, D("1"), path=path), 0
    )
    assert market.mid == D("100")
    times = [T0 - 1, T0, T0 + SEC - 1, T0 + SEC, T0 + 2 * SEC, T0 + 3 * SEC, T0 + 99 * SEC]
    assert [market.advance(t) for t in times] == [
        D("100"),
        D("100"),
        D("100"),
        D("101.5"),
        D("101.5"),
        D("99"),
        D("99"),
    ]


def test_recorded_market_must_be_in_time_order() -> None:
    with pytest.raises(ValueError):
        SyntheticMarket(MarketConfig(TST_USD, D("1"), path=[(T0, D("1")), (T0 - 1, D("2"))]), 0)


def test_market_maker_levels_around_the_mid() -> None:
    config = MarketConfig(
        TST_USD, D("100"), levels=3, level_size=D("2"), half_spread_ticks=2, level_step_ticks=5
    )
    market: SyntheticMarket[PaperOrder] = SyntheticMarket(config, 0)
    book: OrderBook[PaperOrder] = OrderBook()
    market.requote(book, lambda *_: None)
    assert book.levels(BUY) == [(D("99.98"), D("2")), (D("99.93"), D("2")), (D("99.88"), D("2"))]
    assert book.levels(SELL) == [
        (D("100.02"), D("2")),
        (D("100.07"), D("2")),
        (D("100.12"), D("2")),
    ]


def test_taken_liquidity_is_replenished() -> None:
    ex = exchange(levels=3)
    ex.place(limit("b", BUY, "2.5", "100.03"), T0)  # takes 100.01, 100.02 and half of 100.03
    assert ex.book(SPOT).levels(SELL) == [
        (D("100.01"), D("1")),
        (D("100.02"), D("1")),
        (D("100.03"), D("1")),
    ]


def test_replenished_quote_goes_behind_our_order_at_the_same_price() -> None:
    ex = exchange(levels=1)  # maker: 99.99 / 100.01
    ex.place(limit("ours", SELL, "1", "100.01"), T0)  # behind the maker at 100.01
    ex.place(limit("t1", BUY, "0.5", "100.01"), T0)  # takes half the maker's quote
    queue = ex.book(SPOT).queue(SELL, D("100.01"))
    assert [o.owner.client_order_id if o.owner else "maker" for o in queue] == ["ours", "maker"]
    assert queue[1].remaining == D("1")
    ex.drain_events()
    ex.place(limit("t2", BUY, "1", "100.01"), T0)
    fills = [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
    assert [(f.client_order_id, f.liquidity) for f in fills] == [
        ("ours", Liquidity.MAKER),
        ("t2", Liquidity.TAKER),
    ]


def test_a_moving_market_fills_our_resting_order_as_maker() -> None:
    path = [(T0, D("100")), (T0 + SEC, D("99"))]
    ex = exchange(levels=3, path=path)
    ex.place(limit("bid", BUY, "2", "99.5"), T0)  # below the maker's 99.99 bid: rests
    ex.drain_events()
    ex.tick(T0 + SEC)  # mid 99: the maker's asks 99.01..99.03 land on our bid
    fills = [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
    assert [(f.quantity, f.price, f.liquidity) for f in fills] == [
        (D("1"), D("99.5"), Liquidity.MAKER),
        (D("1"), D("99.5"), Liquidity.MAKER),
    ]
    # the 99.01 and 99.02 quotes traded away whole; they come back on the next requote
    assert ex.book(SPOT).best_bid() == D("98.99") and ex.book(SPOT).best_ask() == D("99.03")
    ex.tick(T0 + 2 * SEC)
    assert ex.book(SPOT).best_ask() == D("99.01")
