#!/usr/bin/env python3
"""The peer of scripts/bench_orders.py: the gateway a team would build on QuickFIX instead of
fixgw, with the same parts and the same durable work per order.

QuickFIX (the ``quickfix`` package: C++ engine, sockets, sessions, FileStore, FileLog, the
FIX 4.4 dictionary validating every incoming message) and this Python Application:

1. a NewOrderSingle is parsed (Decimal prices and quantities) and checked by fixgw's rules
   and texts: the fields (gateway/orders/fixmap.py ``parse_new_order``), the symbol, a live
   duplicate ClOrdID, the instrument's filters (lot size, minimum quantity, tick size, minimum
   notional: gateway/orders/filters.py) and the session's pre-trade limits read from a fixgw
   configuration file (``[session.risk]``: max_order_qty, max_notional, price_band,
   max_open_orders, max_orders_per_second, as gateway/risk/checks.py checks them);
2. the order is a dict; its intent (an ``orders`` row and a ``created`` event carrying it as
   JSON) is committed to SQLite (WAL, ``synchronous=NORMAL``, as fixgw's store) BEFORE the
   matcher is called (a refused order is stored with its ``rejected`` event and its report);
3. a minimal in-process matcher (the simulated venue's instruments and prices: best bid and
   ask one tick either side of the mid; a marketable order fills at once at the best price)
   answers with venue events: accepted, then fill (or canceled for an IOC/FOK that does not
   cross);
4. each venue event is applied to the order and committed (``events``, the ``orders`` row
   updated with its JSON snapshot, ``fills``, and the ExecutionReport's fields in ``reports``)
   BEFORE its ExecutionReport is sent; ExecIDs come from the venue's ids (``events.exec_id``
   is UNIQUE: an event seen twice is dropped).

Two ways to commit (``--commit``):

* ``order`` -- every write is its own transaction, on QuickFIX's socket thread inside
  ``fromApp``: three commits per filled order (intent, ack, fill);
* ``group`` -- ``fromApp`` checks the order and queues its intent; ONE writer thread commits
  everything queued in one transaction, then calls the matcher for the intents of that commit
  and sends the reports of that commit; the venue events it got go into the next transaction
  with whatever arrived meanwhile.

It serves the FIX.4.4 sessions of a fixgw configuration file (``--config``, default the
embedded gateway/defaults/gateway.toml; other BeginStrings are skipped), on ``--port`` (0: a
free one). Prints ``listening on 127.0.0.1:PORT``, runs until SIGTERM/SIGINT, then prints one
line of JSON (orders, commits); on SIGUSR1 it prints that line at once, with the name of each
Python thread by its native id (QuickFIX's own socket thread is not one).

    .venv/bin/python scripts/qf_peer.py --workdir /tmp/peer --commit group [--config gw.toml]
"""

from __future__ import annotations

import argparse
import itertools
import json
import queue
import signal
import socket
import sqlite3
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import quickfix as fix

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "gateway" / "defaults" / "gateway.toml"
VENUE = "paper"
TAKER_FEE = Decimal("0.0005")

# OrdRejReason (103), as fixgw's gateway/orders/fixmap.py
REJ_UNKNOWN_SYMBOL, REJ_LIMIT, REJ_DUPLICATE = "1", "3", "6"
REJ_UNSUPPORTED, REJ_QTY, REJ_OTHER = "11", "13", "99"
MAX_INTEGER_DIGITS, MAX_DECIMALS = 15, 12
SIDES = {"1": "buy", "2": "sell"}
TYPES = {"1": "market", "2": "limit", "3": "stop", "4": "stop_limit"}
TIFS = {"0": "day", "1": "gtc", "3": "ioc", "4": "fok", "6": "gtd"}


@dataclass(frozen=True, slots=True)
class Instrument:
    """As the simulated venue lists it (connectors/paper/market.py)."""

    symbol: str
    tick: Decimal
    lot: Decimal
    min_notional: Decimal
    mid: Decimal


