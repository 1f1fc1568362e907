"""The venues' public feeds that someone watches: one task per (venue, instrument), started by
the first watcher and stopped with the last, keeping that venue's :class:`Book` and telling
every watcher after each event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from connectors.base import Connector, PublicTrade

from .book import Book, new_tape_id

log = logging.getLogger("fixgw.marketdata")


class Watcher(Protocol):
    def book_changed(self, book: Book, trades: Sequence[PublicTrade]) -> None:
        """``book`` changed (or traded: ``trades``); called on the event loop, must not
        block."""


class NoMarketData(Exception):  # noqa: N818 - read as "there is no market data"
    """The venue cannot give this instrument's book (the text says why)."""


@dataclass(eq=False)
class _Feed:
    book: Book
    watchers: set[Watcher] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    failures: int = 0


class MarketData:
    """The books of the venues' instruments that are watched."""

    def __init__(self, connectors: Mapping[str, Connector], *, first_snapshot_s: float = 10.0,
                 retry_s: float = 1.0) -> None:
        self.connectors = connectors
        self.first_snapshot_s = first_snapshot_s
        self.retry_s = retry_s
        self._feeds: dict[tuple[str, str], _Feed] = {}
        self._listed: dict[str, frozenset[str]] = {}

    def venues(self) -> list[str]:
        """The venues with a public feed, in configuration order."""
        return [name for name, c in self.connectors.items() if c.capabilities.market_data]

    async def listed(self, venue: str) -> frozenset[str]:
        """The instruments ``venue`` lists (asked once)."""
        symbols = self._listed.get(venue)
        if symbols is None:
            symbols = frozenset(i.symbol for i in await self.connectors[venue].instruments())
            self._listed[venue] = symbols
        return symbols

    def book(self, venue: str, symbol: str) -> Book | None:
        feed = self._feeds.get((venue, symbol))
        return feed.book if feed is not None else None

    async def watch(self, venue: str, symbol: str, watcher: Watcher) -> Book:
        """Start telling ``watcher`` about ``venue``'s book of ``symbol``; returns the book once
        its first snapshot is in. NoMarketData when it cannot be had."""
        conn = self.connectors.get(venue)
        if conn is None or not conn.capabilities.market_data:
            raise NoMarketData(f"venue {venue} has no market data feed here")
        if symbol not in await self.listed(venue):
            raise NoMarketData(f"{symbol} is not listed at {venue}")
        key = (venue, symbol)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = _Feed(Book(venue, symbol))
            feed.task = asyncio.get_running_loop().create_task(
                self._run(conn, feed), name=f"marketdata-{venue}-{symbol}")
        feed.watchers.add(watcher)
        try:
            await asyncio.wait_for(feed.ready.wait(), self.first_snapshot_s)
        except TimeoutError:
            self.unwatch(venue, symbol, watcher)
            raise NoMarketData(f"no book of {symbol} from {venue} within "
                               f"{self.first_snapshot_s:g}s") from None
        return feed.book

    def unwatch(self, venue: str, symbol: str, watcher: Watcher) -> None:
        key = (venue, symbol)
        feed = self._feeds.get(key)
        if feed is None:
            return
        feed.watchers.discard(watcher)
        if not feed.watchers:
            del self._feeds[key]
            if feed.task is not None:
                feed.task.cancel()

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        tasks = [f.task for f in feeds if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, conn: Connector, feed: _Feed) -> None:
        book = feed.book
        while True:
            try:
                async for ev in conn.market_data(book.symbol):
                    if isinstance(ev, PublicTrade):
                        book.trade(ev)
                        trades: Sequence[PublicTrade] = (ev,)
                    else:
                        book.apply(ev)
                        trades = ()
                        feed.ready.set()
                    for watcher in list(feed.watchers):
                        watcher.book_changed(book, trades)
            except asyncio.CancelledError:
                raise
            except Exception:
                feed.failures += 1
                log.exception("%s: the %s feed failed (%d times); starting it again",
                              conn.name, book.symbol, feed.failures)
            else:
                log.info("%s: the %s feed ended", conn.name, book.symbol)
            # until the next snapshot the book is not known: a new request waits for it; the
            # trades of the gap are not known either
            book.synced = False
            book.tape_id = new_tape_id()
            feed.ready.clear()
            await asyncio.sleep(self.retry_s)
