"""The public book and trades of one instrument through ccxt.pro (``watch_order_book``,
``watch_trades``), as the connector contract's :data:`connectors.base.MarketEvent` stream.

ccxt.pro keeps the book itself, with each venue's integrity rules as ccxt implements them (OKX:
``seqId``/``prevSeqId`` continuity; Binance: the diff stream synchronised with a REST depth
snapshot by ``lastUpdateId``; Bybit: snapshot/delta, ccxt 4.5 checks no ``u``), and hands back
the *whole* book on every change. :class:`CcxtBookFeed` turns that into what the contract asks:

- A :class:`BookSnapshot` first, and again after every resynchronisation: ccxt raised a
  ``NetworkError`` (a gap it found, ``InvalidNonce``/``ChecksumError``, or a lost connection;
  the next watch call subscribes again and ccxt rebuilds the book), or ccxt replaced its book
  object (OKX makes a new one per ``snapshot`` push).
- Then :class:`BookUpdate` with the levels that differ from what was last *yielded* (size 0:
  gone), computed when the consumer reads: a slow consumer gets the net change, and memory is
  one book (the last yielded) plus one (ccxt's latest), whatever the lag.
- Trades as :class:`PublicTrade` (ccxt's ``side`` is the taker's), at most ``max_trades``
  unread (the oldest dropped, counted).
- A ``NetworkError`` is retried with backoff; an ``ExchangeError`` (the venue refused the
  subscription, an unknown symbol) ends the feed with an error log.

Precision: ccxt parses prices and sizes into Python floats. They come back here as
``Decimal(repr(x))``, the shortest decimal that reads back as the same float: exactly the
venue's own string whenever that string has at most 15 significant digits (every price and size
the emulators and the usual venues send), but not beyond (a 17-digit size could come back as a
neighbour). Contract markets' sizes (OKX swaps: contracts) are multiplied by ccxt's
``contractSize`` (parsed the same way) into base units, as the native connectors give them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from connectors.base import BookSnapshot, BookUpdate, Level, MarketEvent, PublicTrade, Side
from connectors.ccxt.errors import redact
from connectors.common.backoff import Backoff
from connectors.common.venue import MS

log = logging.getLogger(__name__)

ZERO = Decimal(0)
ONE = Decimal(1)
UNWATCH_TIMEOUT_S = 2.0

BookSide = dict[Decimal, Decimal]


def decimal_of(x: Any) -> Decimal:
    """ccxt's float (or int, or numeric string) as the decimal it was printed from (see the
    module doc for the precision caveat)."""
    if isinstance(x, float):
        text = repr(x)
        return Decimal(text[:-2] if text.endswith(".0") else text)
    return Decimal(str(x))


def book_side(levels: Sequence[Sequence[Any]], contract_size: Decimal) -> BookSide:
    """ccxt's ``[[price, amount], ...]`` (best first) as {price: size in base units}."""
    out: BookSide = {}
    for level in levels:
        size = decimal_of(level[1])
        if size:
            out[decimal_of(level[0])] = size * contract_size if contract_size != ONE else size
    return out


def changed(old: BookSide, new: BookSide, *, reverse: bool) -> tuple[Level, ...]:
    """The levels of ``new`` that differ from ``old``, and those of ``old`` gone (size 0), best
    first."""
    out = {p: q for p, q in new.items() if old.get(p) != q}
    out.update({p: ZERO for p in old if p not in new})
    return tuple(sorted(out.items(), reverse=reverse))


def trade_of(symbol: str, raw: Mapping[str, Any], contract_size: Decimal) -> PublicTrade:
    """ccxt's unified trade structure (``side``: the taker's, per the ccxt Manual, "Trade
    structure")."""
    side = raw.get("side")
    amount = decimal_of(raw["amount"])
    ts = raw.get("timestamp")
    return PublicTrade(
        symbol=symbol, price=decimal_of(raw["price"]),
        size=amount * contract_size if contract_size != ONE else amount,
        aggressor=Side.BUY if side == "buy" else Side.SELL if side == "sell" else None,
        trade_id=str(raw.get("id") or ""), ts_ns=int(ts) * MS if ts is not None else 0)


