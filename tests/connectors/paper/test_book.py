"""The order book on its own: price-time priority, partial fills, limits, stops."""

from __future__ import annotations

from decimal import Decimal

from connectors.base import Side
from connectors.paper.book import BookOrder, OrderBook, StopBook

D = Decimal
Fill = tuple[str, str, Decimal, Decimal]


def _book(*orders: tuple[str, Side, str, str]) -> tuple[OrderBook[str], dict[str, BookOrder[str]]]:
    book: OrderBook[str] = OrderBook()
    by_name = {}
    for name, side, price, qty in orders:
        o: BookOrder[str] = BookOrder(side, D(price), D(qty), name)
        book.rest(o)
        by_name[name] = o
    return book, by_name


def _take(
    book: OrderBook[str], side: Side, qty: str, limit: str | None
) -> tuple[list[Fill], BookOrder[str]]:
    fills: list[Fill] = []
    taker: BookOrder[str] = BookOrder(side, D(limit or 0), D(qty), "taker")

    def on_fill(resting: BookOrder[str], t: BookOrder[str], q: Decimal, p: Decimal) -> None:
        assert t is taker
        fills.append((str(resting.owner), str(t.owner), q, p))

    book.match(taker, None if limit is None else D(limit), on_fill)
    return fills, taker


def test_price_then_time_priority_across_levels() -> None:
    book, o = _book(
        ("a101", Side.SELL, "101", "1"),
        ("b100", Side.SELL, "100", "1"),
        ("c100", Side.SELL, "100", "1"),
        ("d102", Side.SELL, "102", "1"),
    )
    fills, taker = _take(book, Side.BUY, "2.5", "101")
    assert fills == [
        ("b100", "taker", D("1"), D("100")),
        ("c100", "taker", D("1"), D("100")),
        ("a101", "taker", D("0.5"), D("101")),
    ]
    assert taker.remaining == 0
    assert o["a101"].remaining == D("0.5") and o["a101"].live
    assert not o["b100"].live and not o["c100"].live
    assert book.levels(Side.SELL) == [(D("101"), D("0.5")), (D("102"), D("1"))]
    assert book.best_ask() == D("101")


def test_sell_taker_walks_bids_from_the_highest() -> None:
    book, _ = _book(
        ("x", Side.BUY, "99", "1"), ("y", Side.BUY, "99.5", "1"), ("z", Side.BUY, "98", "5")
    )
    fills, taker = _take(book, Side.SELL, "3", "98.5")
    assert [(f[0], f[3]) for f in fills] == [("y", D("99.5")), ("x", D("99"))]
    assert taker.remaining == D("1")  # 98 is beyond the limit
    assert book.best_bid() == D("98")


def test_market_taker_has_no_limit() -> None:
    book, _ = _book(("x", Side.SELL, "100", "1"), ("y", Side.SELL, "150", "1"))
    fills, taker = _take(book, Side.BUY, "5", None)
    assert [f[3] for f in fills] == [D("100"), D("150")]
    assert taker.remaining == D("3") and book.best_ask() is None


def test_partial_fill_of_the_resting_order_keeps_its_place() -> None:
    book, o = _book(("first", Side.SELL, "100", "2"), ("second", Side.SELL, "100", "1"))
    _take(book, Side.BUY, "0.5", "100")
    assert [x.owner for x in book.queue(Side.SELL, D("100"))] == ["first", "second"]
    fills, _ = _take(book, Side.BUY, "2", "100")
    assert [(f[0], f[2]) for f in fills] == [("first", D("1.5")), ("second", D("0.5"))]
    assert o["second"].remaining == D("0.5")


def test_remove_and_levels() -> None:
    book, o = _book(
        ("a", Side.BUY, "99", "1"), ("b", Side.BUY, "99", "2"), ("c", Side.BUY, "98", "1")
    )
    assert book.remove(o["a"]) and not book.remove(o["a"])
    assert book.levels(Side.BUY) == [(D("99"), D("2")), (D("98"), D("1"))]
    book.remove(o["b"])
    assert book.best_bid() == D("98")
    assert book.crosses(Side.SELL, D("98")) and not book.crosses(Side.SELL, D("98.01"))
    assert book.crosses(Side.SELL, None) and not book.crosses(Side.BUY, None)


def test_fillable_counts_only_within_the_limit() -> None:
    book, _ = _book(("a", Side.SELL, "100", "1"), ("b", Side.SELL, "101", "1"))
    assert book.fillable(Side.BUY, D("2"), D("101"))
    assert not book.fillable(Side.BUY, D("2"), D("100"))
    assert not book.fillable(Side.BUY, D("2.001"), None)
    assert not book.fillable(Side.SELL, D("0.001"), None)


def test_reduce_only_resting_order_is_capped_then_dropped() -> None:
    book: OrderBook[str] = OrderBook()
    ro: BookOrder[str] = BookOrder(Side.SELL, D("100"), D("5"), "ro", reduce_only=True)
    plain: BookOrder[str] = BookOrder(Side.SELL, D("100"), D("5"), "plain")
    book.rest(ro)
    book.rest(plain)
    allowed = {"ro": D("2")}
    fills: list[tuple[str, Decimal]] = []

    def cap(o: BookOrder[str]) -> Decimal:
        return allowed[str(o.owner)]

    def on_fill(resting: BookOrder[str], taker: BookOrder[str], q: Decimal, p: Decimal) -> None:
        fills.append((str(resting.owner), q))
        if resting.owner == "ro":
            allowed["ro"] -= q

    taker: BookOrder[str] = BookOrder(Side.BUY, D("100"), D("4"), "t")
    result = book.match(taker, D("100"), on_fill, cap)
    assert fills == [("ro", D("2")), ("plain", D("2"))]
    assert result.dropped == [ro] and not ro.live
    assert [x.owner for x in book.queue(Side.SELL, D("100"))] == ["plain"]


def test_stop_book_triggers_by_direction_oldest_first() -> None:
    stops: StopBook[str] = StopBook()
    stops.add(Side.BUY, D("105"), "buy105")
    stops.add(Side.BUY, D("103"), "buy103")
    stops.add(Side.SELL, D("95"), "sell95")
    stops.add(Side.SELL, D("97"), "sell97")
    assert stops.triggered(D("100"), lambda o: True) == []
    assert stops.triggered(D("105"), lambda o: True) == ["buy105", "buy103"]
    assert stops.triggered(D("96"), lambda o: o != "sell97") == []  # sell97 no longer waiting
    assert stops.triggered(D("95"), lambda o: True) == ["sell95"]
    assert len(stops) == 0
