"""The market as the router and the strategies see it (:class:`gateway.orders.ports.MarketView`),
put together from the market data feeds, the balance book and the venues' taker fees. It lives
beside the composition root: the order path does not import the market data or the positions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import ClassVar

from connectors.base import Level, PublicTrade, Side, VenueError
from gateway.marketdata.book import Book
from gateway.marketdata.feeds import MarketData, NoMarketData
from gateway.orders.ports import Tape, TradesListener
from gateway.positions.balance_book import BalanceBook

log = logging.getLogger("fixgw.marketdata")


class _Relay:
    """One watcher of a feed on behalf of one listener (None: keeps the book alive)."""

    def __init__(self, on_trades: TradesListener | None) -> None:
        self.on_trades = on_trades
        self.count = 0
        """How many :meth:`FeedView.watch` calls hold it."""

    def book_changed(self, book: Book, trades: Sequence[PublicTrade]) -> None:
        if trades and self.on_trades is not None:
            self.on_trades(book.venue, trades)


class FeedView:
    """:class:`~gateway.orders.ports.MarketView` over ``feeds`` and ``balances``; ``fees``:
    venue -> its taker fee rate (absent: :data:`DEFAULT_TAKER_FEE`)."""

    DEFAULT_TAKER_FEE: ClassVar[Decimal] = Decimal("0.001")
    """(A class variable declared so: compiled by mypyc, an undeclared one would be a field of
    each instance, and ``FeedView.DEFAULT_TAKER_FEE`` its descriptor, not the rate.)"""

    def __init__(self, feeds: MarketData, balances: BalanceBook,
                 fees: Mapping[str, Decimal]) -> None:
        self.feeds = feeds
        self.balances = balances
        self.fees = dict(fees)
        self._relays: dict[tuple[str, str, TradesListener | None], _Relay] = {}

    def levels(self, venue: str, symbol: str, side: Side) -> Sequence[Level] | None:
        book = self.feeds.book(venue, symbol)
        if book is None or not book.synced:
            return None
        return book.top(side)

    async def watch(self, venue: str, symbol: str,
                    on_trades: TradesListener | None = None) -> bool:
        key = (venue, symbol, on_trades)
        relay = self._relays.get(key)
        if relay is None:
            relay = self._relays[key] = _Relay(on_trades)
        relay.count += 1
        try:
            await self.feeds.watch(venue, symbol, relay)
        except (NoMarketData, VenueError) as exc:
            log.info("%s: no book of %s: %s", venue, symbol, exc)
            self.unwatch(venue, symbol, on_trades)
            return False
        except BaseException:  # (canceled, or failed otherwise: this watch holds nothing)
            self.unwatch(venue, symbol, on_trades)
            raise
        return True

    def unwatch(self, venue: str, symbol: str, on_trades: TradesListener | None = None) -> None:
        key = (venue, symbol, on_trades)
        relay = self._relays.get(key)
        if relay is None:
            return
        relay.count -= 1
        if relay.count <= 0:
            del self._relays[key]
            self.feeds.unwatch(venue, symbol, relay)

    def available(self, venue: str, asset: str) -> Decimal | None:
        held = self.balances.held(venue).get(asset)
        return held.free if held is not None else None

    def taker_fee(self, venue: str) -> Decimal:
        return self.fees.get(venue, self.DEFAULT_TAKER_FEE)

    def quote(self, venue: str, symbol: str) -> tuple[Decimal, Decimal] | None:
        book = self.feeds.book(venue, symbol)
        if book is None or not book.synced:
            return None
        bid, ask = book.best(Side.BUY), book.best(Side.SELL)
        return None if bid is None or ask is None else (bid, ask)

    def tape(self, venue: str, symbol: str) -> Tape | None:
        book = self.feeds.book(venue, symbol)
        if book is None:
            return None
        return Tape(book.tape_id, book.traded, book.traded_notional)
