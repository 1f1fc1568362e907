"""Fees, liquidity flags, balance locks and settlement, perpetual positions."""

from __future__ import annotations

import pytest

from connectors.base import (
    Liquidity,
    OrderCanceled,
    OrderFilled,
    Position,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)

from .helpers import PERP, SEC, SPOT, T0, D, balance, exchange, limit, market

BUY, SELL = Side.BUY, Side.SELL
IOC = TimeInForce.IOC
START_USD, START_TST = D("100000"), D("100")


def test_fees_and_liquidity_of_maker_and_taker() -> None:
    ex = exchange(levels=3)  # market maker asks 100.01, 100.02, 100.03 (1 each)
    ex.place(limit("rest", BUY, "2", "99"), T0)  # rests under the maker's 99.99 bid
    ex.place(limit("take", BUY, "1.5", "100.02"), T0)
    fills = [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
    assert [(f.quantity, f.price, f.liquidity) for f in fills] == [
        (D("1"), D("100.01"), Liquidity.TAKER),
        (D("0.5"), D("100.02"), Liquidity.TAKER),
    ]
    # a buy's fee comes out of the base asset received (Binance, Bybit and OKX spot)
    assert [f.fee for f in fills] == [D("1") * D("0.0005"), D("0.5") * D("0.0005")]
    assert {f.fee_currency for f in fills} == {"TST"}
    assert balance(ex, "TST") == (START_TST + D("1.5") - D("0.00075"), D("0"))
    ex.place(limit("hit", SELL, "2", "99"), T0)  # our own sell takes the maker's bids first
    ours = [
        e for e in ex.drain_events() if isinstance(e, OrderFilled) and e.client_order_id == "rest"
    ]
    assert ours == []  # the maker's 99.99..99.97 bids are ahead
    ex.place(limit("hit2", SELL, "4", "99"), T0)  # three maker levels (replenished), then ours
    fills = [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
    ours = [f for f in fills if f.client_order_id == "rest"]
    assert [(f.price, f.liquidity, f.fee, f.fee_currency) for f in ours] == [
        (D("99"), Liquidity.MAKER, D("1") * D("0.0002"), "TST")  # 1 TST bought: 0.0002 TST
    ]
    sold = [f for f in fills if f.client_order_id == "hit2"]
    assert sold and all(  # a sell's fee comes out of the quote asset received
        (f.fee, f.fee_currency) == (f.quantity * f.price * D("0.0005"), "USD") for f in sold)


def test_unfundable_orders_are_rejected_without_a_trace() -> None:
    ex = exchange(balances={"USD": D("1000"), "TST": D("1")})
    with pytest.raises(VenueRejected) as info:
        ex.place(limit("b", BUY, "10.01", "100"), T0)  # 1001 > 1000
    assert info.value.reason is RejectReason.INSUFFICIENT_BALANCE
    with pytest.raises(VenueRejected) as info:
        ex.place(limit("s", SELL, "1.001", "100"), T0)
    assert info.value.reason is RejectReason.INSUFFICIENT_BALANCE
    assert ex.drain_events() == [] and ex.query_order(SPOT, "b") is None
    assert balance(ex, "USD") == (D("1000"), D("0")) and balance(ex, "TST") == (D("1"), D("0"))
    ex.place(limit("b", BUY, "10", "100"), T0)  # 1000 fits: the fee is paid in TST received
    assert balance(ex, "USD") == (D("0"), D("1000"))


def test_locks_on_accept_and_released_on_cancel() -> None:
    ex = exchange()
    ex.place(limit("b", BUY, "2", "99"), T0)
    ex.place(limit("s", SELL, "3", "101"), T0)
    buy_lock = D("2") * D("99")  # quantity x price (the fee is paid in the TST received)
    assert balance(ex, "USD") == (START_USD - buy_lock, buy_lock)
    assert balance(ex, "TST") == (START_TST - 3, D("3"))
    ex.cancel(SPOT, "b", T0)
    ex.cancel(SPOT, "s", T0)
    assert balance(ex, "USD") == (START_USD, D("0"))
    assert balance(ex, "TST") == (START_TST, D("0"))


def test_settlement_after_fills_with_price_improvement() -> None:
    ex = exchange()
    ex.place(limit("ask", SELL, "1", "99.5"), T0)
    ex.place(limit("bid", BUY, "3", "100"), T0)  # takes 1 at 99.5, rests 2 at 100
    # the seller: -1 TST, +99.5 - maker fee (USD); the buyer: +1 TST - taker fee (TST), -99.5,
    # 2 x 100 locked
    lock = D("2") * D("100")
    usd = START_USD + (D("99.5") - D("99.5") * D("0.0002")) - D("99.5")
    assert balance(ex, "USD") == (usd - lock, lock)
    assert balance(ex, "TST") == (START_TST - D("0.0005"), D("0"))
    ex.place(limit("hit", SELL, "2", "100"), T0)  # fills the rest of bid: lock fully released
    assert balance(ex, "USD")[1] == 0
    assert ex.query_order(SPOT, "bid").status is VenueStatus.FILLED  # type: ignore[union-attr]


def test_market_buy_reserves_best_ask_plus_protection() -> None:
    ex = exchange(levels=1)  # one ask at 100.01
    ex.place(market("m", BUY, "3"), T0)  # 1 fills at 100.01; the rest is cancelled
    events = ex.drain_events()
    assert isinstance(events[-1], OrderCanceled)
    assert balance(ex, "USD") == (START_USD - D("100.01"), D("0"))
    assert balance(ex, "TST") == (START_TST + 1 - D("0.0005"), D("0"))
    with pytest.raises(VenueRejected) as info:  # reserve: 1000 x 105.02 > 100,000
        ex.place(market("m2", BUY, "1000"), T0)
    assert info.value.reason is RejectReason.INSUFFICIENT_BALANCE


def test_perpetual_position_entry_and_realised_pnl() -> None:
    ex = exchange()
    ex.place(limit("a1", SELL, "1", "100", symbol=PERP), T0)
    ex.place(limit("a2", SELL, "1", "102", symbol=PERP), T0)
    ex.cancel(PERP, "a1", T0)
    ex.cancel(PERP, "a2", T0)
    assert ex.positions() == [] and balance(ex, "USD") == (START_USD, D("0"))
    # a counterparty: our own resting sells, then our buy takes them: net flat, fees paid
    ex.place(limit("s1", SELL, "1", "100", symbol=PERP), T0)
    ex.place(limit("b1", BUY, "1", "100", symbol=PERP), T0)
    assert ex.positions() == []  # long 1 and short 1 on the same account cancel out
    fees = D("100") * D("0.0002") + D("100") * D("0.0005")
    assert balance(ex, "USD") == (START_USD - fees, D("0"))


def test_perpetual_long_then_reduce_only_close_against_the_market_maker() -> None:
    ex = exchange(levels=3)  # asks 100.1.. (tick 0.1), bids 99.9..
    ex.place(limit("open", BUY, "2", "100.2", symbol=PERP), T0)
    (pos,) = ex.positions()
    assert pos == Position(PERP, D("2"), D("100.15"))  # 1 @ 100.1 + 1 @ 100.2
    margin_and_fees = D("200.3") / 10 + D("200.3") * D("0.0005")
    assert balance(ex, "USD")[0] == START_USD - margin_and_fees
    with pytest.raises(VenueRejected):
        ex.place(limit("wrong", BUY, "1", "99", symbol=PERP, reduce_only=True), T0)
    ex.place(limit("tp", SELL, "5", "200", symbol=PERP, reduce_only=True), T0)  # rests
    ex.place(limit("close", SELL, "2", "99.8", symbol=PERP, reduce_only=True), T0)
    assert ex.positions() == []
    tp = ex.query_order(PERP, "tp")
    assert tp is not None and tp.status is VenueStatus.CANCELED  # nothing left to reduce
    # closed 1 @ 99.9 and 1 @ 99.8 against an entry of 100.15: PnL -0.25 - 0.35
    fees = D("200.3") * D("0.0005") + D("199.7") * D("0.0005")
    assert balance(ex, "USD") == (START_USD - D("0.6") - fees, D("0"))
    assert ex.absorbed == 0


def test_reduce_only_never_flips_the_position() -> None:
    path = [(T0, D("100")), (T0 + SEC, D("102"))]
    ex = exchange(levels=3, path=path)
    ex.place(limit("open", BUY, "1", "100.1", symbol=PERP), T0)
    ex.place(limit("ioc", SELL, "3", "99.7", symbol=PERP, reduce_only=True, tif=IOC), T0)
    assert ex.positions() == []  # 1 of 3 filled, the rest cancelled, not short 2
    ioc = ex.query_order(PERP, "ioc")
    assert ioc is not None and ioc.filled_quantity == 1 and ioc.status is VenueStatus.CANCELED
    ex.place(limit("again", BUY, "1", "100.1", symbol=PERP), T0)
    ex.place(limit("r1", SELL, "1", "101", symbol=PERP, reduce_only=True), T0)
    ex.place(limit("r2", SELL, "1", "101", symbol=PERP, reduce_only=True), T0)
    ex.drain_events()
    ex.tick(T0 + SEC)  # the maker's bids move to 101.9: both would fill, only one may
    assert ex.positions() == []
    assert [e.client_order_id for e in ex.drain_events() if isinstance(e, OrderFilled)] == ["r1"]
    r2 = ex.query_order(PERP, "r2")
    assert r2 is not None and r2.status is VenueStatus.CANCELED and r2.filled_quantity == 0