INSTRUMENTS = {i.symbol: i for i in (
    Instrument("BTC/USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("5"), Decimal("97000")),
    Instrument("ETH/USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("5"), Decimal("3400")),
    Instrument("SOL/USDT", Decimal("0.01"), Decimal("0.001"), Decimal("5"), Decimal("180")),
    Instrument("BTC/USDT:USDT", Decimal("0.1"), Decimal("0.001"), Decimal("5"),
               Decimal("97000")),
)}


@dataclass(frozen=True, slots=True)
class Limits:
    """A session's ``[session.risk]`` (the limits the peer implements; others refuse to start)."""

    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None
    price_band: Decimal | None = None
    max_open_orders: int | None = None
    max_orders_per_second: float | None = None


class Refused(Exception):  # noqa: N818 - an answer to the client
    def __init__(self, reason: str, text: str, stored: bool = True) -> None:
        super().__init__(text)
        self.reason, self.text, self.stored = reason, text, stored


# ------------------------------------------------------------------------------------------------
# configuration


def read_config(path: Path) -> tuple[str, dict[str, Limits]]:
    """(SenderCompID, {TargetCompID: limits}) of the FIX.4.4 sessions of a fixgw config."""
    cfg = tomllib.loads(path.read_text())
    sender = cfg.get("gateway", {}).get("sender_comp_id", "GATEWAY")
    known = {"max_order_qty", "max_notional", "price_band", "max_open_orders",
             "max_orders_per_second"}
    sessions = {}
    for s in cfg.get("session", []):
        if s.get("begin_string", "FIX.4.4") != "FIX.4.4":
            continue
        risk = s.get("risk", {})
        other = set(risk) - known
        if other:
            raise SystemExit(f"qf_peer: limits not implemented here: {', '.join(sorted(other))}")

        def dec(key: str, risk: dict[str, Any] = risk) -> Decimal | None:
            return None if key not in risk else Decimal(str(risk[key]))

        rate = risk.get("max_orders_per_second")
        sessions[s["target_comp_id"]] = Limits(
            dec("max_order_qty"), dec("max_notional"), dec("price_band"),
            risk.get("max_open_orders"), None if rate is None else float(rate))
    if not sessions:
        raise SystemExit(f"qf_peer: no FIX.4.4 session in {path}")
    return sender, sessions


def quickfix_settings(port: int, workdir: Path, sender: str, targets: list[str]) -> str:
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptPort={port}",
        "SocketAcceptHost=127.0.0.1",
        "SocketNodelay=Y",
        "StartTime=00:00:00",
        "EndTime=00:00:00",
        f"FileStorePath={workdir / 'store'}",
        f"FileLogPath={workdir / 'log'}",
        "UseDataDictionary=Y",
        f"DataDictionary={REPO / 'gateway' / 'fix' / 'specs' / 'FIX44.xml'}",
        "",
    ]
    for target in targets:
        lines += ["[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={sender}",
                  f"TargetCompID={target}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# the store: SQLite, WAL

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, cl_ord_id TEXT NOT NULL,
    symbol TEXT NOT NULL, status TEXT NOT NULL, is_open INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL, snapshot TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_orders_cl ON orders (session_id, cl_ord_id);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, kind TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, exec_id TEXT UNIQUE, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_events_order ON events (order_id, event_id);
CREATE TABLE IF NOT EXISTS fills (
    trade_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, quantity TEXT NOT NULL,
    price TEXT NOT NULL, fee TEXT NOT NULL, ts_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    exec_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, order_id TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL, exec_type TEXT NOT NULL, ord_status TEXT NOT NULL,
    body TEXT NOT NULL);
"""

Write = tuple[str, tuple[Any, ...]]

INSERT_ORDER = "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
UPDATE_ORDER = ("UPDATE orders SET status = ?, is_open = ?, updated_ns = ?, snapshot = ? "
                "WHERE order_id = ?")
INSERT_EVENT = "INSERT INTO events (order_id, kind, ts_ns, exec_id, data) VALUES (?, ?, ?, ?, ?)"
INSERT_FILL = "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?)"
INSERT_REPORT = "INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?)"


class Store:
    """One connection; ``commit`` runs writes in one transaction."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(SCHEMA)
        self.commits = 0
        last = self.db.execute("SELECT max(CAST(order_id AS INTEGER)) FROM orders").fetchone()
        self.last_order_id = int(last[0] or 0)

    def commit(self, writes: list[Write]) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN")
        try:
            for sql, params in writes:
                cur.execute(sql, params)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        self.commits += 1

    def close(self) -> None:
        self.db.close()


# ------------------------------------------------------------------------------------------------
# the matcher


class Matcher:
    """Best bid and ask one tick either side of each instrument's mid, deep enough for any
    order: a marketable order fills at once at the best price, another rests (an IOC or FOK
    that does not cross is canceled). Events: ("accepted", venue order id), ("fill", trade id,
    quantity, price), ("canceled",)."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.resting: dict[str, dict[str, Any]] = {}
        self.last = {s: i.mid for s, i in INSTRUMENTS.items()}

    def place(self, o: dict[str, Any]) -> list[tuple[Any, ...]]:
        inst = INSTRUMENTS[o["symbol"]]
        vid = f"P{next(self.ids)}"
        buy = o["side"] == "1"
        best = inst.mid + inst.tick if buy else inst.mid - inst.tick
        px: Decimal | None = o["price"]
        events: list[tuple[Any, ...]] = [("accepted", vid)]
        if px is None or (px >= best if buy else px <= best):
            self.last[o["symbol"]] = best
            events.append(("fill", f"T{vid[1:]}", o["quantity"], best))
        elif o["tif"] in ("3", "4"):
            events.append(("canceled",))
        else:
            self.resting[vid] = o
        return events


# ------------------------------------------------------------------------------------------------
# the application


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _positive(msg: fix.Message, tag: int, name: str) -> Decimal | None:
    """As fixgw's ``fixmap._positive``: a positive Decimal of bounded size, or Refused."""
    if not msg.isSetField(tag):
        return None
    try:
        v = Decimal(msg.getField(tag))
    except InvalidOperation:
        raise Refused(REJ_OTHER, f"{name} ({tag}) is not a number", stored=False) from None
    reason = REJ_QTY if tag == 38 else REJ_OTHER
    if not v.is_finite() or v <= 0:
        raise Refused(reason, f"{name} ({tag}) must be positive", stored=False)
    if v.adjusted() >= MAX_INTEGER_DIGITS:
        raise Refused(reason, f"{name} ({tag}) is too large (at most {MAX_INTEGER_DIGITS} "
                              "digits before the decimal point)", stored=False)
    exponent = v.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise Refused(reason, f"{name} ({tag}) has more than {MAX_DECIMALS} decimals",
                      stored=False)
    return v


def _snapshot(o: dict[str, Any]) -> str:
    return json.dumps(o, default=str, separators=(",", ":"))


class Book:
    """Live orders and the risk counters of each session, shared by QuickFIX's thread (new
    orders) and the writer (orders that end)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[tuple[str, str], str] = {}
        self.open: dict[str, int] = {}
        self.recent: dict[str, deque[float]] = {}

    def close(self, o: dict[str, Any]) -> None:
        with self.lock:
            if self.live.get((o["session_id"], o["cl_ord_id"])) == o["order_id"]:
                del self.live[(o["session_id"], o["cl_ord_id"])]
                self.open[o["session_id"]] -= 1


class Peer(fix.Application):  # type: ignore[misc]
    def __init__(self, store: Store, limits: dict[str, Limits], group: bool) -> None:
        super().__init__()
        self.store = store
        self.limits = limits
        self.matcher = Matcher()
        self.book = Book()
        self.order_ids = itertools.count(store.last_order_id + 1)
        self.orders = 0
        self.group = group
        self.queue: queue.SimpleQueue[tuple[list[Write], Callable[[], None]] | None] = (
            queue.SimpleQueue())
        self.writer = threading.Thread(target=self._write_loop, name="writer", daemon=True)
        if group:
            self.writer.start()

    # ---- QuickFIX callbacks --------------------------------------------------------------------
    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802, N803
        if message.getHeader().getField(35) != "D":
            raise fix.UnsupportedMessageType()
        self.orders += 1
        self.new_order(message, sessionID)

    # ---- a new order -----------------------------------------------------------------------------
    def new_order(self, msg: fix.Message, sid: fix.SessionID) -> None:
        order_id = str(next(self.order_ids))
        session = sid.toString()
        try:
            o = self._parse(msg, order_id, session)
        except Refused as exc:  # not even an order: answered, not stored (as fixgw does)
            self._send(sid, self._rejected_body(msg, order_id, exc))
            return
        refusal = self._check(o, sid.getTargetCompID().getValue())
        if refusal is not None:
            writes, body = self._intent(o, refusal)
            self._commit(writes, lambda: self._send(sid, body))
            return
        writes, _ = self._intent(o, None)
        self._commit(writes, lambda: self._to_venue(o, sid))

    def _parse(self, msg: fix.Message, order_id: str, session: str) -> dict[str, Any]:
        side = msg.getField(54)
        if side not in SIDES:
            raise Refused(REJ_UNSUPPORTED, f"Side (54) {side} is not supported", stored=False)
        otype = msg.getField(40)
        if otype not in ("1", "2"):
            raise Refused(REJ_UNSUPPORTED, f"OrdType (40) {otype} is not supported",
                          stored=False)
        qty = _positive(msg, 38, "OrderQty")
        if qty is None:
            raise Refused(REJ_QTY, "OrderQty (38) is required", stored=False)
        price = _positive(msg, 44, "Price")
        if otype == "2" and price is None:
            raise Refused(REJ_OTHER, "Price (44) is required for a limit order", stored=False)
        if otype == "1" and price is not None:
            raise Refused(REJ_OTHER, "Price (44) is not allowed on a market order",
                          stored=False)
        tif = msg.getField(59) if msg.isSetField(59) else "0"
        if tif not in TIFS or tif == "6":
            raise Refused(REJ_UNSUPPORTED, f"TimeInForce (59) {tif} is not supported",
                          stored=False)
        symbol = msg.getField(55)
        if symbol not in INSTRUMENTS:
            raise Refused(REJ_UNKNOWN_SYMBOL, f"unknown symbol {symbol} at {VENUE}",
                          stored=False)
        return {"order_id": order_id, "session_id": session, "cl_ord_id": msg.getField(11),
                "symbol": symbol, "side": side, "type": otype, "quantity": qty, "price": price,
                "tif": tif, "status": "A", "cum_qty": Decimal(0), "avg_px": Decimal(0),
                "venue_order_id": None, "created_ns": time.time_ns(), "text": None}

    def _check(self, o: dict[str, Any], target: str) -> Refused | None:
        """fixgw's order: a live duplicate ClOrdID, the instrument's filters, the session's
        limits (quantity, notional, price band), then its counts (open orders, rate)."""
        key = (o["session_id"], o["cl_ord_id"])
        if key in self.book.live:
            return Refused(REJ_DUPLICATE, f"duplicate ClOrdID {o['cl_ord_id']}: a live order "
                                          "has it")
        inst = INSTRUMENTS[o["symbol"]]
        qty: Decimal = o["quantity"]
        price: Decimal | None = o["price"]
        if qty % inst.lot != 0:
            return Refused(REJ_QTY, f"OrderQty {qty} is not a multiple of the lot size "
                                    f"{inst.lot} of {inst.symbol}")
        if qty < inst.lot:
            return Refused(REJ_QTY, f"OrderQty {qty} is below the minimum {inst.lot} of "
                                    f"{inst.symbol}")
        if price is not None and price % inst.tick != 0:
            return Refused(REJ_OTHER, f"Price {price} is not a multiple of the tick size "
                                      f"{inst.tick} of {inst.symbol}")
        if price is not None and price * qty < inst.min_notional:
            return Refused(REJ_QTY, f"notional {price * qty} is below the minimum "
                                    f"{inst.min_notional} of {inst.symbol}")
        lim = self.limits.get(target)
        if lim is None:
            return None
        last = self.matcher.last[o["symbol"]]
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return Refused(REJ_LIMIT, f"risk: quantity {qty} exceeds max_order_qty "
                                      f"{lim.max_order_qty}")
        ref = price if price is not None else last
        if lim.max_notional is not None:
            notional = qty * ref
            if notional > lim.max_notional:
                return Refused(REJ_LIMIT, f"risk: notional {notional.normalize():f} exceeds "
                                          f"max_notional {lim.max_notional}")
        if lim.price_band is not None and price is not None:
            distance = abs(price - last) / last
            if distance > lim.price_band:
                return Refused(REJ_LIMIT, f"risk: price {price} is {distance:.2%} from the last "
                                          f"price {last}, beyond price_band {lim.price_band}")
        session = o["session_id"]
        with self.book.lock:
            n = self.book.open.get(session, 0)
            if lim.max_open_orders is not None and n >= lim.max_open_orders:
                return Refused(REJ_LIMIT, f"risk: {n} open orders, max_open_orders is "
                                          f"{lim.max_open_orders}")
            if lim.max_orders_per_second is not None:
                now = time.monotonic()
                window = self.book.recent.setdefault(session, deque())
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= lim.max_orders_per_second:
                    return Refused(REJ_LIMIT, "risk: order rate over max_orders_per_second "
                                              f"{lim.max_orders_per_second}")
                window.append(now)
            self.book.live[key] = o["order_id"]
            self.book.open[session] = n + 1
        return None

    # ---- records and reports ---------------------------------------------------------------------
    def _intent(self, o: dict[str, Any], refused: Refused | None
                ) -> tuple[list[Write], list[tuple[int, str]]]:
        """The order's ``created`` event (and, refused: its ``rejected`` event and report)."""
        ts = o["created_ns"]
        writes: list[Write] = [
            (INSERT_ORDER, (o["order_id"], o["session_id"], o["cl_ord_id"], o["symbol"], "A", 1,
                            ts, _snapshot(o))),
            (INSERT_EVENT, (o["order_id"], "created", ts, None, _snapshot({"order": o}))),
        ]
        if refused is None:
            return writes, []
        o["status"], o["text"] = "8", refused.text
        body = self._report(o, "8", f"{o['order_id']}.R",
                            [(58, refused.text), (103, refused.reason)])
        writes += [
            (UPDATE_ORDER, ("8", 0, ts, _snapshot(o), o["order_id"])),
            (INSERT_EVENT, (o["order_id"], "rejected", ts, f"{o['order_id']}.R",
                            json.dumps({"text": refused.text, "ord_rej_reason": refused.reason}))),
            self._report_row(o, "8", f"{o['order_id']}.R", body),
        ]
        return writes, body

    def _report(self, o: dict[str, Any], exec_type: str, exec_id: str,
                extra: list[tuple[int, str]]) -> list[tuple[int, str]]:
        body = [(6, str(o["avg_px"])), (11, o["cl_ord_id"]), (14, str(o["cum_qty"])),
                (17, exec_id), (37, o["order_id"]), (38, str(o["quantity"])), (39, o["status"]),
                (40, o["type"]), (54, o["side"]), (55, o["symbol"]), (59, o["tif"]),
                (60, _now()), (150, exec_type),
                (151, "0" if o["status"] in "248" else str(o["quantity"] - o["cum_qty"]))]
        if o["price"] is not None:
            body.append((44, str(o["price"])))
        if o["venue_order_id"] is not None:
            body.append((198, o["venue_order_id"]))
        return body + extra

    @staticmethod
    def _report_row(o: dict[str, Any], exec_type: str, exec_id: str,
                    body: list[tuple[int, str]]) -> Write:
        text = "|".join(f"{t}={v}" for t, v in sorted(body))
        return (INSERT_REPORT, (exec_id, o["session_id"], o["order_id"], o["cl_ord_id"],
                                exec_type, o["status"], text))

    def _event(self, o: dict[str, Any], ev: tuple[Any, ...]
               ) -> tuple[list[Write], list[tuple[int, str]]]:
        """Apply a venue event to its order: the writes (event, order, fill, report) and the
        ExecutionReport to send once they are committed."""
        kind = ev[0]
        ts = time.time_ns()
        writes: list[Write] = []
        extra: list[tuple[int, str]] = []
        if kind == "accepted":
            o["venue_order_id"], o["status"] = ev[1], "0"
            exec_type, exec_id, data = "0", f"{o['order_id']}.{ev[1]}", {"venue_order_id": ev[1]}
        elif kind == "fill":
            _, trade_id, qty, px = ev
            cum = o["cum_qty"] + qty
            o["avg_px"] = (o["avg_px"] * o["cum_qty"] + px * qty) / cum
            o["cum_qty"] = cum
            o["status"] = "2" if cum >= o["quantity"] else "1"
            fee = qty * px * TAKER_FEE
            exec_type, exec_id = "F", f"{o['order_id']}.{trade_id}"
            data = {"trade_id": trade_id, "quantity": str(qty), "price": str(px)}
            writes.append((INSERT_FILL, (trade_id, o["order_id"], str(qty), str(px), str(fee),
                                         ts)))
            extra = [(12, str(fee)), (13, "3"), (31, str(px)), (32, str(qty)), (851, "2")]
        else:  # canceled
            o["status"] = "4"
            exec_type, exec_id, data = "4", f"{o['order_id']}.{o['venue_order_id']}.X", {}
        body = self._report(o, exec_type, exec_id, extra)
        is_open = 0 if o["status"] in "248" else 1
        writes += [
            (INSERT_EVENT, (o["order_id"], kind, ts, exec_id, json.dumps(data))),
            (UPDATE_ORDER, (o["status"], is_open, ts, _snapshot(o), o["order_id"])),
            self._report_row(o, exec_type, exec_id, body),
        ]
        return writes, body

    @staticmethod
    def _rejected_body(msg: fix.Message, order_id: str, exc: Refused) -> list[tuple[int, str]]:
        def get(tag: int, default: str) -> str:
            return msg.getField(tag) if msg.isSetField(tag) else default

        body = [(6, "0"), (11, get(11, "NONE")), (14, "0"), (17, f"{order_id}.R"),
                (37, order_id), (39, "8"), (54, get(54, "1")), (55, get(55, "NONE")),
                (58, exc.text), (103, exc.reason), (150, "8"), (151, "0")]
        if msg.isSetField(38):
            body.append((38, msg.getField(38)))
        return body

    @staticmethod
    def _send(sid: fix.SessionID, body: list[tuple[int, str]]) -> None:
        er = fix.Message()
        er.getHeader().setField(35, "8")
        for tag, value in body:
            er.setField(tag, value)
        fix.Session.sendToTarget(er, sid)

    # ---- the venue and the commits ---------------------------------------------------------------
    def _to_venue(self, o: dict[str, Any], sid: fix.SessionID) -> None:
        """The intent is committed: call the matcher; each event committed, then reported."""
        for ev in self.matcher.place(o):
            writes, body = self._event(o, ev)
            ended = o["status"] in "248"
            self._commit(writes, lambda body=body, ended=ended: self._reported(o, sid, body,
                                                                               ended))

    def _reported(self, o: dict[str, Any], sid: fix.SessionID, body: list[tuple[int, str]],
                  ended: bool) -> None:
        self._send(sid, body)
        if ended:  # its ClOrdID and its place among the open orders are free
            self.book.close(o)

    def _commit(self, writes: list[Write], then: Callable[[], None]) -> None:
        if self.group:
            self.queue.put((writes, then))
        else:
            self.store.commit(writes)
            then()

    def _write_loop(self) -> None:
        """Group commit: everything queued in one transaction, then what follows each write
        (the matcher's events are queued here and join the next transaction)."""
        q = self.queue
        while True:
            item = q.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    q.put(None)
                    break
                batch.append(item)
            self.store.commit([w for writes, _ in batch for w in writes])
            for _, then in batch:
                then()

    def stop(self) -> None:
        if self.group:
            self.queue.put(None)
            self.writer.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0: pick a free port")
    ap.add_argument("--workdir", type=Path, required=True,
                    help="QuickFIX's store and log, and the SQLite file peer.db")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                    help="a fixgw configuration: its FIX.4.4 sessions and their limits")
    ap.add_argument("--commit", choices=["order", "group"], default="order")
    args = ap.parse_args()
    port = args.port
    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    sender, limits = read_config(args.config)
    args.workdir.mkdir(parents=True, exist_ok=True)
    cfg = args.workdir / "acceptor.cfg"
    cfg.write_text(quickfix_settings(port, args.workdir, sender, list(limits)))
    store = Store(args.workdir / "peer.db")
    app = Peer(store, limits, args.commit == "group")
    st = fix.SessionSettings(str(cfg))
    acceptor = fix.SocketAcceptor(app, fix.FileStoreFactory(st), st, fix.FileLogFactory(st))
    acceptor.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: print(json.dumps({
        "orders": app.orders, "commits": store.commits,
        "threads": {t.native_id: t.name for t in threading.enumerate()}}), flush=True))
    while not stop.is_set():
        time.sleep(0.2)
    acceptor.stop()
    app.stop()
    print(json.dumps({"orders": app.orders, "commits": store.commits}), flush=True)
    store.close()


if __name__ == "__main__":
    main()
