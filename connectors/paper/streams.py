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
from typing import Protocol, TypeVar

from connectors.base import BookSnapshot, BookUpdate, Level, MarketEvent, PublicTrade

T = TypeVar("T")

Levels = tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]
"""The best levels of a book by price, bids then asks."""


class Watcher(Protocol):
    """One reader of the public feed of one instrument, as the venue registers it."""

    changed: asyncio.Event
    """Set by the venue after every change."""

    def take_trades(self) -> list[PublicTrade]: ...


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


async def market_data(
    symbol: str, watch: Callable[[str], Watcher], levels: Callable[[str], Levels],
    clock: Callable[[], int], closed: Callable[[], bool], unwatch: Callable[[Watcher], None],
) -> AsyncIterator[MarketEvent]:
    """:meth:`PaperConnector.market_data`: a snapshot, then the trades and the levels that
    changed after each change of the exchange, until the venue is ``closed()``; the watcher
    ``watch(symbol)`` registers at the first read is given to ``unwatch`` however the stream
    ends. (The venue's parts are passed in: this module imports nothing of the venue.)"""
    watcher = watch(symbol)  # KeyError when the venue does not list it
    try:
        bids, asks = levels(symbol)
        yield BookSnapshot(symbol, tuple(bids.items()), tuple(asks.items()), clock())
        while not closed():
            await watcher.changed.wait()
            watcher.changed.clear()
            for trade in watcher.take_trades():
                yield trade
            new_bids, new_asks = levels(symbol)
            bid_changes, ask_changes = _diff(bids, new_bids), _diff(asks, new_asks)
            bids, asks = new_bids, new_asks
            if bid_changes or ask_changes:
                yield BookUpdate(symbol, bid_changes, ask_changes, clock())
    finally:
        unwatch(watcher)


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> tuple[Level, ...]:
    """The levels of ``new`` that differ from ``old``, and those gone (size 0)."""
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out += [(p, Decimal(0)) for p in old if p not in new]
    return tuple(out)
