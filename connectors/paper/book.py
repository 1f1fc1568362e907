"""A price-time-priority limit order book for one instrument, and the stop orders waiting on it.

Pure data structure: no clock, no accounts, no events. Prices are kept in two ascending lists
(``bisect``) with a FIFO ``deque`` per price level, so the best level is an index away and an
order joins its level in O(log levels). Matching hands every fill to a callback *as it happens*,
so the caller can settle it (and see positions move) before the next fill is decided.

Who owns an order is opaque to the book (``owner``): the paper venue puts its own order record
there, or ``None`` for the synthetic market maker.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Final, Generic, TypeVar

from connectors.base import Side

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_BUY: Final = Side.BUY

O = TypeVar("O")  # noqa: E741 - the owner type of book entries

ZERO = Decimal(0)


class BookOrder(Generic[O]):
    """One resting (or incoming) order as the book sees it.

    A plain class, not a dataclass: mypyc (:mod:`connectors.paper.native`) compiles no generic
    dataclass (the class fails at import)."""

    __slots__ = ("side", "price", "remaining", "owner", "reduce_only", "live")

    def __init__(self, side: Side, price: Decimal, remaining: Decimal, owner: O | None = None,
                 reduce_only: bool = False) -> None:
        self.side = side
        self.price = price
        self.remaining = remaining
        self.owner = owner
        self.reduce_only = reduce_only
        self.live = False
        """True while the order rests in the book."""

    def __repr__(self) -> str:
        return (f"BookOrder({self.side.name} {self.remaining}@{self.price}, owner={self.owner!r}, "
                f"reduce_only={self.reduce_only}, live={self.live})")


FillCallback = Callable[[BookOrder[O], BookOrder[O], Decimal, Decimal], None]
"""``(resting, taker, quantity, price)``: called once per fill, in matching order."""

CapCallback = Callable[[BookOrder[O]], Decimal]
"""For a reduce-only order: how much of it may fill right now (0: none)."""


class MatchResult(Generic[O]):
    """What :meth:`OrderBook.match` did (a plain class, as :class:`BookOrder`)."""

    __slots__ = ("filled", "dropped", "capped")

    def __init__(self) -> None:
        self.filled = ZERO
        self.dropped: list[BookOrder[O]] = []
        """Resting reduce-only orders removed because they could no longer reduce anything."""
        self.capped = False
        """The taker is reduce-only and stopped because its position was closed."""


class OrderBook(Generic[O]):
    """Bids and asks by price level, FIFO within a level."""

    __slots__ = ("_bid_prices", "_ask_prices", "_bids", "_asks")

    def __init__(self) -> None:
        self._bid_prices: list[Decimal] = []  # ascending: best bid is the last
        self._ask_prices: list[Decimal] = []  # ascending: best ask is the first
        self._bids: dict[Decimal, deque[BookOrder[O]]] = {}
        self._asks: dict[Decimal, deque[BookOrder[O]]] = {}

    # ---- reading -------------------------------------------------------------------------------

    def best_bid(self) -> Decimal | None:
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> Decimal | None:
        return self._ask_prices[0] if self._ask_prices else None

    def best(self, side: Side) -> Decimal | None:
        """Best price on ``side`` of the book (BUY: best bid)."""
        return self.best_bid() if side is _BUY else self.best_ask()

    def levels(self, side: Side) -> list[tuple[Decimal, Decimal]]:
        """``(price, total quantity)`` per level, best first."""
        if side is _BUY:
            return [
                (p, sum((o.remaining for o in self._bids[p]), ZERO))
                for p in reversed(self._bid_prices)
            ]
        return [(p, sum((o.remaining for o in self._asks[p]), ZERO)) for p in self._ask_prices]

    def queue(self, side: Side, price: Decimal) -> list[BookOrder[O]]:
        """The orders resting at one level, in priority order."""
        book = self._bids if side is _BUY else self._asks
        return list(book.get(price, ()))

    def orders(self) -> Iterator[BookOrder[O]]:
        for p in self._bid_prices:
            yield from self._bids[p]
        for p in self._ask_prices:
            yield from self._asks[p]

    def crosses(self, side: Side, limit: Decimal | None) -> bool:
        """Would an order on ``side`` with this limit (None: market) take liquidity now?"""
        if side is _BUY:
            ask = self.best_ask()
            return ask is not None and (limit is None or ask <= limit)
        bid = self.best_bid()
        return bid is not None and (limit is None or bid >= limit)

    def fillable(self, side: Side, quantity: Decimal, limit: Decimal | None) -> bool:
        """Is there at least ``quantity`` on the other side within ``limit`` (FOK)?"""
        need = quantity
        if side is _BUY:
            for p in self._ask_prices:
                if limit is not None and p > limit:
                    return False
                for o in self._asks[p]:
                    need -= o.remaining
                    if need <= 0:
                        return True
        else:
            for p in reversed(self._bid_prices):
                if limit is not None and p < limit:
                    return False
                for o in self._bids[p]:
                    need -= o.remaining
                    if need <= 0:
                        return True
        return False

    # ---- changing ------------------------------------------------------------------------------

    def rest(self, order: BookOrder[O]) -> None:
        """Append ``order`` to the back of its price level."""
        if order.side is _BUY:
            book, prices = self._bids, self._bid_prices
        else:
            book, prices = self._asks, self._ask_prices
        level = book.get(order.price)
        if level is None:
            level = book[order.price] = deque()
            insort(prices, order.price)
        level.append(order)
        order.live = True

    def remove(self, order: BookOrder[O]) -> bool:
        """Take ``order`` out of the book; False when it was not resting."""
        if not order.live:
            return False
        if order.side is _BUY:
            book, prices = self._bids, self._bid_prices
        else:
            book, prices = self._asks, self._ask_prices
        level = book[order.price]
        level.remove(order)
        order.live = False
        if not level:
            del book[order.price]
            del prices[bisect_left(prices, order.price)]
        return True

    def is_last_in_level(self, order: BookOrder[O]) -> bool:
        book = self._bids if order.side is _BUY else self._asks
        level = book.get(order.price)
        return bool(level) and level is not None and level[-1] is order

    def match(
        self,
        taker: BookOrder[O],
        limit: Decimal | None,
        on_fill: FillCallback[O],
        cap: CapCallback[O] | None = None,
    ) -> MatchResult[O]:
        """Let ``taker`` take liquidity from the other side, best price first, FIFO within a
        level, at the resting order's price, until it is filled or ``limit`` stops it.
        ``taker`` is not rested; that is the caller's decision."""
        result: MatchResult[O] = MatchResult()
        if taker.side is _BUY:
            book, prices, index = self._asks, self._ask_prices, 0
        else:
            book, prices, index = self._bids, self._bid_prices, -1
        buying = taker.side is _BUY
        while taker.remaining > 0 and prices:
            price = prices[index]
            if limit is not None and (price > limit if buying else price < limit):
                break
            level = book[price]
            while level and taker.remaining > 0:
                resting = level[0]
                qty = resting.remaining if resting.remaining < taker.remaining else taker.remaining
                if resting.reduce_only and cap is not None:
                    allowed = cap(resting)
                    if allowed <= 0:
                        level.popleft()
                        resting.live = False
                        result.dropped.append(resting)
                        continue
                    qty = min(qty, allowed)
                if taker.reduce_only and cap is not None:
                    allowed = cap(taker)
                    if allowed <= 0:
                        result.capped = True
                        break
                    qty = min(qty, allowed)
                resting.remaining -= qty
                taker.remaining -= qty
                result.filled += qty
                if resting.remaining == 0:
                    level.popleft()
                    resting.live = False
                on_fill(resting, taker, qty, price)
            if not level:
                del book[price]
                del prices[index]
            if result.capped:
                break
        return result


