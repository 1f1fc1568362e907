"""Matching at the paper venue: takers across levels, IOC/FOK/post-only, market orders, stops,
GTD/DAY expiry, self-trades. Our own resting orders make the book (no market maker)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from connectors.base import (
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    RejectReason,
    Side,
    TimeInForce,
    VenueRejected,
    VenueStatus,
)
from connectors.paper.exchange import DAY_NS, PaperExchange

from .helpers import PERP, SEC, SPOT, T0, D, balance, exchange, limit, market, stop

BUY, SELL = Side.BUY, Side.SELL


def _asks(ex: PaperExchange, *levels: tuple[str, str]) -> None:
    """Rest our own sells (cid ``s<price>``) to take from."""
    for price, qty in levels:
        ex.place(limit(f"s{price.replace('.', '_')}", SELL, qty, price), T0)
    ex.drain_events()


def _fills(events: Sequence[object]) -> list[tuple[str, Decimal, Decimal]]:
    return [(e.client_order_id, e.quantity, e.price) for e in events if isinstance(e, OrderFilled)]


def test_marketable_limit_fills_across_levels_then_rests() -> None:
    ex = exchange()
    _asks(ex, ("100.5", "1"), ("100", "1"), ("101", "1"))
    accepted = ex.place(limit("b1", BUY, "2.5", "100.5"), T0)
    events = ex.drain_events()
    assert events[0] == accepted
    assert _fills(events) == [
        ("s100", D("1"), D("100")),
        ("b1", D("1"), D("100")),
        ("s100_5", D("1"), D("100.5")),
        ("b1", D("1"), D("100.5")),
    ]
    state = ex.query_order(SPOT, "b1")
    assert state is not None
    assert state.status is VenueStatus.PARTIALLY_FILLED
    assert state.filled_quantity == D("2") and state.average_price == D("100.25")
    assert ex.book(SPOT).best_bid() == D("100.5")  # the rest of b1 rests at its price
    assert ex.book(SPOT).best_ask() == D("101")


def test_ioc_remainder_is_cancelled() -> None:
    ex = exchange()
    _asks(ex, ("100", "1"))
    ex.place(limit("b1", BUY, "3", "100", tif=TimeInForce.IOC), T0)
    events = ex.drain_events()
    assert _fills(events) == [("s100", D("1"), D("100")), ("b1", D("1"), D("100"))]
    assert isinstance(events[-1], OrderCanceled) and events[-1].client_order_id == "b1"
    assert ex.book(SPOT).best_bid() is None
    state = ex.query_order(SPOT, "b1")
    assert state is not None and state.status is VenueStatus.CANCELED
    assert state.filled_quantity == D("1")


def test_fok_is_refused_whole_when_it_cannot_fill_completely() -> None:
    ex = exchange()
    _asks(ex, ("100", "1"), ("101", "1"))
    ex.place(limit("f1", BUY, "2", "100", tif=TimeInForce.FOK), T0)
    events = ex.drain_events()
    assert [type(e) for e in events] == [OrderAccepted, OrderCanceled]
    assert ex.book(SPOT).levels(SELL) == [(D("100"), D("1")), (D("101"), D("1"))]
    assert balance(ex, "USD") == (D("100000"), D("0"))
    ex.place(limit("f2", BUY, "2", "101", tif=TimeInForce.FOK), T0)
    assert [f[2] for f in _fills(ex.drain_events()) if f[0] == "f2"] == [D("100"), D("101")]
    state = ex.query_order(SPOT, "f2")
    assert state is not None and state.status is VenueStatus.FILLED


def test_post_only_that_would_take_is_rejected_and_leaves_no_trace() -> None:
    ex = exchange()
    _asks(ex, ("100", "1"))
    with pytest.raises(VenueRejected) as info:
        ex.place(limit("p1", BUY, "1", "100", post_only=True), T0)
    assert info.value.reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert ex.drain_events() == [] and ex.query_order(SPOT, "p1") is None
    assert balance(ex, "USD") == (D("100000"), D("0"))
    ex.place(limit("p1", BUY, "1", "99.99", post_only=True), T0)  # the id is still free
    assert ex.book(SPOT).best_bid() == D("99.99")


def test_post_only_is_for_resting_limit_orders() -> None:
    ex = exchange()
    with pytest.raises(VenueRejected) as info:
        ex.place(limit("p1", BUY, "1", "99", post_only=True, tif=TimeInForce.IOC), T0)
    assert info.value.reason is RejectReason.UNSUPPORTED


def test_market_order_walks_the_book_within_its_protection_band() -> None:
    ex = exchange()
    _asks(ex, ("100", "1"), ("104", "1"), ("110", "1"))
    ex.place(market("m1", BUY, "3"), T0)
    events = ex.drain_events()
    assert [f for f in _fills(events) if f[0] == "m1"] == [
        ("m1", D("1"), D("100")),
        ("m1", D("1"), D("104")),
    ]
    assert isinstance(events[-1], OrderCanceled)  # 110 is beyond best ask + 5 %
    assert ex.book(SPOT).best_ask() == D("110")


def test_market_order_without_liquidity_is_rejected() -> None:
    ex = exchange()
    with pytest.raises(VenueRejected) as info:
        ex.place(market("m1", BUY, "1"), T0)
    assert info.value.reason is RejectReason.OTHER


def test_buy_stop_waits_then_enters_as_market_when_the_last_price_reaches_it() -> None:
    ex = exchange(path=[(T0, D("100")), (T0 + SEC, D("101")), (T0 + 2 * SEC, D("102"))])
    _asks(ex, ("103", "1"), ("104", "5"))
    ex.place(stop("st", BUY, "2", "102"), T0)
    assert ex.query_order(SPOT, "st").status is VenueStatus.PENDING  # type: ignore[union-attr]
    ex.tick(T0 + SEC)  # last 101
    assert ex.query_order(SPOT, "st").status is VenueStatus.PENDING  # type: ignore[union-attr]
    assert _fills(ex.drain_events()) == []
    ex.tick(T0 + 2 * SEC)  # last 102: triggered, takes 103 then 104
    assert [f for f in _fills(ex.drain_events()) if f[0] == "st"] == [
        ("st", D("1"), D("103")),
        ("st", D("1"), D("104")),
    ]
    assert ex.query_order(SPOT, "st").status is VenueStatus.FILLED  # type: ignore[union-attr]


def test_sell_stop_limit_triggered_by_our_own_trade_rests_at_its_limit() -> None:
    ex = exchange()
    ex.place(limit("bid", BUY, "1", "98"), T0)
    ex.place(stop("sl", SELL, "1", "98.5", price="99"), T0)
    assert ex.query_order(SPOT, "sl").status is VenueStatus.PENDING  # type: ignore[union-attr]
    ex.place(limit("hit", SELL, "1", "98"), T0)  # trades at 98: last price 98 <= 98.5
    state = ex.query_order(SPOT, "sl")
    assert state is not None and state.status is VenueStatus.NEW and state.filled_quantity == 0
    assert ex.book(SPOT).best_ask() == D("99")


def test_stop_already_through_triggers_at_once() -> None:
    ex = exchange()
    _asks(ex, ("100", "1"))
    ex.place(stop("st", BUY, "1", "90"), T0)  # last is the mid, 100 >= 90
    assert ex.query_order(SPOT, "st").status is VenueStatus.FILLED  # type: ignore[union-attr]


def test_gtd_expires_on_the_tick_at_its_time_and_releases_its_lock() -> None:
    ex = exchange()
    ex.place(limit("g", BUY, "1", "99", tif=TimeInForce.GTD, expire_time_ns=T0 + 5 * SEC), T0)
    ex.place(
        stop("gs", BUY, "1", "150", time_in_force=TimeInForce.GTD, expire_time_ns=T0 + 5 * SEC), T0
    )
    ex.drain_events()
    assert balance(ex, "USD")[1] > 0
    ex.tick(T0 + 5 * SEC - 1)
    assert ex.drain_events() == []
    ex.tick(T0 + 5 * SEC)
    events = ex.drain_events()
    assert [(type(e), e.client_order_id) for e in events] == [
        (OrderExpired, "g"),
        (OrderExpired, "gs"),
    ]
    assert ex.query_order(SPOT, "g").status is VenueStatus.EXPIRED  # type: ignore[union-attr]
    assert ex.book(SPOT).best_bid() is None and ex.open_orders() == []
    assert balance(ex, "USD") == (D("100000"), D("0"))


def test_gtd_in_the_past_is_rejected_and_day_expires_at_utc_midnight() -> None:
    ex = exchange()
    with pytest.raises(VenueRejected):
        ex.place(limit("g", BUY, "1", "99", tif=TimeInForce.GTD, expire_time_ns=T0), T0)
    ex.place(limit("d", BUY, "1", "99", tif=TimeInForce.DAY), T0)
    midnight = (T0 // DAY_NS + 1) * DAY_NS
    ex.tick(midnight - 1)
    assert ex.query_order(SPOT, "d").status is VenueStatus.NEW  # type: ignore[union-attr]
    ex.tick(midnight)
    assert ex.query_order(SPOT, "d").status is VenueStatus.EXPIRED  # type: ignore[union-attr]


def test_self_trade_fills_both_of_our_orders() -> None:
    ex = exchange()
    ex.place(limit("maker", SELL, "1", "100"), T0)
    ex.place(limit("taker", BUY, "1", "100"), T0)
    fills = [e for e in ex.drain_events() if isinstance(e, OrderFilled)]
    assert [(f.client_order_id, f.liquidity) for f in fills] == [
        ("maker", Liquidity.MAKER),
        ("taker", Liquidity.TAKER),
    ]
    assert fills[0].trade_id != fills[1].trade_id
    # bought and sold to ourselves; the buy's taker fee (1 x 0.0005) is paid in TST
    assert balance(ex, "TST") == (D("100") - D("0.0005"), D("0"))


def test_unknown_symbol_and_filters() -> None:
    ex = exchange()
    cases = [
        (limit("x", BUY, "1", "100", symbol="NOPE/USD"), RejectReason.UNKNOWN_SYMBOL),
        (limit("x", BUY, "1", "100.001"), RejectReason.PRICE_FILTER),
        (limit("x", BUY, "1", "0"), RejectReason.PRICE_FILTER),
        (limit("x", BUY, "1.0001", "100"), RejectReason.LOT_FILTER),
        (limit("x", BUY, "0", "100"), RejectReason.LOT_FILTER),
        (limit("x", BUY, "1e40", "100"), RejectReason.LOT_FILTER),
        (limit("x", BUY, "0.009", "100"), RejectReason.MIN_NOTIONAL),
        (stop("x", BUY, "1", "100.005"), RejectReason.PRICE_FILTER),
        (limit("bad id!", BUY, "1", "100"), RejectReason.OTHER),
        (limit("x" * 37, BUY, "1", "100"), RejectReason.OTHER),
        (limit("x", BUY, "1", "100", reduce_only=True), RejectReason.UNSUPPORTED),
        (limit("x", BUY, "1", "100.05", symbol=PERP), RejectReason.PRICE_FILTER),
    ]
    for request, reason in cases:
        with pytest.raises(VenueRejected) as info:
            ex.place(request, T0)
        assert info.value.reason is reason, request
    assert ex.drain_events() == [] and ex.open_orders() == []


def test_closed_orders_beyond_the_history_are_forgotten_with_their_fills() -> None:
    """Memory stays flat however long the venue runs: the oldest closed orders beyond its
    history, and the fills before the oldest order it still knows, are forgotten; open orders
    and their fills never are."""
    ex = exchange(history=5)
    ex.place(limit("keep", BUY, "1", "90"), T0)  # rests throughout
    for i in range(20):
        ex.place(limit(f"s{i}", SELL, "0.1", "100"), T0 + i)
        ex.place(limit(f"b{i}", BUY, "0.1", "100"), T0 + i)  # fills s{i}: both close
    ex.drain_events()
    known = [f"{side}{i}" for i in range(20) for side in "sb" if ex.order(f"{side}{i}")]
    assert known == ["s17", "b17", "s18", "b18", "s19", "b19"][-5:]
    assert ex.query_order(SPOT, "s0") is None
    assert ex.query_order(SPOT, "keep") is not None
    assert {f.client_order_id for f in ex.fills()} <= {"s17", "b17", "s18", "b18", "s19", "b19"}
    ex.place(limit("s99", SELL, "0.4", "90"), T0 + 100)  # fills "keep", which stays open
    assert [f.client_order_id for f in ex.fills_since(T0 + 100)] == ["keep", "s99"]
