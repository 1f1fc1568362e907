"""One venue's book of one instrument, as its public feed says it is."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.base import BookSnapshot, BookUpdate, Level, PublicTrade, Side

ZERO = Decimal(0)
_TAPES = itertools.count(1)


def new_tape_id() -> str:
    """An id for a run of public trades seen without a break, unique across restarts."""
    return f"{time.time_ns():x}.{next(_TAPES)}"


@dataclass(slots=True)
class Book:
    venue: str
    symbol: str
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_trade: PublicTrade | None = None
    ts_ns: int = 0
    synced: bool = False
    """A snapshot was applied (before it, the book is not known)."""
    snapshots: int = 0
    """Snapshots applied: the first, then one per resynchronisation of the feed."""
    traded: Decimal = ZERO
    """The size of the public trades seen since the feed started (or last broke off)."""
    traded_notional: Decimal = ZERO
    """Their size x price (the market's VWAP between two moments is the change of this over
    the change of ``traded``, within one ``tape_id``)."""
    tape_id: str = field(default_factory=new_tape_id)
    """Changes whenever trades may have been missed (the feed broke off)."""

    def trade(self, t: PublicTrade) -> None:
        self.last_trade = t
        self.traded += t.size
        self.traded_notional += t.size * t.price

    def apply(self, ev: BookSnapshot | BookUpdate) -> None:
        if isinstance(ev, BookSnapshot):
            self.bids = {p: q for p, q in ev.bids if q > ZERO}
            self.asks = {p: q for p, q in ev.asks if q > ZERO}
            self.synced = True
            self.snapshots += 1
        else:
            _merge(self.bids, ev.bids)
            _merge(self.asks, ev.asks)
        self.ts_ns = ev.ts_ns

    def top(self, side: Side, depth: int = 0) -> list[Level]:
        """The levels of ``side``, best first; ``depth`` 0: all."""
        levels = self.bids if side is Side.BUY else self.asks
        ordered = sorted(levels.items(), reverse=side is Side.BUY)
        return ordered[:depth] if depth > 0 else ordered

    def best(self, side: Side) -> Decimal | None:
        levels = self.bids if side is Side.BUY else self.asks
        if not levels:
            return None
        return max(levels) if side is Side.BUY else min(levels)

    def mid(self) -> Decimal | None:
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        if bid is None or ask is None:
            return None
        return (bid + ask) / 2


def _merge(levels: dict[Decimal, Decimal], changes: tuple[Level, ...]) -> None:
    for price, size in changes:
        if size > ZERO:
            levels[price] = size
        else:
            levels.pop(price, None)  # deleting a level that is not there is not an error
