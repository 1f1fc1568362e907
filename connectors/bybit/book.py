"""Bybit's public order book, kept in sync by Bybit's rules (sans-I/O: raw messages in,
:data:`~connectors.common.marketfeed.Outcome` out).

docs/v5/websocket/public/orderbook ("Process snapshot/delta"): after subscribing to
``orderbook.{depth}.{symbol}`` the first push is ``type: snapshot``, then ``delta`` pushes with
the levels that changed; a size of "0" deletes the level (deleting a level we do not have is
fine: a level may leave the depth window). "If you receive a new snapshot message, you will have
to reset your local orderbook"; and a push with ``u`` = 1 is a snapshot sent after a service
restart, which replaces the book too.

``u`` is the update id of the topic, one more on every push: a delta whose ``u`` is not the last
``u`` + 1 means a push was lost, and the book is rebuilt by resubscribing (a new snapshot). A
delta whose ``u`` is not above the last one is a repeat, dropped and counted. ``seq`` (the cross
sequence, shared with other depths) is kept for information only.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.base import Level, PublicTrade, Side
from connectors.bybit import schemas
from connectors.common.marketfeed import Applied, Outcome, OutOfSync, Traded
from connectors.common.venue import MS

DEPTH = 50
"""The depth subscribed: 50 levels exist for spot and linear (1, 50, 200, 1000)."""

_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}


class BookSync:
    """The ``orderbook.50.<symbol>`` and ``publicTrade.<symbol>`` topics of one instrument."""

    def __init__(self, symbol: str, venue_symbol: str, depth: int = DEPTH) -> None:
        self.symbol = symbol
        self.venue_symbol = venue_symbol
        self.book_topic = f"orderbook.{depth}.{venue_symbol}"
        self.trade_topic = f"publicTrade.{venue_symbol}"
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.synced = False
        self.u = 0
        self.seq = 0
        self.resyncs = 0
        self.gaps = 0
        self.duplicates = 0
        self.snapshots = 0

    def reset(self) -> None:
        self.synced = False
        self.bids.clear()
        self.asks.clear()

    def receive(self, raw: bytes | str) -> Outcome:
        msg = schemas.PUBLIC.decode(raw)
        if msg.topic == self.book_topic:
            return self._book(msg.type, schemas.ORDERBOOK_DATA.decode(msg.data), msg.ts)
        if msg.topic == self.trade_topic:
            return Traded([self._trade(t) for t in schemas.PUBLIC_TRADES.decode(msg.data)])
        return None  # an answer to subscribe / unsubscribe / ping, or another topic

    def _book(self, kind: str, d: schemas.OrderbookData, ts_ms: int) -> Outcome:
        snapshot = kind == "snapshot" or d.u == 1
        if snapshot:
            self.reset()
            self.snapshots += 1
        elif not self.synced:
            return None  # deltas of a subscription we are replacing
        elif d.u <= self.u:
            self.duplicates += 1
            return None
        elif d.u != self.u + 1:
            self.gaps += 1
            self.resyncs += 1
            reason = f"u {d.u} after u {self.u}"
            self.reset()
            return OutOfSync(reason)
        bids = [_set(self.bids, lv) for lv in d.b]
        asks = [_set(self.asks, lv) for lv in d.a]
        self.u, self.seq = d.u, d.seq
        self.synced = True
        return Applied(snapshot, bids, asks, ts_ms * MS)

    def _trade(self, t: schemas.PublicTradeItem) -> PublicTrade:
        return PublicTrade(self.symbol, Decimal(t.p), Decimal(t.v), _SIDES.get(t.S), t.i,
                           t.T * MS)

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return (tuple(sorted(self.bids.items(), reverse=True)),
                tuple(sorted(self.asks.items())))


def _set(side: dict[Decimal, Decimal], level: list[str]) -> Level:
    price, size = Decimal(level[0]), Decimal(level[1])
    if size:
        side[price] = size
    else:
        side.pop(price, None)
    return price, size
