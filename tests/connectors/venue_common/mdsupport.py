"""Market-data test plumbing shared by the venue emulators' tests: a consumer that rebuilds the
book from what ``Connector.market_data`` yields (with the gateway's own :class:`Book`), and the
emulator's book to compare it with."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from connectors.base import BookSnapshot, BookUpdate, Connector, MarketEvent, PublicTrade, Side
from connectors.paper.exchange import PaperExchange
from gateway.marketdata.book import Book

Levels = tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]


def exchange_book(ex: PaperExchange, symbol: str, depth: int) -> Levels:
    book = ex.book(symbol)
    return dict(book.levels(Side.BUY)[:depth]), dict(book.levels(Side.SELL)[:depth])


class BookReader:
    """Reads ``conn.market_data(symbol)`` in the background into a gateway :class:`Book`."""

    def __init__(self, conn: Connector, symbol: str) -> None:
        self.book = Book(conn.name, symbol)
        self.events: list[MarketEvent] = []
        self.trades: list[PublicTrade] = []
        self._task = asyncio.create_task(self._run(conn, symbol))

    async def _run(self, conn: Connector, symbol: str) -> None:
        async for ev in conn.market_data(symbol):
            self.events.append(ev)
            if isinstance(ev, PublicTrade):
                self.trades.append(ev)
            else:
                self.book.apply(ev)

    def levels(self) -> Levels:
        return dict(self.book.bids), dict(self.book.asks)

    def updates(self) -> int:
        return sum(1 for e in self.events if isinstance(e, BookUpdate))

    def snapshots(self) -> int:
        return sum(1 for e in self.events if isinstance(e, BookSnapshot))

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
