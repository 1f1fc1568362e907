"""OKX's public order book, kept in sync by OKX's own rules (sans-I/O: raw messages in,
:data:`~connectors.common.marketfeed.Outcome` out).

docs-v5 "Order Book Trading / Market Data / WS / Order book channel" (``books``, 400 levels):

- the first push after subscribing is ``action: snapshot`` (``prevSeqId`` -1), then
  ``action: update`` with the levels that changed; a size of "0" deletes the level;
- "``prevSeqId``: Sequence ID of the last sent message"; an update is in sequence when its
  ``prevSeqId`` equals the ``seqId`` of the message applied before it, else messages were lost
  and the book must be rebuilt: we resubscribe for a new snapshot;
- "No update: ... ``prevSeqId`` = ``seqId``": when the book does not change for a while OKX
  pushes an update with empty ``bids``/``asks`` whose ``seqId`` equals the previous one; the
  rule above holds for it unchanged. After a sequence reset (maintenance) ``seqId`` may be
  smaller than ``prevSeqId``; the rule still holds;
- "Checksum": a signed 32-bit CRC32 over the top 25 bids and asks, alternating
  ``bid:ask:bid:ask`` with each level as ``price:size`` (the strings as sent), the longer side
  continuing alone. A mismatch means the book is wrong: resubscribe. OKX announced
  (2026-05-21, "Order Book Channels Checksum Field Deprecation") that ``checksum`` becomes
  always 0 and that ``seqId``/``prevSeqId`` continuity is the check to rely on; a checksum of 0
  is therefore not verified (as ccxt does since PR #30299), and never ends the stream.

An exact repeat of the last applied message (same ``prevSeqId`` and ``seqId``) is dropped and
counted; any other break of the sequence is a gap.

Sizes of a SWAP are contracts; they leave here as base units (x ``ctVal``).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from decimal import Decimal

from connectors.base import Level, PublicTrade, Side
from connectors.common.marketfeed import Applied, Outcome, OutOfSync, Traded
from connectors.common.venue import ms_to_ns
from connectors.okx import schemas

CHECKSUM_LEVELS = 25


def checksum_text(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
    """The string OKX's checksum is computed over (docs-v5 "Checksum"): best levels first."""
    return _interleaved([f"{p}:{q}" for p, q in bids], [f"{p}:{q}" for p, q in asks])


def _interleaved(bids: list[str], asks: list[str]) -> str:
    """``bid1:ask1:bid2:ask2...``, the longer side going on alone."""
    if len(bids) == len(asks):
        return ":".join([x for pair in zip(bids, asks, strict=True) for x in pair])
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts.append(bids[i])
        if i < len(asks):
            parts.append(asks[i])
    return ":".join(parts)


def signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class _Side:
    """One side of the book: price -> (price string, size string, size, "price:size" as the
    checksum writes it), and the prices sorted ascending (best bid last, best ask first).
    ``touched`` is set when a change reaches the best :data:`CHECKSUM_LEVELS` (the levels
    the checksum covers)."""

    __slots__ = ("levels", "prices", "bids", "touched")

    def __init__(self, bids: bool) -> None:
        self.levels: dict[Decimal, tuple[str, str, Decimal, str]] = {}
        self.prices: list[Decimal] = []
        self.bids = bids
        self.touched = True

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()
        self.touched = True

    def _in_checksum(self, price: Decimal) -> bool:
        prices = self.prices
        if len(prices) <= CHECKSUM_LEVELS:
            return True
        return price >= prices[-CHECKSUM_LEVELS] if self.bids else price <= prices[
            CHECKSUM_LEVELS - 1]

    def set(self, px: str, sz: str) -> tuple[Decimal, Decimal]:
        price, size = Decimal(px), Decimal(sz)
        if size:
            if price not in self.levels:
                insort(self.prices, price)
            self.levels[price] = (px, sz, size, f"{px}:{sz}")
            if not self.touched and self._in_checksum(price):
                self.touched = True
        elif price in self.levels:
            if not self.touched and self._in_checksum(price):
                self.touched = True
            del self.levels[price]
            del self.prices[bisect_left(self.prices, price)]
        return price, size

    def best(self, n: int) -> list[Decimal]:
        return self.prices[:-n - 1:-1] if self.bids else self.prices[:n]


