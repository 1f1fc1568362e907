"""The synthetic market's trade flow (``MarketConfig.trade_rate``): off by default; seeded
Poisson counts and exponential sizes on the lot grid; outside takers that trade against the
book (our resting orders included, as makers) and show on the public feed, as do our own
fills."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from statistics import mean

from connectors.base import BookSnapshot, Liquidity, OrderFilled, PublicTrade, Side
from connectors.paper.config import PaperConfig
from connectors.paper.exchange import PaperExchange, PaperOrder
from connectors.paper.market import MarketConfig, SyntheticMarket
from connectors.paper.venue import PaperConnector

from .helpers import SEC, SPOT, T0, TST_USD, D, FakeClock, async_test, limit

BUY, SELL = Side.BUY, Side.SELL


def _market(seed: int = 7, **kw: object) -> SyntheticMarket[PaperOrder]:
    return SyntheticMarket(MarketConfig(TST_USD, D("100"), **kw), seed)  # type: ignore[arg-type]


def _flow_exchange(rate: str = "2", size: str = "0.05", **kw: object) -> PaperExchange:
    market = MarketConfig(TST_USD, D("100"), levels=3, level_size=D("1"), volatility=D(0),
                          trade_rate=D(rate), trade_size=D(size), **kw)  # type: ignore[arg-type]
    return PaperExchange(PaperConfig(markets=(market,), seed=7, clock=FakeClock(),
                                     balances={"TST": D("100"), "USD": D("100000")}))


def test_the_flow_is_off_by_default() -> None:
    m = _market()
    assert all(m.draw_trades() == [] for _ in range(200))


def test_the_flow_is_seeded_poisson_with_exponential_sizes_on_the_lot() -> None:
    m = _market(trade_rate=D("2"), trade_size=D("0.05"))
    ticks = [m.draw_trades() for _ in range(3000)]
    again = _market(trade_rate=D("2"), trade_size=D("0.05"))
    assert [again.draw_trades() for _ in range(20)] == ticks[:20]  # the same seed, the same
    other = _market(seed=8, trade_rate=D("2"), trade_size=D("0.05"))
    assert [other.draw_trades() for _ in range(20)] != ticks[:20]
    counts = [len(t) for t in ticks]
    assert 1.9 < mean(counts) < 2.1  # Poisson(2): sd of the mean over 3000 ticks ~ 0.026
    sizes = [q for t in ticks for _, q in t]
    assert all(q >= TST_USD.lot_size and q % TST_USD.lot_size == 0 for q in sizes)
    assert 0.046 < float(mean(sizes)) < 0.054  # ~6,000 draws of mean 0.05
    sides = [s for t in ticks for s, _ in t]
    assert 0.47 < sides.count(BUY) / len(sides) < 0.53


def test_the_flow_does_not_move_the_mid_differently() -> None:
    quiet = _market(volatility=D("0.001"))
    busy = _market(volatility=D("0.001"), trade_rate=D("3"))
    path = []
    for i in range(100):
        busy.draw_trades()
        path.append((quiet.advance(T0 + i), busy.advance(T0 + i)))
    assert all(a == b for a, b in path)


def test_synthetic_takers_trade_with_the_market_maker_and_print() -> None:
    ex = _flow_exchange()
    ex.drain_prints()
    for i in range(1, 20):
        ex.tick(T0 + i * SEC)
    prints = ex.drain_prints()
    assert len(prints) > 20
    assert all(p.trade_id.startswith("M") and p.symbol == SPOT for p in prints)
    assert len({p.trade_id for p in prints}) == len(prints)
    assert {p.aggressor for p in prints} == {BUY, SELL}
    for p in prints:  # buyers lift the ask, sellers hit the bid
        assert p.price == (D("100.01") if p.aggressor is BUY else D("99.99"))
    assert ex.drain_events() == []  # not the account's: no event, no balance
    assert ex.drain_prints() == []


def test_a_synthetic_seller_fills_our_resting_best_bid_as_maker() -> None:
    ex = _flow_exchange(rate="3", size="0.2")
    ex.place(limit("bid", BUY, "0.5", "100"), T0)  # between the maker's 99.99 and 100.01
    ex.drain_events()
    ex.drain_prints()
    fills: list[OrderFilled] = []
    prints: list[PublicTrade] = []
    for i in range(1, 60):
        ex.tick(T0 + i * SEC)
        fills += [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
        prints += ex.drain_prints()
        if sum(f.quantity for f in fills) == D("0.5"):
            break
    assert sum(f.quantity for f in fills) == D("0.5")
    assert all(f.price == D("100") and f.liquidity is Liquidity.MAKER for f in fills)
    ours = {p.trade_id: p for p in prints if p.trade_id.startswith("T")}
    assert set(ours) == {f.trade_id for f in fills}  # our fills print with their trade ids
    assert all(p.aggressor is SELL and p.price == D("100") for p in ours.values())
    assert sum(p.size for p in ours.values()) == D("0.5")


@async_test
async def test_the_public_feed_shows_the_synthetic_trades() -> None:
    market = MarketConfig(TST_USD, D("100"), levels=3, level_size=D("1"), volatility=D(0),
                          trade_rate=D("4"), trade_size=D("0.05"))
    conn = PaperConnector(PaperConfig(markets=(market,), seed=7, clock=FakeClock()))
    feed = conn.market_data(SPOT)
    assert isinstance(await feed.__anext__(), BookSnapshot)
    for i in range(1, 6):  # (a tick may draw no trade)
        conn.tick(T0 + i * SEC)
    trades: list[PublicTrade] = []
    while not trades:
        ev = await asyncio.wait_for(feed.__anext__(), 2)
        if isinstance(ev, PublicTrade):
            trades.append(ev)
    assert trades[0].trade_id.startswith("M") and trades[0].size > 0
    assert trades[0].price in (Decimal("99.99"), Decimal("100.01"))
    await conn.close()
    await feed.aclose()
