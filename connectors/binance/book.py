"""``DepthSync``: one instrument's local order book kept from Binance's public streams, with no
I/O (bytes and time in, events out), so its rules are unit-tested and its decoding timed
without sockets.

The rules are those of "WebSocket Streams for Binance", "How to manage a local order book
correctly":

1. Open the diff stream (``<symbol>@depth@100ms``) and buffer its events (state ``WAITING``).
2. Get a snapshot (``GET /api/v3/depth``, its ``lastUpdateId``).
3. Discard the buffered events with ``u <= lastUpdateId``. "If the ``lastUpdateId`` from the
   snapshot is strictly less than the ``U``" of the first event left, the snapshot is too old:
   get another (:meth:`DepthSync.snapshot` answers False; the buffer is kept). Otherwise the
   first event left has ``lastUpdateId`` within its ``[U;u]``.
4. Set the book to the snapshot (it *replaces* the book), apply the buffered events, then every
   event received.
5. Applying an event: "If the event last update ID (``u``) is less than the update ID of your
   local order book, ignore the event" (a duplicate: counted, never a resync); "If the event
   first update ID (``U``) is greater than the update ID of your local order book + 1, you have
   missed some events. Discard your local order book and restart the process from the
   beginning" (a gap: :meth:`DepthSync.feed` answers True, the owner fetches a new snapshot,
   the event that showed the gap stays buffered). Each level's quantity is set; 0 removes it
   ("If the quantity is zero, remove the price level": removing one that is not there is no
   error). The book's update id becomes ``u``.

Events that arrive while a snapshot is being fetched are buffered and applied after it
(hummingbot #1926 lost them). The owner reads the socket without waiting for its consumer:
changes are applied here at once and the consumer :meth:`DepthSync.take` s the net change of
each level since its last read, so a slow consumer never makes the book fall behind into a gap
loop (ccxt #15130, #17827), and memory stays bounded by the book's levels. A periodic
:meth:`DepthSync.refresh` gets a new snapshot, so levels no event touched do not stay stale
forever (cryptofeed #604).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from connectors.base import BookSnapshot, BookUpdate, IdentityEnum, Level, MarketEvent, PublicTrade
from connectors.binance import schemas as S
from connectors.common.venue import MS

log = logging.getLogger(__name__)

ZERO = Decimal(0)


class SyncState(IdentityEnum):
    WAITING = "waiting"
    """Buffering the diffs until a snapshot is in (at the start, after a gap, a reconnect or a
    refresh)."""
    SYNCED = "synced"
    """The book is the snapshot plus every diff since, without a gap."""


@dataclass(slots=True)
class DepthStats:
    messages: int = 0
    snapshots: int = 0
    """Snapshots taken (each is yielded as a BookSnapshot)."""
    resyncs: int = 0
    """Times a synced book was given up for a new snapshot (gap, reconnect, refresh)."""
    gaps: int = 0
    duplicates: int = 0
    """Events ignored because the book was already past them (``u`` <= its update id)."""
    stale_snapshots: int = 0
    """Snapshots older than the buffered diffs (another was fetched)."""
    refreshes: int = 0
    reconnects: int = 0
    dropped_buffered: int = 0
    """Buffered diffs dropped (oldest first) because the buffer was full."""
    dropped_trades: int = 0
    """Trades dropped (oldest first) because the consumer left too many unread."""


class DepthSync:
    """The local book of ``symbol`` (canonical) from the frames of a combined stream
    (``/stream?streams=<s>@depth@100ms/<s>@trade``) or, with ``combined=False``, a raw one."""

    def __init__(self, symbol: str, *, combined: bool = True, max_buffer: int = 10_000,
                 max_trades: int = 10_000) -> None:
        self.symbol = symbol
        self.combined = combined
        self.state = SyncState.WAITING
        self.update_id = 0
        """The book's update id: the snapshot's ``lastUpdateId``, then each applied ``u``."""
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.ts_ns = 0
        self.stats = DepthStats()
        self._buffer: deque[S.DepthUpdate] = deque()
        self._max_buffer = max_buffer
        self._trades: deque[PublicTrade] = deque()
        self._max_trades = max_trades
        self._changed_bids: dict[Decimal, Decimal] = {}
        self._changed_asks: dict[Decimal, Decimal] = {}
        """Each level whose size differs from what the consumer was last given: at most the
        levels of the book and of the consumer's view."""
        self._seen_bids: dict[Decimal, Decimal] = {}
        self._seen_asks: dict[Decimal, Decimal] = {}
        """The book as the consumer has it (what it was last given)."""
        self._snapshot_due = False

    # ---- input -------------------------------------------------------------------------------

    @property
    def wants_snapshot(self) -> bool:
        return self.state is SyncState.WAITING

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, raw: bytes | str) -> bool:
        """One stream frame. True when a snapshot is now wanted (a gap: fetch one)."""
        self.stats.messages += 1
        if self.combined:
            event = S.COMBINED_STREAM_EVENT.decode(raw).data
        else:
            event = S.MARKET_STREAM_EVENT.decode(raw)
        if isinstance(event, S.PublicTradeEvent):
            self._add_trade(event.to_trade(self.symbol))
            return False
        return self.apply(event)

    def apply(self, ev: S.DepthUpdate) -> bool:
        """One diff event (rule 5); True when it showed a gap (a snapshot is now wanted)."""
        if self.state is SyncState.WAITING:
            if len(self._buffer) >= self._max_buffer:
                self._buffer.popleft()
                self.stats.dropped_buffered += 1
            self._buffer.append(ev)
            return False
        if ev.u <= self.update_id:
            self.stats.duplicates += 1
            return False
        if ev.U > self.update_id + 1:
            self.stats.gaps += 1
            log.warning("%s: depth gap: the book is at update %d, the event covers %d-%d; "
                        "resynchronising", self.symbol, self.update_id, ev.U, ev.u)
            self._give_up(ev)
            return True
        self._set(self.bids, self._changed_bids, self._seen_bids, ev.b)
        self._set(self.asks, self._changed_asks, self._seen_asks, ev.a)
        self.update_id = ev.u
        self.ts_ns = ev.E * MS
        return False

    def snapshot(self, raw: bytes | S.DepthSnapshot, now_ns: int) -> bool:
        """A REST snapshot (rules 3 and 4): True when it is taken and the book synced; False
        when it is too old for the buffered events, or the buffered events themselves have a
        gap: fetch another. Only while :attr:`wants_snapshot`."""
        if self.state is not SyncState.WAITING:
            raise RuntimeError(f"{self.symbol}: a snapshot was not asked for")
        snap = raw if isinstance(raw, S.DepthSnapshot) else S.DEPTH_SNAPSHOT.decode(raw)
        last = snap.lastUpdateId
        buffer = self._buffer
        while buffer and buffer[0].u <= last:
            buffer.popleft()
        if buffer and buffer[0].U > last + 1:
            self.stats.stale_snapshots += 1
            log.info("%s: the depth snapshot (%d) is older than the first buffered event "
                     "(%d); fetching another", self.symbol, last, buffer[0].U)
            return False
        at = last  # the buffer must follow on without a gap (checked before the book changes)
        for i, ev in enumerate(buffer):
            if ev.u <= at:
                continue
            if ev.U > at + 1:
                self.stats.gaps += 1
                log.warning("%s: the buffered depth events have a gap (%d, then %d-%d); "
                            "fetching another snapshot", self.symbol, at, ev.U, ev.u)
                for _ in range(i):
                    buffer.popleft()
                return False
            at = ev.u
        self.bids = {Decimal(p): q for p, s in snap.bids if (q := Decimal(s)) > ZERO}
        self.asks = {Decimal(p): q for p, s in snap.asks if (q := Decimal(s)) > ZERO}
        self.update_id = last
        self.ts_ns = now_ns
        self.state = SyncState.SYNCED
        pending = list(buffer)
        buffer.clear()
        for ev in pending:
            self.apply(ev)  # (no gap: checked above)
        self.stats.snapshots += 1
        self._snapshot_due = True
        self._changed_bids.clear()
        self._changed_asks.clear()
        return True

    def restart(self) -> None:
        """A new connection of the stream: what it sends starts a new sequence, so a new
        snapshot is wanted (rule 1)."""
        self.stats.reconnects += 1
        self._give_up(None)

    def refresh(self) -> bool:
        """Get a new snapshot although no gap was seen (levels no event touched may be stale);
        True when one is now wanted."""
        if self.state is not SyncState.SYNCED:
            return False
        self.stats.refreshes += 1
        self._give_up(None)
        return True

    def _give_up(self, ev: S.DepthUpdate | None) -> None:
        if self.state is SyncState.SYNCED:
            self.stats.resyncs += 1
        self.state = SyncState.WAITING
        self._buffer.clear()
        if ev is not None:
            self._buffer.append(ev)

    def _add_trade(self, trade: PublicTrade) -> None:
        if len(self._trades) >= self._max_trades:
            self._trades.popleft()
            self.stats.dropped_trades += 1
        self._trades.append(trade)

    @staticmethod
    def _set(book: dict[Decimal, Decimal], changed: dict[Decimal, Decimal],
             seen: dict[Decimal, Decimal], levels: list[tuple[str, str]]) -> None:
        for p, s in levels:
            price, size = Decimal(p), Decimal(s)
            if size > ZERO:
                book[price] = size
                if seen.get(price) == size:
                    changed.pop(price, None)  # back to what the consumer has
                else:
                    changed[price] = size
            else:
                book.pop(price, None)  # a level that is not there: no error
                if price in seen:
                    changed[price] = ZERO
                else:
                    changed.pop(price, None)  # come and gone between two reads

    # ---- output ------------------------------------------------------------------------------

    def take(self) -> list[MarketEvent]:
        """What the consumer has not seen yet: the trades, then a :class:`BookSnapshot` when a
        snapshot was taken since its last read, else a :class:`BookUpdate` with the net change
        of each level since then (none when nothing changed)."""
        out: list[MarketEvent] = list(self._trades)
        self._trades.clear()
        if self._snapshot_due:
            self._snapshot_due = False
            self._changed_bids.clear()
            self._changed_asks.clear()
            self._seen_bids, self._seen_asks = dict(self.bids), dict(self.asks)
            out.append(BookSnapshot(self.symbol, _sorted(self.bids, True),
                                    _sorted(self.asks, False), self.ts_ns))
        elif self._changed_bids or self._changed_asks:
            bids, asks = tuple(self._changed_bids.items()), tuple(self._changed_asks.items())
            self._changed_bids.clear()
            self._changed_asks.clear()
            _merge(self._seen_bids, bids)
            _merge(self._seen_asks, asks)
            out.append(BookUpdate(self.symbol, bids, asks, self.ts_ns))
        return out

    @property
    def unread(self) -> int:
        """Levels and trades waiting for the consumer (bounded by the levels of the book and
        of the consumer's view, and ``max_trades``)."""
        return len(self._changed_bids) + len(self._changed_asks) + len(self._trades)


def _merge(levels: dict[Decimal, Decimal], changes: tuple[Level, ...]) -> None:
    for price, size in changes:
        if size > ZERO:
            levels[price] = size
        else:
            levels.pop(price, None)


def _sorted(levels: dict[Decimal, Decimal], descending: bool) -> tuple[Level, ...]:
    return tuple(sorted(levels.items(), reverse=descending))
