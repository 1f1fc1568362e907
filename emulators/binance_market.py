"""The Binance emulator's public market data: ``GET /api/v3/depth`` and the WebSocket Streams
(``/ws/<streamName>``, ``/stream?streams=<a>/<b>``: ``<symbol>@depth``, ``<symbol>@depth@100ms``,
``<symbol>@trade``), from the emulator's own book.

After every change of the paper exchange the levels of each watched symbol (aggregated by
price, the whole book) are compared with those last published; the levels that differ go out as
one ``depthUpdate`` whose update ids follow the last one (``U`` = previous ``u`` + 1, ``u`` = ``U``
+ levels changed - 1: ids count level updates). ``GET /api/v3/depth`` answers the same book with
its ``lastUpdateId``. The account's fills go out as ``trade`` events (``m``: the buyer was the
maker). Events go out at once, not in 100 ms batches.

Faults (:class:`MarketFaults`), set by tests while it runs: a gap (events not sent, their ids
skipped), duplicates (an event twice in a row, or the previous one again after it), a snapshot
held (before or after it is taken) while the diffs keep flowing, and cut connections
(:meth:`BinanceMarketData.drop_streams`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from connectors.base import Instrument, Liquidity, OrderFilled, Side, VenueEvent
from connectors.common.venue import MS
from emulators.binance_support import Refused, num
from emulators.core import EmulatorServer, send_queued

FIRST_UPDATE_ID = 1_000
STREAM_KINDS = ("depth", "depth@100ms", "trade")


@dataclass
class MarketFaults:
    gap_next: int = 0
    """The next N depth events are not sent (their update ids are used all the same)."""
    duplicate_next: int = 0
    """The next N depth events are each sent twice in a row."""
    replay_previous_next: int = 0
    """The next N depth events are each followed by the depth event sent before them (a late
    duplicate)."""
    hold_depth_before: asyncio.Event | None = None
    """``GET /api/v3/depth`` waits for this before taking its snapshot."""
    hold_depth_after: asyncio.Event | None = None
    """``GET /api/v3/depth`` takes its snapshot, then waits for this before answering (the
    diffs after it keep flowing)."""


@dataclass
class _Published:
    """What the streams have said of one symbol's book."""

    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    update_id: int = FIRST_UPDATE_ID
    last_event: bytes | None = None
    """The last depth event (its payload), for ``replay_previous_next``."""


@dataclass(eq=False)
class _Subscriber:
    streams: frozenset[str]
    combined: bool
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