class CcxtBookFeed:
    """One instrument's book and trades from a ccxt.pro exchange (see the module doc).

    ``limit``: passed to ``watch_order_book`` (None: ccxt's default for the venue, OKX
    ``books`` = 400, Bybit 50, Binance a 1000-level REST snapshot)."""

    def __init__(self, exchange: Any, symbol: str, *, name: str, limit: int | None,
                 contract_size: Decimal, trades: bool, reconnect_base_s: float,
                 reconnect_cap_s: float, max_trades: int = 1000) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.name = name
        self.limit = limit
        self.contract_size = contract_size
        self.with_trades = trades
        self.max_trades = max_trades
        self._base_s, self._cap_s = reconnect_base_s, reconnect_cap_s
        self.current: tuple[BookSide, BookSide] | None = None
        """ccxt's book as last resolved, in our units; None while it is being rebuilt."""
        self.current_ts_ns = 0
        self.epoch = 0
        """Bumped whenever the book is rebuilt: the next read is a snapshot."""
        self.resyncs = 0
        """NetworkErrors on the book (gaps ccxt found, lost connections)."""
        self.book_updates = 0
        """Books resolved by ccxt."""
        self.trades: deque[PublicTrade] = deque()
        self.trades_dropped = 0
        self.ended: str | None = None
        """Why the feed ended (an ExchangeError), or None."""
        self._ccxt_book: Any = None
        self._wake = asyncio.Event()
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- the watchers ------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.ensure_future(self._watch_book()))
        if self.with_trades:
            self._tasks.append(asyncio.ensure_future(self._watch_trades()))

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def unwatch(self) -> None:
        """Ask ccxt to unsubscribe (best effort, bounded: the feed is going anyway)."""
        ex = self.exchange
        for has, method in (("unWatchOrderBook", "un_watch_order_book"),
                            ("unWatchTrades", "un_watch_trades")):
            if method == "un_watch_trades" and not self.with_trades:
                continue
            if ex.has.get(has) and hasattr(ex, method):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(getattr(ex, method)(self.symbol), UNWATCH_TIMEOUT_S)

    def _lost(self) -> None:
        self.current = None
        self._ccxt_book = None
        self.epoch += 1

    def _end(self, what: str, exc: BaseException) -> None:
        self.ended = redact(f"{what}: {type(exc).__name__}: {exc}")
        log.error("%s: %s market data ended: %s", self.name, self.symbol, self.ended)
        self._lost()
        self._wake.set()

    async def _watch_book(self) -> None:
        ex = self.exchange
        backoff = Backoff(self._base_s, max(self._cap_s, self._base_s))
        while not self._closed:
            try:
                ob = await ex.watch_order_book(self.symbol, self.limit)
            except ccxt_async.NetworkError as exc:
                self.resyncs += 1
                self._lost()
                self._wake.set()
                wait = backoff.next()
                log.warning("%s: %s book lost (%s: %s); watching again in %.2f s (resync %d)",
                            self.name, self.symbol, type(exc).__name__, redact(str(exc)), wait,
                            self.resyncs)
                await asyncio.sleep(wait)
                continue
            except ccxt_async.BaseError as exc:
                self._end("watch_order_book", exc)
                return
            books = getattr(ex, "orderbooks", None)
            if isinstance(books, Mapping) and books.get(self.symbol) is not ob:
                continue  # ccxt dropped this book since resolving it (a gap): a new one comes
            backoff.reset()
            if ob is not self._ccxt_book:
                if self._ccxt_book is not None:
                    self.epoch += 1  # a new snapshot from the venue replaced ccxt's book
                self._ccxt_book = ob
            self.book_updates += 1
            cs = self.contract_size
            self.current = (book_side(ob["bids"], cs), book_side(ob["asks"], cs))
            ts = ob.get("timestamp")
            self.current_ts_ns = int(ts) * MS if ts else 0
            self._wake.set()

    async def _watch_trades(self) -> None:
        ex = self.exchange
        backoff = Backoff(self._base_s, max(self._cap_s, self._base_s))
        while not self._closed:
            try:
                got = await ex.watch_trades(self.symbol)
            except ccxt_async.NetworkError as exc:
                wait = backoff.next()
                log.warning("%s: %s trades lost (%s: %s); watching again in %.2f s", self.name,
                            self.symbol, type(exc).__name__, redact(str(exc)), wait)
                await asyncio.sleep(wait)
                continue
            except ccxt_async.BaseError as exc:
                # the book goes on without trades
                log.error("%s: %s trades ended: %s: %s", self.name, self.symbol,
                          type(exc).__name__, redact(str(exc)))
                return
            backoff.reset()
            for raw in got or ():
                if len(self.trades) >= self.max_trades:
                    self.trades.popleft()
                    self.trades_dropped += 1
                self.trades.append(trade_of(self.symbol, raw, self.contract_size))
            self._wake.set()

    # ---- the consumer ------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Waits for something unread and yields it: the trades, then one snapshot or one
        update; ends when the feed is closed or ended."""
        yielded: tuple[BookSide, BookSide] | None = None
        yielded_epoch = -1
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self.trades:
                yield self.trades.popleft()
            cur = self.current
            if cur is not None:
                if yielded is None or yielded_epoch != self.epoch:
                    yielded_epoch = self.epoch
                    yield BookSnapshot(self.symbol, tuple(sorted(cur[0].items(), reverse=True)),
                                       tuple(sorted(cur[1].items())), self.current_ts_ns)
                else:
                    bids = changed(yielded[0], cur[0], reverse=True)
                    asks = changed(yielded[1], cur[1], reverse=False)
                    if bids or asks:
                        yield BookUpdate(self.symbol, bids, asks, self.current_ts_ns)
                yielded = cur
            if self.ended is not None:
                return


async def run_book_feed(feed: CcxtBookFeed, feeds: dict[str, CcxtBookFeed]
                        ) -> AsyncIterator[MarketEvent]:
    """Start ``feed`` (registered in ``feeds`` by symbol), yield its events, stop it when the
    consumer stops or the connector closes it."""
    feeds[feed.symbol] = feed
    try:
        feed.start()
        async for ev in feed.events():
            yield ev
    finally:
        closed = feed.closed
        await feed.close()
        if not closed:
            await feed.unwatch()
        if feeds.get(feed.symbol) is feed:
            del feeds[feed.symbol]
