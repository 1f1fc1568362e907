"""The Bybit emulator's public WebSockets (``/v5/public/spot``, ``/v5/public/linear``): the
``orderbook.{depth}.{symbol}`` and ``publicTrade.{symbol}`` topics of the emulator's own book, as
docs/v5/websocket/public/orderbook and .../public/trade describe them.

On subscribing, a ``snapshot``; after every change of the exchange, a ``delta`` with the levels
of the top ``depth`` that changed (size "0": deleted, also when a level leaves the window), its
``u`` one more than the previous push's, ``seq`` increasing. A fill of the account is a public
trade, ``S`` the taker's side.

Faults (:class:`PublicFaults`, changed by tests while it runs): deltas lost (a gap in ``u``),
duplicates, the next change sent as a new snapshot (optionally with ``u`` = 1, as after a
service restart); a disconnect is ``EmulatorServer.drop_streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from connectors.base import Instrument, Liquidity, OrderFilled, Side, VenueEvent
from emulators.core import EmulatorCore, level_changes, send_queued

DEPTHS = (1, 50, 200, 1000)


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass
class PublicFaults:
    """Mutable: tests change them while the emulator runs. Counters apply to book deltas."""

    drop_next: int = 0
    """The next N deltas are not sent (their ``u`` is skipped: a gap)."""
    duplicate_next: int = 0
    """The next N deltas are sent twice."""
    snapshot_next: int = 0
    """The next N changes are sent as a new snapshot instead of a delta."""
    restart: bool = False
    """Such a snapshot has ``u`` = 1 (a service restart), and the deltas count on from it."""


@dataclass
class _Book:
    inst: Instrument
    depth: int
    topic: str
    u: int
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    category: str
    conn_id: str
    out: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    books: dict[str, _Book] = field(default_factory=dict)
    trades: dict[str, Instrument] = field(default_factory=dict)


class BybitPublic:
    def __init__(self, core: EmulatorCore, category_of: dict[str, str]) -> None:
        """``category_of``: canonical symbol -> spot | linear."""
        self.core = core
        self.category_of = category_of
        self.faults = PublicFaults()
        self.subscribes = 0
        self.unsubscribes = 0
        self.deltas_sent = 0
        self._conns: set[_Conn] = set()
        self._ids = itertools.count(1)
        self._u = itertools.count(18521288)
        self._seq = itertools.count(7961638724, 11)
        core.change_listeners.append(self._changed)

    def _instrument(self, category: str, venue_symbol: str) -> Instrument | None:
        for inst in self.core.exchange.instruments():
            if inst.venue_symbol == venue_symbol and self.category_of[inst.symbol] == category:
                return inst
        return None

    def _levels(self, b: _Book) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        book = self.core.exchange.book(b.inst.symbol)
        return (dict(book.levels(Side.BUY)[:b.depth]), dict(book.levels(Side.SELL)[:b.depth]))

    def _push(self, b: _Book, kind: str, bids: list[tuple[Decimal, Decimal]],
              asks: list[tuple[Decimal, Decimal]]) -> str:
        now = self.core.now_ms()
        data = {"s": b.inst.venue_symbol, "b": [[_s(p), _s(q)] for p, q in bids],
                "a": [[_s(p), _s(q)] for p, q in asks], "u": b.u, "seq": next(self._seq)}
        return json.dumps({"topic": b.topic, "type": kind, "ts": now, "data": data, "cts": now},
                          separators=(",", ":"))

    def _snapshot(self, conn: _Conn, b: _Book) -> None:
        b.bids, b.asks = self._levels(b)
        conn.out.put_nowait(self._push(b, "snapshot", sorted(b.bids.items(), reverse=True),
                                       sorted(b.asks.items())))

    def _changed(self, events: list[VenueEvent]) -> None:
        for conn in list(self._conns):
            for b in conn.books.values():
                self._update(conn, b)
            if conn.trades:
                self._trades(conn, events)

    def _update(self, conn: _Conn, b: _Book) -> None:
        new_bids, new_asks = self._levels(b)
        bid_changes = level_changes(b.bids, new_bids, reverse=True)
        ask_changes = level_changes(b.asks, new_asks, reverse=False)
        if not bid_changes and not ask_changes:
            return
        faults = self.faults
        if faults.snapshot_next > 0:
            faults.snapshot_next -= 1
            b.u = 1 if faults.restart else b.u + 1
            self._snapshot(conn, b)
            return
        b.bids, b.asks = new_bids, new_asks
        b.u += 1
        if faults.drop_next > 0:
            faults.drop_next -= 1
            return
        text = self._push(b, "delta", bid_changes, ask_changes)
        conn.out.put_nowait(text)
        self.deltas_sent += 1
        if faults.duplicate_next > 0:
            faults.duplicate_next -= 1
            conn.out.put_nowait(text)

    def last_u(self, symbol: str) -> int | None:
        for conn in self._conns:
            for b in conn.books.values():
                if b.inst.symbol == symbol:
                    return b.u
        return None

    def _trades(self, conn: _Conn, events: list[VenueEvent]) -> None:
        ex = self.core.exchange
        for ev in events:
            if not isinstance(ev, OrderFilled):
                continue
            order = ex.order(ev.client_order_id)
            if order is None:
                continue
            inst = next((i for i in conn.trades.values() if i.symbol == order.symbol), None)
            if inst is None:
                continue
            other = Side.SELL if order.side is Side.BUY else Side.BUY
            taker = order.side if ev.liquidity is Liquidity.TAKER else other
            ms = ev.ts_ns // 1_000_000
            item = {"T": ms, "s": inst.venue_symbol, "S": "Buy" if taker is Side.BUY else "Sell",
                    "v": _s(ev.quantity), "p": _s(ev.price), "L": "PlusTick", "i": ev.trade_id,
                    "BT": False}
            conn.out.put_nowait(json.dumps(
                {"topic": f"publicTrade.{inst.venue_symbol}", "type": "snapshot", "ts": ms,
                 "data": [item]}, separators=(",", ":")))

    # ---- the connection ------------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse, category: str) -> None:
        conn = _Conn(ws, category, f"pub-{next(self._ids)}")
        self._conns.add(conn)
        pump = asyncio.ensure_future(send_queued(conn.ws, conn.out))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                self._request(conn, msg.data)
        finally:
            self._conns.discard(conn)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _request(self, conn: _Conn, text: str) -> None:
        """docs/v5/ws/connect: ``{"op": "subscribe" | "unsubscribe" | "ping", "args": [...]}``
        answered ``{"success", "ret_msg", "conn_id", "req_id", "op"}``."""
        def reply(op: str, ok: bool, ret_msg: str, req_id: str) -> None:
            conn.out.put_nowait(json.dumps({"success": ok, "ret_msg": ret_msg,
                                            "conn_id": conn.conn_id, "req_id": req_id,
                                            "op": op}, separators=(",", ":")))

        try:
            req = json.loads(text)
            op, req_id = str(req["op"]), str(req.get("req_id", ""))
        except (ValueError, KeyError, TypeError):
            return
        if op == "ping":
            reply("ping", True, "pong", req_id)
            return
        if op not in ("subscribe", "unsubscribe"):
            reply(op, False, f"error:op {op} not supported", req_id)
            return
        topics = [str(t) for t in req.get("args") or []]
        parsed = [self._topic(conn.category, t) for t in topics]
        bad = [t for t, p in zip(topics, parsed, strict=True) if p is None]
        if bad:
            reply(op, False, f"error:handler not found,topic:{bad[0]}", req_id)
            return
        reply(op, True, "", req_id)
        for topic, p in zip(topics, parsed, strict=True):
            assert p is not None
            kind, depth, inst = p
            if op == "subscribe":
                self.subscribes += 1
                if kind == "orderbook":
                    b = _Book(inst, depth, topic, next(self._u))
                    conn.books[topic] = b
                    self._snapshot(conn, b)
                else:
                    conn.trades[topic] = inst
            else:
                self.unsubscribes += 1
                conn.books.pop(topic, None)
                conn.trades.pop(topic, None)

    def _topic(self, category: str, topic: str) -> tuple[str, int, Instrument] | None:
        parts = topic.split(".")
        if parts[0] == "orderbook" and len(parts) == 3 and parts[1].isdigit():
            depth, venue_symbol = int(parts[1]), parts[2]
            if depth not in DEPTHS:
                return None
        elif parts[0] == "publicTrade" and len(parts) == 2:
            depth, venue_symbol = 0, parts[1]
        else:
            return None
        inst = self._instrument(category, venue_symbol)
        return None if inst is None else (parts[0], depth, inst)