class BookSync:
    """The ``books`` and ``trades`` channels of one instrument (see the module doc)."""

    def __init__(self, symbol: str, inst_id: str, ct_val: Decimal | None = None) -> None:
        self.symbol = symbol
        self.inst_id = inst_id
        self.ct_val = ct_val
        self._bids = _Side(True)
        self._asks = _Side(False)
        self.synced = False
        self.seq_id = -1
        self._prev_seq_id = -1
        self.resyncs = 0
        self.gaps = 0
        self.checksum_failures = 0
        self.checksums_verified = 0
        self.duplicates = 0
        self.snapshots = 0
        self._checksum = 0

    def reset(self) -> None:
        self.synced = False
        self._bids.clear()
        self._asks.clear()

    def receive(self, raw: bytes | str) -> Outcome:
        if raw == "pong" or raw == b"pong":
            return None
        push = schemas.PUBLIC.decode(raw)
        if push.arg is None or push.arg.instId != self.inst_id:
            return None  # an event: subscribe / unsubscribe acknowledged, or an error
        if push.arg.channel == "books":
            out: Outcome = None
            for data in schemas.BOOK_DATA.decode(push.data):
                out = self._book(push.action, data)
                if isinstance(out, OutOfSync):
                    break
            return out
        if push.arg.channel == "trades":
            return Traded([self._trade(t) for t in schemas.TRADE_DATA.decode(push.data)])
        return None

    def _out_of_sync(self, reason: str) -> OutOfSync:
        self.resyncs += 1
        self.reset()
        return OutOfSync(reason)

    def _book(self, action: str, d: schemas.BookData) -> Outcome:
        if action == "snapshot":
            self.reset()
            self.snapshots += 1
        elif not self.synced:
            return None  # updates of a subscription we are replacing
        elif d.prevSeqId != self.seq_id:
            if d.prevSeqId == self._prev_seq_id and d.seqId == self.seq_id:
                self.duplicates += 1
                return None
            self.gaps += 1
            return self._out_of_sync(f"prevSeqId {d.prevSeqId} after seqId {self.seq_id}")
        bids = [self._bids.set(lv[0], lv[1]) for lv in d.bids]
        asks = [self._asks.set(lv[0], lv[1]) for lv in d.asks]
        self._prev_seq_id, self.seq_id = d.prevSeqId, d.seqId
        self.synced = True
        if d.checksum and d.checksum != self.checksum():
            self.checksum_failures += 1
            return self._out_of_sync(f"checksum {d.checksum} != {self.checksum()}")
        if d.checksum:
            self.checksums_verified += 1
        ct = self.ct_val
        if ct is not None:
            bids = [(p, q * ct) for p, q in bids]
            asks = [(p, q * ct) for p, q in asks]
        return Applied(action == "snapshot", bids, asks, ms_to_ns(d.ts))

    def checksum(self) -> int:
        """The signed CRC32 of the book as it is (docs-v5 "Checksum"); computed again only
        when a change reached the levels it covers."""
        b, a = self._bids, self._asks
        if not (b.touched or a.touched):
            return self._checksum
        bids = [b.levels[p][3] for p in b.best(CHECKSUM_LEVELS)]
        asks = [a.levels[p][3] for p in a.best(CHECKSUM_LEVELS)]
        self._checksum = signed_crc32(_interleaved(bids, asks))
        b.touched = a.touched = False
        return self._checksum

    def _trade(self, t: schemas.TradeData) -> PublicTrade:
        size = Decimal(t.sz)
        if self.ct_val is not None:
            size *= self.ct_val
        side = Side.BUY if t.side == "buy" else Side.SELL if t.side == "sell" else None
        return PublicTrade(self.symbol, Decimal(t.px), size, side, t.tradeId, ms_to_ns(t.ts))

    def levels(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        ct = self.ct_val or Decimal(1)
        sides = []
        for side in (self._bids, self._asks):
            best = side.best(len(side.prices))
            sides.append(tuple((p, side.levels[p][2] * ct) for p in best))
        return sides[0], sides[1]