class BinanceMarketData:
    def __init__(self, server: EmulatorServer, instruments: dict[str, Instrument],
                 ping_s: float = 20.0) -> None:
        self.server = server
        self.core = server.core
        self._inst = instruments
        self.ping_s = ping_s
        """The server's ping frames ("The WebSocket server will send a ping frame every 20
        seconds")."""
        self.faults = MarketFaults()
        self.published: dict[str, _Published] = {}
        """Venue symbol -> its book as last published (symbols watched or asked for only)."""
        self.depth_requests = 0
        self.depth_taken = 0
        """Snapshots taken by ``GET /api/v3/depth`` (a held one counts once taken)."""
        self.events_sent = 0
        self._subscribers: set[_Subscriber] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._last_trade: dict[str, int] = {}
        self.core.change_listeners.append(self.on_change)

    # ---- the book ----------------------------------------------------------------------------

    def levels(self, venue_symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The exchange's book of ``venue_symbol`` now, aggregated by price."""
        book = self.core.exchange.book(self._inst[venue_symbol].symbol)
        return dict(book.levels(Side.BUY)), dict(book.levels(Side.SELL))

    def _watch(self, venue_symbol: str) -> _Published:
        pub = self.published.get(venue_symbol)
        if pub is None:
            bids, asks = self.levels(venue_symbol)
            pub = self.published[venue_symbol] = _Published(bids, asks)
        return pub

    def on_change(self, events: list[VenueEvent]) -> None:
        """After each change of the exchange: its trades, then each watched book's diff."""
        for ev in events:
            if isinstance(ev, OrderFilled):
                self._trade(ev)
        for venue_symbol in self.published:
            self._publish_depth(venue_symbol)

    def _publish_depth(self, venue_symbol: str) -> None:
        pub = self.published[venue_symbol]
        bids, asks = self.levels(venue_symbol)
        b, a = _diff(pub.bids, bids), _diff(pub.asks, asks)
        if not b and not a:
            return
        first = pub.update_id + 1
        pub.update_id += len(b) + len(a)
        pub.bids, pub.asks = bids, asks
        now = self.core.now_ms()
        payload = orjson.dumps({"e": "depthUpdate", "E": now, "s": venue_symbol, "U": first,
                                "u": pub.update_id, "b": b, "a": a})
        previous, pub.last_event = pub.last_event, payload
        f = self.faults
        if f.gap_next > 0:
            f.gap_next -= 1
            return
        sends = [payload]
        if f.duplicate_next > 0:
            f.duplicate_next -= 1
            sends.append(payload)
        if f.replay_previous_next > 0 and previous is not None:
            f.replay_previous_next -= 1
            sends.append(previous)
        stream = venue_symbol.lower() + "@depth"
        for data in sends:
            self._send(stream, data, {stream, stream + "@100ms"})

    def _trade(self, ev: OrderFilled) -> None:
        order = self.core.exchange.order(ev.client_order_id)
        if order is None:
            return
        inst = next((i for i in self._inst.values() if i.symbol == order.symbol), None)
        if inst is None:
            return
        trade_id = int(ev.trade_id.lstrip("T"))
        if trade_id <= self._last_trade.get(inst.venue_symbol, -1):
            return  # both sides were ours: one trade
        self._last_trade[inst.venue_symbol] = trade_id
        buyer_is_maker = (order.side is Side.BUY) == (ev.liquidity is Liquidity.MAKER)
        ms = ev.ts_ns // MS
        stream = inst.venue_symbol.lower() + "@trade"
        self._send(stream, orjson.dumps({
            "e": "trade", "E": self.core.now_ms(), "s": inst.venue_symbol, "t": trade_id,
            "p": num(ev.price), "q": num(ev.quantity), "T": ms, "m": buyer_is_maker,
            "M": True}), {stream})

    def _send(self, stream: str, payload: bytes, names: set[str]) -> None:
        for sub in self._subscribers:
            name = next((n for n in names if n in sub.streams), None)
            if name is None:
                continue
            self.events_sent += 1
            if sub.combined:
                sub.queue.put_nowait(f'{{"stream":"{name}","data":{payload.decode()}}}')
            else:
                sub.queue.put_nowait(payload.decode())

    # ---- REST --------------------------------------------------------------------------------

    async def depth(self, params: dict[str, str]) -> Any:
        """``GET /api/v3/depth`` ("Order book"): ``limit`` default 100, at most 5000."""
        self.depth_requests += 1
        name = params.get("symbol", "")
        if name not in self._inst:
            raise Refused(400, -1121, "Invalid symbol.")
        try:
            limit = min(int(params.get("limit", "100")), 5000)
        except ValueError:
            raise Refused(400, -1100, "Illegal characters found in parameter 'limit'; legal "
                          "range is '^[0-9]{1,20}$'.") from None
        if limit <= 0:
            raise Refused(400, -1100, "Illegal characters found in parameter 'limit'.")
        if self.faults.hold_depth_before is not None:
            await self.faults.hold_depth_before.wait()
        self._publish_depth_now(name)
        pub = self.published[name]
        self.depth_taken += 1
        body = {"lastUpdateId": pub.update_id,
                "bids": [[num(p), num(q)] for p, q in sorted(pub.bids.items(),
                                                             reverse=True)[:limit]],
                "asks": [[num(p), num(q)] for p, q in sorted(pub.asks.items())[:limit]]}
        if self.faults.hold_depth_after is not None:
            await self.faults.hold_depth_after.wait()
        return body

    def _publish_depth_now(self, venue_symbol: str) -> None:
        if venue_symbol in self.published:
            self._publish_depth(venue_symbol)  # (every change publishes: nothing, normally)
        else:
            self._watch(venue_symbol)

    def depth_weight(self, params: dict[str, str]) -> int:
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            return 5
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250

    # ---- WebSocket Streams -------------------------------------------------------------------

    def _streams(self, names: list[str]) -> frozenset[str]:
        out = set()
        for n in names:
            symbol, _, kind = n.partition("@")
            if symbol != symbol.lower() or symbol.upper() not in self._inst \
                    or kind not in STREAM_KINDS:
                raise Refused(400, -1121, f"Invalid stream {n!r}.")
            out.add(n)
        if not out:
            raise Refused(400, -1102, "No stream named.")
        return frozenset(out)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        combined = request.path == "/stream"
        raw = request.query.get("streams", "") if combined else request.match_info["stream"]
        try:
            streams = self._streams([s for s in raw.split("/") if s])
        except Refused as r:
            return web.json_response({"code": r.code, "msg": r.msg}, status=r.http)
        self.core.requests.append(("GET", request.path))
        ws = await self.server.open_ws(request, heartbeat=self.ping_s)
        if ws is None:
            return web.Response(status=503, text="Service Unavailable")
        for s in streams:
            if "@depth" in s:
                self._watch(s.partition("@")[0].upper())
        sub = _Subscriber(streams, combined)
        self._subscribers.add(sub)
        self._sockets.add(ws)
        pump = self.server.spawn(send_queued(ws, sub.queue))
        try:
            async for _ in ws:  # requests (SUBSCRIBE, ...) are not emulated
                pass
        finally:
            self._subscribers.discard(sub)
            self._sockets.discard(ws)
            self.server.websockets.discard(ws)
            pump.cancel()
        return ws


    async def drop_streams(self) -> int:
        """Cut every market data connection (the user data stream stays); what was queued
        for them is lost."""
        conns = list(self._sockets)
        self._sockets.clear()
        self._subscribers.clear()
        for ws in conns:
            self.server.websockets.discard(ws)
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"dropped by the emulator")
        return len(conns)

    @property
    def connections(self) -> int:
        return len(self._subscribers)


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> list[list[str]]:
    """The levels of ``new`` that differ from ``old`` and those gone (quantity 0), as
    ``[price, quantity]`` strings."""
    out = [[num(p), num(q)] for p, q in new.items() if old.get(p) != q]
    out += [[num(p), num(Decimal(0))] for p in old if p not in new]
    return out
