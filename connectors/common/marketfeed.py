"""What the native connectors' public market-data feeds share.

A venue's book-integrity rules live in a sans-I/O sync class of that venue (``connectors/okx/
book.py``, ``connectors/bybit/book.py``): it takes each raw WebSocket message and answers with
an :data:`Outcome`. This module has the rest:

- :class:`Conflation`: what the consumer of :meth:`Connector.market_data` has not read yet. The
  socket is read continuously into the sync class whatever the consumer does; a consumer that
  lags gets, at its next read, the *net* change of every level since its last read (one
  :class:`BookUpdate`), or a :class:`BookSnapshot` of the current book when too many levels
  changed or the book was resynchronised meanwhile. Memory is bounded (changed levels and
  trades are capped), and a slow consumer can never push the book into a gap: the sequence
  checks run on the socket's order, not the consumer's.
- :class:`PublicFeed`: the WebSocket (``WsStream``: reconnects, pings) of one instrument, the
  resubscription a sync class asks for (counted and logged), and the consumer's iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from connectors.base import BookSnapshot, BookUpdate, Level, MarketEvent, PublicTrade
from connectors.common.stream import PingPolicy, Ws, WsStream

log = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Applied:
    """The message changed the book: ``snapshot`` True when it replaced it. ``bids``/``asks``
    are the levels it set (size 0: removed), already in our units."""

    snapshot: bool
    bids: Sequence[Level]
    asks: Sequence[Level]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Traded:
    trades: Sequence[PublicTrade]


@dataclass(frozen=True, slots=True)
class OutOfSync:
    """The book can no longer be trusted (``reason`` says which rule failed): it was dropped,
    and the sync class waits for a new snapshot, which the feed asks for by resubscribing."""

    reason: str


Outcome = Applied | Traded | OutOfSync | None
"""None: nothing for the book (an acknowledgement, a pong, a duplicate, a message ignored
while waiting for a snapshot)."""


class BookSync(Protocol):
    """A venue's sans-I/O book integrity checker."""

    symbol: str
    resyncs: int

    @property
    def synced(self) -> bool: ...

    def reset(self) -> None:
        """Forget the book (a new connection): wait for the next snapshot."""

    def receive(self, raw: bytes | str) -> Outcome: ...

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The book now, (bids, asks), best first, in our units."""


@dataclass(slots=True)
class Conflation:
    """The consumer's unread part of the feed (see the module doc)."""

    symbol: str
    max_levels: int = 2000
    """More changed levels than this between two reads: the next read is a snapshot."""
    max_trades: int = 1000
    """Trades kept for a consumer that does not read (the oldest are dropped, and counted)."""
    snapshot_due: bool = False
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    trades: deque[PublicTrade] = field(default_factory=deque)
    trades_dropped: int = 0
    ts_ns: int = 0

    def applied(self, a: Applied) -> None:
        self.ts_ns = a.ts_ns
        if a.snapshot:
            self.lost()
            self.snapshot_due = True
            return
        if self.snapshot_due:
            return  # the snapshot taken at the next read has these changes in it
        for price, size in a.bids:
            self.bids[price] = size
        for price, size in a.asks:
            self.asks[price] = size
        if len(self.bids) + len(self.asks) > self.max_levels:
            self.lost()
            self.snapshot_due = True

    def traded(self, trades: Sequence[PublicTrade]) -> None:
        for t in trades:
            if len(self.trades) >= self.max_trades:
                self.trades.popleft()
                self.trades_dropped += 1
            self.trades.append(t)

    def lost(self) -> None:
        """The book is gone (resync, reconnect): what was not read of it does not matter."""
        self.snapshot_due = False
        self.bids.clear()
        self.asks.clear()

    def take(self, sync: BookSync) -> list[MarketEvent]:
        """Everything unread, as few events as possible: the trades, then one snapshot or one
        update (nothing of the book while it is out of sync)."""
        out: list[MarketEvent] = list(self.trades)
        self.trades.clear()
        if self.snapshot_due and sync.synced:
            bids, asks = sync.levels()
            out.append(BookSnapshot(self.symbol, bids, asks, self.ts_ns))
            self.snapshot_due = False
        elif self.bids or self.asks:
            out.append(BookUpdate(self.symbol, tuple(self.bids.items()),
                                  tuple(self.asks.items()), self.ts_ns))
            self.bids.clear()
            self.asks.clear()
        return out


class PublicFeed:
    """One instrument's public WebSocket: ``subscribe()`` gives the messages sent on every
    (re)connection, ``resubscribe()`` those that ask the venue for a fresh snapshot on the same
    connection after the sync class found the book out of sync."""

    def __init__(self, url: str, *, name: str, sync: BookSync,
                 subscribe: Callable[[], Sequence[str]],
                 resubscribe: Callable[[], Sequence[str]],
                 ping: PingPolicy | None, idle_timeout_s: float, reconnect_base_s: float,
                 reconnect_cap_s: float) -> None:
        self.name = name
        self.sync = sync
        self.conflation = Conflation(sync.symbol)
        self._subscribe = subscribe
        self._resubscribe = resubscribe
        self._wake = asyncio.Event()
        self._closed = False
        self._resubscribing: asyncio.Task[None] | None = None
        self.messages = 0
        self.stream = WsStream(url, name=name, on_open=self._on_open,
                               on_message=self._on_message, ping=ping,
                               idle_timeout_s=idle_timeout_s)
        self.stream.backoff.base = reconnect_base_s
        self.stream.backoff.cap = reconnect_cap_s

    @property
    def resyncs(self) -> int:
        return self.sync.resyncs

    async def start(self) -> None:
        await self.stream.start(wait_s=None)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._resubscribing is not None:
            self._resubscribing.cancel()
        await self.stream.close()

    async def _on_open(self, ws: Ws) -> None:
        self.sync.reset()
        self.conflation.lost()
        for text in self._subscribe():
            await ws.send_str(text)

    def _on_message(self, text: str) -> None:
        self.messages += 1
        outcome = self.sync.receive(text)
        if outcome is None:
            return
        if isinstance(outcome, Applied):
            self.conflation.applied(outcome)
        elif isinstance(outcome, Traded):
            self.conflation.traded(outcome.trades)
        else:
            self.conflation.lost()
            log.warning("%s: book out of sync (%s); resubscribing (resync %d)", self.name,
                        outcome.reason, self.sync.resyncs)
            if self._resubscribing is None or self._resubscribing.done():
                self._resubscribing = asyncio.create_task(self._send(self._resubscribe()))
        self._wake.set()

    async def _send(self, texts: Sequence[str]) -> None:
        try:
            for text in texts:
                await self.stream.send_str(text)
        except ConnectionError:
            pass  # the reconnect subscribes again anyway

    async def events(self) -> AsyncIterator[MarketEvent]:
        """The consumer's side: waits for something unread, yields it (see :class:`Conflation`);
        ends when the feed is closed."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            for ev in self.conflation.take(self.sync):
                yield ev


async def run_feed(feed: PublicFeed, feeds: dict[str, PublicFeed],
                   symbol: str) -> AsyncIterator[MarketEvent]:
    """Start ``feed``, yield its events, close it when the consumer stops (or the connector
    closes it); while it runs it is ``feeds[symbol]`` (the connector's, to close them)."""
    feeds[symbol] = feed
    try:
        await feed.start()
        async for ev in feed.events():
            yield ev
    finally:
        with contextlib.suppress(Exception):
            await feed.close()
        if feeds.get(symbol) is feed:
            del feeds[symbol]
