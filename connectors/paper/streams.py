"""The paper venue's streams: the async generators
:class:`~connectors.paper.venue.PaperConnector` hands out (``events``, ``balance_events``,
``market_data``; see there).

Kept Python, out of ``venue.py``: mypyc, which compiles that module
(:mod:`connectors.paper.native`), does not implement async generators, and an iterator class
written instead would not be one (no ``aclose``, and no ``finally`` run when its reader is
cancelled or dropped: a feed's watcher would stay registered). One step an event, a balance or
a book change, not the venue's work per order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from connectors.base import BookSnapshot, BookUpdate, Level, MarketEvent

if TYPE_CHECKING:
    from connectors.paper.venue import PaperConnector

T = TypeVar("T")


async def until_none(queue: asyncio.Queue[T | None]) -> AsyncIterator[T]:
    """The items put on ``queue``, in order, until a None (which ends the stream)."""
    while True:
        item = await queue.get()
        if item is None:
            return
        yield item


async def lazily(start: Callable[[], AsyncIterator[T]]) -> AsyncIterator[T]:
    """What ``start()`` yields, ``start`` called at the first read, not before."""
    async for item in start():
        yield item


async def market_data(venue: PaperConnector, symbol: str) -> AsyncIterator[MarketEvent]:
    """:meth:`PaperConnector.market_data`: a snapshot, then the trades and the levels that
    changed after each change of the exchange; the watcher it registers is removed however the
    stream ends."""
    watcher = venue._watch(symbol)  # KeyError when the venue does not list it
    try:
        bids, asks = venue._levels(symbol)
        yield BookSnapshot(symbol, tuple(bids.items()), tuple(asks.items()), venue._clock())
        while not venue._closed:
            await watcher.changed.wait()
            watcher.changed.clear()
            for trade in watcher.take_trades():
                yield trade
            new_bids, new_asks = venue._levels(symbol)
            bid_changes, ask_changes = _diff(bids, new_bids), _diff(asks, new_asks)
            bids, asks = new_bids, new_asks
            if bid_changes or ask_changes:
                yield BookUpdate(symbol, bid_changes, ask_changes, venue._clock())
    finally:
        venue._watchers.remove(watcher)


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> tuple[Level, ...]:
    """The levels of ``new`` that differ from ``old``, and those gone (size 0)."""
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out += [(p, Decimal(0)) for p in old if p not in new]
    return tuple(out)