class StopBook(Generic[O]):
    """Stop orders waiting for the last trade price: a buy stop triggers when the last price
    rises to its stop price or above, a sell stop when it falls to it or below. Removal is lazy:
    a popped entry whose ``is_waiting`` is false is skipped."""

    __slots__ = ("_buys", "_sells", "_seq")

    def __init__(self) -> None:
        self._buys: list[tuple[Decimal, int, O]] = []  # min-heap on stop price
        self._sells: list[tuple[Decimal, int, O]] = []  # min-heap on -stop price
        self._seq = 0

    def __len__(self) -> int:
        return len(self._buys) + len(self._sells)

    def add(self, side: Side, stop_price: Decimal, owner: O) -> None:
        self._seq += 1
        if side is _BUY:
            heapq.heappush(self._buys, (stop_price, self._seq, owner))
        else:
            heapq.heappush(self._sells, (-stop_price, self._seq, owner))

    def triggered(self, last: Decimal, is_waiting: Callable[[O], bool]) -> list[O]:
        """Pop every waiting stop the last price ``last`` has reached, oldest first."""
        out: list[tuple[int, O]] = []
        while self._buys and self._buys[0][0] <= last:
            _, seq, owner = heapq.heappop(self._buys)
            if is_waiting(owner):
                out.append((seq, owner))
        while self._sells and -self._sells[0][0] >= last:
            _, seq, owner = heapq.heappop(self._sells)
            if is_waiting(owner):
                out.append((seq, owner))
        out.sort(key=lambda item: item[0])
        return [owner for _, owner in out]
