"""MarketDataRequest (V) over FIX: answered with MarketDataSnapshotFullRefresh (W), then, while
subscribed, MarketDataIncrementalRefresh (X) or full refreshes; refused with
MarketDataRequestReject (Y) with MDReqRejReason (281) and a text.

One venue's book when the instrument names it (SecurityExchange 207 = a configured venue), the
consolidated book of every venue the session may use otherwise; every entry names its venue
in MDMkt (275). What a subscriber holds is known exactly (what it was sent), so an update is
the difference between the book now and that: a client that reads slowly is sent one message
at a time (the next only once the last was written), each with the latest state of every level
that changed meanwhile -- conflated, never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.base import PublicTrade, Side
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.message import Message, fix_decimal
from gateway.fix.session import Session, SessionID

from .book import Book
from .feeds import MarketData, NoMarketData

log = logging.getLogger("fixgw.marketdata")

# MDReqRejReason (281)
UNKNOWN_SYMBOL = b"0"
DUPLICATE_MD_REQ_ID = b"1"
INSUFFICIENT_PERMISSIONS = b"3"
UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE = b"4"
UNSUPPORTED_MARKET_DEPTH = b"5"
UNSUPPORTED_MD_UPDATE_TYPE = b"6"
UNSUPPORTED_AGGREGATED_BOOK = b"7"
UNSUPPORTED_MD_ENTRY_TYPE = b"8"

BID, OFFER, TRADE = b"0", b"1", b"2"
ENTRY_TYPES = frozenset({BID, OFFER, TRADE})
NEW, CHANGE, DELETE = b"0", b"1", b"2"  # MDUpdateAction (279)

MAX_PENDING_TRADES = 1000
"""Trades kept for a subscriber between two of its messages; older ones are dropped (counted)."""

Entry = tuple[bytes, str, Decimal]
"""(MDEntryType, venue, price): one line of what a subscriber holds."""


class Refused(Exception):  # noqa: N818
    def __init__(self, reason: bytes | None, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True, slots=True)
class Request:
    req_id: bytes
    kind: bytes  # SubscriptionRequestType (263): 0 snapshot, 1 + updates, 2 unsubscribe
    depth: int  # 0: the whole book
    incremental: bool
    types: frozenset[bytes]
    instruments: tuple[tuple[str, str | None], ...]  # (Symbol, SecurityExchange)


def parse_request(msg: Message) -> Request:
    req_id = msg.get(262) or b""
    kind = msg.get(263) or b""
    if kind not in (b"0", b"1", b"2"):
        raise Refused(UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE,
                      f"SubscriptionRequestType {kind.decode(errors='replace')} is not supported")
    depth = msg.get_int(264) or 0
    if depth < 0:
        raise Refused(UNSUPPORTED_MARKET_DEPTH, f"MarketDepth {depth} is not supported")
    update = msg.get(265)
    if update not in (None, b"0", b"1"):
        raise Refused(UNSUPPORTED_MD_UPDATE_TYPE,
                      f"MDUpdateType {update.decode(errors='replace')} is not supported")
    if msg.get(266) == b"N":
        raise Refused(UNSUPPORTED_AGGREGATED_BOOK, "only aggregated books (266=Y) are served")
    types = frozenset(g.get(269) or b"" for g in msg.group(267))
    unknown = sorted(t.decode(errors="replace") for t in types - ENTRY_TYPES)
    if unknown:
        raise Refused(UNSUPPORTED_MD_ENTRY_TYPE,
                      f"MDEntryType {', '.join(unknown)} is not supported (0 bid, 1 offer, 2 "
                      "trade)")
    instruments = tuple(
        ((g.get_str(55) or ""), g.get_str(207)) for g in msg.group(146)
    )
    return Request(req_id, kind, depth, update != b"0", types or ENTRY_TYPES, instruments)


@dataclass(eq=False)
class Subscription:
    """One instrument of one request of one session."""

    session: Session
    request: Request
    symbol: str
    venues: tuple[str, ...]
    single: str | None
    """The venue the instrument named (SecurityExchange), None for the consolidated book."""
    sent: dict[Entry, Decimal] = field(default_factory=dict)
    trades: list[tuple[str, PublicTrade]] = field(default_factory=list)
    """The trades since the last message, with their venues (the latest
    :data:`MAX_PENDING_TRADES`)."""
    trades_dropped: int = 0
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def book_changed(self, book: Book, trades: Sequence[PublicTrade]) -> None:
        if trades and TRADE in self.request.types:
            self.trades.extend((book.venue, t) for t in trades)
            excess = len(self.trades) - MAX_PENDING_TRADES
            if excess > 0:  # a subscriber that does not keep up gets the latest trades
                del self.trades[:excess]
                self.trades_dropped += excess
        self.dirty.set()


Flush = Callable[[SessionID], Coroutine[Any, Any, None]]


class MarketDataRequests:
    """Answers MarketDataRequest (V) of the sessions that may use the venues."""

    def __init__(self, md: MarketData, venues_for: Callable[[Session], frozenset[str] | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.md = md
        self.venues_for = venues_for
        self.clock = clock
        self._flush: Flush | None = None
        self._subs: dict[tuple[SessionID, bytes], list[Subscription]] = {}
        self._ts = TimestampFormatter(3)

    def bind(self, flush: Flush) -> None:
        """The driver's flush: carries out what was queued on a session, returns once
        written."""
        self._flush = flush

    # --- requests ---------------------------------------------------------------------------

    def on_request(self, session: Session, msg: Message, now: float) -> Awaitable[bool]:
        return asyncio.get_running_loop().create_task(self._on_request(session, msg))

    async def _on_request(self, session: Session, msg: Message) -> bool:
        req_id = msg.get(262) or b""
        key = (session.sid, req_id)
        reserved = False
        try:
            req = parse_request(msg)
            if req.kind == b"2":
                self._unsubscribe(session, req.req_id)
                return True
            if req.kind == b"1":
                if key in self._subs:
                    raise Refused(DUPLICATE_MD_REQ_ID, f"MDReqID "
                                  f"{req_id.decode(errors='replace')} is already subscribed")
                self._subs[key] = []  # taken now: a second request with it is a duplicate
                reserved = True
            subs = await self._subscriptions(session, req)
        except Refused as exc:
            if reserved:
                self._subs.pop(key, None)
            return self._reject(session, req_id, exc)
        except Exception as exc:  # the venue could not be asked (VenueError, ...)
            if reserved:
                self._subs.pop(key, None)
            log.warning("%s: MarketDataRequest %s failed: %r", session.sid,
                        req_id.decode(errors="replace"), exc)
            return self._reject(session, req_id,
                                Refused(None, f"market data unavailable: {exc}"))
        if req.kind == b"1":
            if self._subs.get(key) != []:  # the session logged out meanwhile
                self._drop(subs)
                return False
            self._subs[key] = subs
        for sub in subs:
            if not self._send_full(sub):
                self._drop(subs)
                return False
            if req.kind == b"1":
                sub.task = asyncio.get_running_loop().create_task(
                    self._updates(sub), name=f"md-{session.sid}-{req.req_id.decode()}")
        if req.kind == b"0":
            self._drop(subs)
        await self._flushed(session)
        return True

    async def _subscriptions(self, session: Session, req: Request) -> list[Subscription]:
        allowed = self.venues_for(session)
        if allowed is None:
            raise Refused(INSUFFICIENT_PERMISSIONS, "no market data for this session")
        if not req.instruments:
            raise Refused(UNKNOWN_SYMBOL, "no instrument (NoRelatedSym 146) in the request")
        feeds = [v for v in self.md.venues() if v in allowed]
        subs: list[Subscription] = []
        try:
            for symbol, exchange in req.instruments:
                if exchange is not None:
                    if exchange not in allowed:
                        raise Refused(INSUFFICIENT_PERMISSIONS,
                                      f"venue {exchange} is not one this session may use")
                    venues = [exchange]
                else:
                    venues = [v for v in feeds if symbol in await self.md.listed(v)]
                if not venues:
                    raise Refused(UNKNOWN_SYMBOL, f"{symbol} is listed at no venue with "
                                  "market data that this session may use")
                sub = Subscription(session, req, symbol, tuple(venues), exchange)
                subs.append(sub)
                for venue in venues:
                    try:
                        await self.md.watch(venue, symbol, sub)
                    except NoMarketData as exc:
                        raise Refused(UNKNOWN_SYMBOL, str(exc)) from None
        except BaseException:
            self._drop(subs)
            raise
        return subs

    def _unsubscribe(self, session: Session, req_id: bytes) -> None:
        subs = self._subs.pop((session.sid, req_id), None)
        if subs is None:
            raise Refused(None, f"MDReqID {req_id.decode(errors='replace')} is not subscribed")
        self._drop(subs)

    def _drop(self, subs: Sequence[Subscription]) -> None:
        for sub in subs:
            for venue in sub.venues:
                self.md.unwatch(venue, sub.symbol, sub)
            if sub.task is not None and sub.task is not asyncio.current_task():
                sub.task.cancel()

    def on_logout(self, session: Session) -> None:
        for key in [k for k in self._subs if k[0] == session.sid]:
            self._drop(self._subs.pop(key))

    async def close(self) -> None:
        for key in list(self._subs):
            self._drop(self._subs.pop(key))

    # --- sending ----------------------------------------------------------------------------

    def _reject(self, session: Session, req_id: bytes, exc: Refused) -> bool:
        body = [(262, req_id)]
        if exc.reason is not None:
            body.append((281, exc.reason))
        body.append((58, exc.text.encode()))
        return self._send(session, b"Y", body)

    def _send(self, session: Session, msg_type: bytes, body: list[tuple[int, bytes]]) -> bool:
        return session.send_if_logged_on(msg_type, body, self.clock())

    async def _flushed(self, session: Session) -> None:
        if self._flush is not None:
            await self._flush(session.sid)

    def _window(self, sub: Subscription) -> dict[Entry, Decimal]:
        """What the subscriber is to hold now: the best ``depth`` levels a side (across the
        venues, each level with its venue)."""
        out: dict[Entry, Decimal] = {}
        books = [b for b in (self.md.book(v, sub.symbol) for v in sub.venues) if b is not None]
        depth = sub.request.depth
        for entry_type, side in ((BID, Side.BUY), (OFFER, Side.SELL)):
            if entry_type not in sub.request.types:
                continue
            levels = [(price, book.venue, size) for book in books
                      for price, size in book.top(side, depth)]
            levels.sort(key=lambda x: (-x[0] if side is Side.BUY else x[0], x[1]))
            for price, venue, size in levels[:depth] if depth > 0 else levels:
                out[(entry_type, venue, price)] = size
        return out

    def _send_full(self, sub: Subscription) -> bool:
        """A MarketDataSnapshotFullRefresh (W) of the subscription's book; what it holds
        afterwards is exactly that."""
        window = self._window(sub)
        entries: list[tuple[int, bytes]] = []
        for (entry_type, venue, price), size in window.items():
            entries += [(269, entry_type), (270, fix_decimal(price)), (271, fix_decimal(size)),
                        (275, venue.encode())]
        count = len(window)
        if TRADE in sub.request.types:
            for venue in sub.venues:
                book = self.md.book(venue, sub.symbol)
                if book is not None and book.last_trade is not None:
                    t = book.last_trade
                    entries += [(269, TRADE), (270, fix_decimal(t.price)),
                                (271, fix_decimal(t.size)), (275, venue.encode())]
                    count += 1
        sub.trades.clear()
        body: list[tuple[int, bytes]] = [(262, sub.request.req_id), (55, sub.symbol.encode())]
        if sub.single is not None:
            body.append((207, sub.single.encode()))
        if sub.session.appl_version == "FIX.5.0SP2":
            body.append((779, self._ts.format(self.clock())))  # LastUpdateTime (5.0SP2)
        body.append((268, b"%d" % count))
        body += entries
        sub.sent = window
        return self._send(sub.session, b"W", body)

    def _send_changes(self, sub: Subscription) -> bool | None:
        """A MarketDataIncrementalRefresh (X) from what the subscriber holds to the book now,
        and the trades since the last; None when nothing changed."""
        window = self._window(sub)
        symbol = sub.symbol.encode()
        entries: list[tuple[int, bytes]] = []
        count = 0
        for key, size in window.items():
            before = sub.sent.get(key)
            if before == size:
                continue
            entry_type, venue, price = key
            entries += [(279, NEW if before is None else CHANGE), (269, entry_type),
                        (55, symbol), (270, fix_decimal(price)), (271, fix_decimal(size)),
                        (275, venue.encode())]
            count += 1
        for key in sub.sent.keys() - window.keys():
            entry_type, venue, price = key
            entries += [(279, DELETE), (269, entry_type), (55, symbol), (270, fix_decimal(price)),
                        (275, venue.encode())]
            count += 1
        trades, sub.trades = sub.trades, []
        for venue, t in trades:
            entries += [(279, NEW), (269, TRADE), (55, symbol), (270, fix_decimal(t.price)),
                        (271, fix_decimal(t.size)), (275, venue.encode())]
            count += 1
        sub.sent = window
        if not count:
            return None
        body = [(262, sub.request.req_id), (268, b"%d" % count), *entries]
        return self._send(sub.session, b"X", body)

    async def _updates(self, sub: Subscription) -> None:
        """Send what changed, one message at a time: the next only once the last was
        written, with everything that changed meanwhile."""
        try:
            while True:
                await sub.dirty.wait()
                sub.dirty.clear()
                sent = (self._send_changes(sub) if sub.request.incremental
                        else self._send_full(sub))
                if sent is None:
                    continue
                if not sent:
                    break
                await self._flushed(sub.session)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: market data %s of %s failed", sub.session.sid,
                          sub.request.req_id.decode(errors="replace"), sub.symbol)
        with contextlib.suppress(KeyError):
            subs = self._subs[(sub.session.sid, sub.request.req_id)]
            if sub in subs:
                self._drop([sub])

