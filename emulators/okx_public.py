"""The OKX emulator's public WebSocket (``/ws/v5/public``): the ``books`` channel (400 levels)
and the ``trades`` channel of the emulator's own book, as docs-v5 "Order Book Trading / Market
Data / WS / Order book channel" and "... / All trades channel" describe them.

On subscribing, a ``snapshot`` (``prevSeqId`` -1); after every change of the exchange, an
``update`` with the levels that changed (size "0": deleted), ``prevSeqId`` the ``seqId`` of
the previous push and a larger ``seqId``, and the signed CRC32 ``checksum`` of the top 25
levels a side (computed here independently of the connector). :meth:`OkxPublic.heartbeat`
pushes the documented "no update" message (empty sides, ``seqId`` = ``prevSeqId``). A fill of
the account is a public trade, ``side`` the taker's.

Faults (:class:`PublicFaults`, changed by tests while it runs): updates lost (a gap), a wrong
checksum, a corrupted size under a right checksum, duplicates, checksum 0 on every push (as OKX
sends since its deprecation of the field); a disconnect is ``EmulatorServer.drop_streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from connectors.base import Instrument, Liquidity, OrderFilled, Side, VenueEvent
from emulators.core import EmulatorCore, level_changes, send_queued
from emulators.okx_wire import s

DEPTH = 400


@dataclass
class PublicFaults:
    """Mutable: tests change them while the emulator runs. Counters apply to book updates."""

    drop_next: int = 0
    """The next N updates are not sent (their ids are skipped: a gap)."""
    bad_checksum_next: int = 0
    """The next N updates carry a wrong checksum (their levels are right)."""
    corrupt_next: int = 0
    """The next N updates carry a wrong size for their first level, under the checksum of the
    true book."""
    duplicate_next: int = 0
    """The next N updates are sent twice."""
    zero_checksum: bool = False
    """Every push has ``checksum: 0``."""


def okx_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """docs-v5 "Checksum": ``bid:ask:bid:ask...`` of the top 25 levels, signed CRC32."""
    parts = []
    for bid, ask in itertools.zip_longest(bids[:25], asks[:25]):
        parts += [f"{bid[0]}:{bid[1]}"] if bid else []
        parts += [f"{ask[0]}:{ask[1]}"] if ask else []
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc > 2**31 - 1 else crc


@dataclass
class _Book:
    inst: Instrument
    seq: int
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    out: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    books: dict[str, _Book] = field(default_factory=dict)
    trades: set[str] = field(default_factory=set)


class OkxPublic:
    def __init__(self, core: EmulatorCore, instruments: dict[str, Instrument],
                 contracts: Callable[[Instrument, Decimal], Decimal]) -> None:
        self.core = core
        self.instruments = instruments
        self.contracts = contracts
        self.faults = PublicFaults()
        self.subscribes = 0
        self.unsubscribes = 0
        self.updates_sent = 0
        self._conns: set[_Conn] = set()
        self._seq = itertools.count(1000, 3)
        core.change_listeners.append(self._changed)

    # ---- what is published ---------------------------------------------------------------------

    def _levels(self, inst: Instrument) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        book = self.core.exchange.book(inst.symbol)
        return (dict(book.levels(Side.BUY)[:DEPTH]), dict(book.levels(Side.SELL)[:DEPTH]))

    def _wire(self, inst: Instrument, levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
        return [[s(p), s(self.contracts(inst, q)) if q else "0", "0", "1" if q else "0"]
                for p, q in levels]

    def _checksum(self, b: _Book) -> int:
        if self.faults.zero_checksum:
            return 0
        bids = [(s(p), s(self.contracts(b.inst, q))) for p, q in
                sorted(b.bids.items(), reverse=True)[:25]]
        asks = [(s(p), s(self.contracts(b.inst, q))) for p, q in sorted(b.asks.items())[:25]]
        return okx_checksum(bids, asks)

    def _push(self, b: _Book, action: str, bids: list[list[str]], asks: list[list[str]],
              prev: int, checksum: int) -> str:
        data = {"asks": asks, "bids": bids, "ts": str(self.core.now_ms()), "checksum": checksum,
                "prevSeqId": prev, "seqId": b.seq}
        return json.dumps({"arg": {"channel": "books", "instId": b.inst.venue_symbol},
                           "action": action, "data": [data]}, separators=(",", ":"))

    def _snapshot(self, conn: _Conn, inst: Instrument) -> None:
        b = _Book(inst, next(self._seq))
        b.bids, b.asks = self._levels(inst)
        conn.books[inst.venue_symbol] = b
        bids = self._wire(inst, sorted(b.bids.items(), reverse=True))
        asks = self._wire(inst, sorted(b.asks.items()))
        conn.out.put_nowait(self._push(b, "snapshot", bids, asks, -1, self._checksum(b)))

    def _changed(self, events: list[VenueEvent]) -> None:
        for conn in list(self._conns):
            for b in conn.books.values():
                self._update(conn, b)
            if conn.trades:
                self._trades(conn, events)

    def _update(self, conn: _Conn, b: _Book) -> None:
        new_bids, new_asks = self._levels(b.inst)
        bid_changes = level_changes(b.bids, new_bids, reverse=True)
        ask_changes = level_changes(b.asks, new_asks, reverse=False)
        if not bid_changes and not ask_changes:
            return
        b.bids, b.asks = new_bids, new_asks
        prev, b.seq = b.seq, next(self._seq)
        faults = self.faults
        if faults.drop_next > 0:
            faults.drop_next -= 1
            return
        bids, asks = self._wire(b.inst, bid_changes), self._wire(b.inst, ask_changes)
        checksum = self._checksum(b)
        if faults.bad_checksum_next > 0:
            faults.bad_checksum_next -= 1
            checksum = checksum + 1 if checksum != 2**31 - 1 else 1
        elif faults.corrupt_next > 0:
            faults.corrupt_next -= 1
            side = bids if bids else asks
            side[0] = [side[0][0], s(Decimal(side[0][1]) + 7), "0", "1"]
        text = self._push(b, "update", bids, asks, prev, checksum)
        conn.out.put_nowait(text)
        self.updates_sent += 1
        if faults.duplicate_next > 0:
            faults.duplicate_next -= 1
            conn.out.put_nowait(text)

    def last_seq(self, symbol: str) -> int | None:
        """The ``seqId`` of the last update of ``symbol``'s book (sent or lost), on the first
        connection subscribed to it."""
        for conn in self._conns:
            for b in conn.books.values():
                if b.inst.symbol == symbol:
                    return b.seq
        return None

    def heartbeat(self) -> None:
        """OKX's "no update" push on every book subscription: empty sides, ``prevSeqId`` =
        ``seqId`` = the last one."""
        for conn in list(self._conns):
            for b in conn.books.values():
                conn.out.put_nowait(self._push(b, "update", [], [], b.seq, self._checksum(b)))

    def _trades(self, conn: _Conn, events: list[VenueEvent]) -> None:
        ex = self.core.exchange
        for ev in events:
            if not isinstance(ev, OrderFilled):
                continue
            order = ex.order(ev.client_order_id)
            if order is None:
                continue
            inst = next((i for i in self.instruments.values() if i.symbol == order.symbol), None)
            if inst is None or inst.venue_symbol not in conn.trades:
                continue
            other = Side.SELL if order.side is Side.BUY else Side.BUY
            taker = order.side if ev.liquidity is Liquidity.TAKER else other
            data = {"instId": inst.venue_symbol, "tradeId": ev.trade_id, "px": s(ev.price),
                    "sz": s(self.contracts(inst, ev.quantity)), "side": taker.value,
                    "ts": str(ev.ts_ns // 1_000_000), "count": "1"}
            conn.out.put_nowait(json.dumps(
                {"arg": {"channel": "trades", "instId": inst.venue_symbol}, "data": [data]},
                separators=(",", ":")))

    # ---- the connection ------------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse, idle_timeout_s: float) -> None:
        conn = _Conn(ws)
        self._conns.add(conn)
        pump = asyncio.ensure_future(send_queued(conn.ws, conn.out))
        try:
            while not ws.closed:
                try:
                    msg = await ws.receive(timeout=idle_timeout_s)
                except TimeoutError:
                    break
                if msg.type is not WSMsgType.TEXT:
                    break
                if msg.data == "ping":
                    conn.out.put_nowait("pong")
                    continue
                self._request(conn, msg.data)
        finally:
            self._conns.discard(conn)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _request(self, conn: _Conn, text: str) -> None:
        def reply(obj: dict[str, Any]) -> None:
            conn.out.put_nowait(json.dumps(obj, separators=(",", ":")))

        try:
            req = json.loads(text)
            op, args = req["op"], list(req["args"])
        except (ValueError, KeyError, TypeError):
            reply({"event": "error", "code": "60012", "msg": f"Invalid request: {text}"})
            return
        for arg in args:
            channel, inst_id = arg.get("channel"), arg.get("instId", "")
            inst = self.instruments.get(inst_id)
            if channel not in ("books", "trades") or inst is None or op not in (
                    "subscribe", "unsubscribe"):
                reply({"event": "error", "code": "60018",
                       "msg": f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist."})
                continue
            reply({"event": op, "arg": {"channel": channel, "instId": inst_id}})
            if op == "subscribe":
                self.subscribes += 1
                if channel == "books":
                    self._snapshot(conn, inst)
                else:
                    conn.trades.add(inst_id)
            else:
                self.unsubscribes += 1
                if channel == "books":
                    conn.books.pop(inst_id, None)
                else:
                    conn.trades.discard(inst_id)


