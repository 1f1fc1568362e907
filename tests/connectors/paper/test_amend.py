"""Amend: quantity down keeps the order's place, a new price or more quantity loses it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import (
    AmendRequest,
    OrderAmended,
    OrderFilled,
    RejectReason,
    Side,
    VenueRejected,
    VenueStatus,
)
from connectors.paper.exchange import PaperExchange

from .helpers import SPOT, T0, D, balance, exchange, limit, stop

BUY, SELL = Side.BUY, Side.SELL


def _who_fills(ex: PaperExchange, qty: str, price: str) -> list[tuple[str, Decimal]]:
    ex.drain_events()
    ex.place(limit(f"t{len(list(ex.orders()))}", BUY, qty, price), T0)
    return [
        (e.client_order_id, e.quantity)
        for e in ex.drain_events()
        if isinstance(e, OrderFilled) and not e.client_order_id.startswith("t")
    ]


def _amend(ex: PaperExchange, cid: str, qty: str | None = None, price: str | None = None) -> None:
    ex.amend(
        AmendRequest(
            cid, SPOT, None if qty is None else D(qty), None if price is None else D(price)
        ),
        T0,
    )


def test_quantity_down_keeps_priority() -> None:
    ex = exchange()
    ex.place(limit("a", SELL, "3", "100"), T0)
    ex.place(limit("b", SELL, "3", "100"), T0)
    _amend(ex, "a", qty="2")
    assert _who_fills(ex, "3", "100") == [("a", D("2")), ("b", D("1"))]


def test_quantity_up_loses_priority() -> None:
    ex = exchange()
    ex.place(limit("a", SELL, "1", "100"), T0)
    ex.place(limit("b", SELL, "1", "100"), T0)
    _amend(ex, "a", qty="2")
    assert _who_fills(ex, "2", "100") == [("b", D("1")), ("a", D("1"))]


def test_price_change_loses_priority_even_when_moved_back() -> None:
    ex = exchange()
    ex.place(limit("a", SELL, "1", "100"), T0)
    ex.place(limit("b", SELL, "1", "100"), T0)
    _amend(ex, "a", price="101")
    _amend(ex, "a", price="100")
    assert _who_fills(ex, "2", "100") == [("b", D("1")), ("a", D("1"))]


def test_amended_price_that_crosses_trades_at_once() -> None:
    ex = exchange()
    ex.place(limit("ask", SELL, "1", "100"), T0)
    ex.place(limit("bid", BUY, "1", "99"), T0)
    ex.drain_events()
    _amend(ex, "bid", price="100")
    events = ex.drain_events()
    assert isinstance(events[0], OrderAmended) and events[0].price == D("100")
    assert [(e.client_order_id, e.price) for e in events if isinstance(e, OrderFilled)] == [
        ("ask", D("100")),
        ("bid", D("100")),
    ]
    assert ex.query_order(SPOT, "bid").status is VenueStatus.FILLED  # type: ignore[union-attr]


def test_amend_at_or_below_the_filled_quantity_is_rejected() -> None:
    ex = exchange()
    ex.place(limit("a", SELL, "3", "100"), T0)
    ex.place(limit("t", BUY, "2", "100"), T0)
    for qty in ("1", "2"):
        with pytest.raises(VenueRejected) as info:
            _amend(ex, "a", qty=qty)
        assert info.value.reason is RejectReason.OTHER
    _amend(ex, "a", qty="2.5")
    state = ex.query_order(SPOT, "a")
    assert state is not None and state.quantity == D("2.5") and state.filled_quantity == D("2")
    assert ex.book(SPOT).levels(SELL) == [(D("100"), D("0.5"))]
    # sold 2 to ourselves (the buy's taker fee, 2 x 0.0005, paid in TST), 0.5 locked
    assert balance(ex, "TST") == (D("99.5") - D("0.001"), D("0.5"))


def test_amend_relocks_and_refuses_what_cannot_be_funded() -> None:
    ex = exchange(balances={"USD": D("1000")})
    ex.place(limit("b", BUY, "5", "100"), T0)
    with pytest.raises(VenueRejected) as info:
        _amend(ex, "b", qty="10.01")
    assert info.value.reason is RejectReason.INSUFFICIENT_BALANCE
    _amend(ex, "b", price="50")
    lock = D("5") * D("50")
    assert balance(ex, "USD") == (D("1000") - lock, lock)


def test_amend_with_a_new_client_order_id_and_the_filters() -> None:
    ex = exchange()
    ex.place(limit("a", SELL, "1", "100"), T0)
    ex.place(limit("other", SELL, "1", "101"), T0)
    ex.drain_events()
    with pytest.raises(VenueRejected) as info:
        ex.amend(AmendRequest("a", SPOT, price=D("100"), new_client_order_id="other"), T0)
    assert info.value.reason is RejectReason.DUPLICATE_ORDER
    with pytest.raises(VenueRejected) as info:
        _amend(ex, "a", price="100.001")
    assert info.value.reason is RejectReason.PRICE_FILTER
    with pytest.raises(VenueRejected) as info:
        _amend(ex, "nope", price="100")
    assert info.value.reason is RejectReason.UNKNOWN_ORDER
    ex.amend(AmendRequest("a", SPOT, quantity=D("0.5"), new_client_order_id="a2"), T0)
    (amended,) = ex.drain_events()
    assert amended == OrderAmended("a", "P1", D("0.5"), D("100"), T0, "a2")
    state = ex.query_order(SPOT, "a2")
    assert state is not None and state.client_order_id == "a2" and state.quantity == D("0.5")
    ex.place(limit("t", BUY, "1", "100"), T0)
    assert {e.client_order_id for e in ex.drain_events() if isinstance(e, OrderFilled)} == {
        "a2",
        "t",
    }
    with pytest.raises(VenueRejected) as info:  # filled now
        _amend(ex, "a2", qty="1")
    assert info.value.reason is RejectReason.TOO_LATE


def test_post_only_amend_that_would_take_is_rejected() -> None:
    ex = exchange()
    ex.place(limit("ask", SELL, "1", "100"), T0)
    ex.place(limit("p", BUY, "1", "99", post_only=True), T0)
    with pytest.raises(VenueRejected) as info:
        _amend(ex, "p", price="100")
    assert info.value.reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert ex.book(SPOT).best_bid() == D("99")


def test_pending_stop_limit_can_be_amended_but_a_stop_market_has_no_price() -> None:
    ex = exchange()
    ex.place(stop("sl", BUY, "1", "150", price="151"), T0)
    _amend(ex, "sl", qty="2", price="152")
    state = ex.query_order(SPOT, "sl")
    assert state is not None and state.status is VenueStatus.PENDING and state.price == D("152")
    ex.place(stop("sm", BUY, "1", "150"), T0)
    with pytest.raises(VenueRejected) as info:
        _amend(ex, "sm", price="151")
    assert info.value.reason is RejectReason.UNSUPPORTED
