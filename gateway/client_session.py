"""The FIX initiator session behind ``fixgw client`` (:mod:`gateway.client`).

Sequence numbers are kept in a small JSON state file so the next run continues where this one
stopped, as a FIX counterparty must. The client keeps no message store across runs: it answers a
ResendRequest with SequenceReset-GapFill for everything but the application messages it sent on
this connection (those are resent with PossDupFlag). It asks for a resend itself when the
gateway's MsgSeqNum jumps, and holds the messages after the gap until the gap is filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TextIO

from gateway.fix.codec import (
    Frame,
    FrameParser,
    GarbledMessage,
    StreamError,
    encode,
    split_fields,
    verify_frame,
)
from gateway.fix.fixtime import format_utc

# ------------------------------------------------------------------------------------------------
# names for the readable form

MSG_NAMES: dict[str, str] = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject",
    "4": "SequenceReset", "5": "Logout", "A": "Logon", "8": "ExecutionReport",
    "9": "OrderCancelReject", "D": "NewOrderSingle", "F": "OrderCancelRequest",
    "G": "OrderCancelReplaceRequest", "H": "OrderStatusRequest", "AF": "OrderMassStatusRequest",
    "q": "OrderMassCancelRequest", "r": "OrderMassCancelReport", "j": "BusinessMessageReject",
}

FIELD_NAMES: dict[int, str] = {
    1: "Account", 6: "AvgPx", 7: "BeginSeqNo", 11: "ClOrdID", 12: "Commission", 13: "CommType",
    14: "CumQty", 16: "EndSeqNo", 17: "ExecID", 18: "ExecInst", 31: "LastPx", 32: "LastQty",
    34: "MsgSeqNum", 36: "NewSeqNo", 37: "OrderID", 38: "OrderQty", 39: "OrdStatus",
    40: "OrdType", 41: "OrigClOrdID", 43: "PossDupFlag", 44: "Price", 45: "RefSeqNum",
    54: "Side", 55: "Symbol", 58: "Text", 59: "TimeInForce", 60: "TransactTime",
    98: "EncryptMethod", 99: "StopPx", 100: "ExDestination", 102: "CxlRejReason",
    103: "OrdRejReason", 108: "HeartBtInt", 112: "TestReqID", 122: "OrigSendingTime",
    123: "GapFillFlag", 126: "ExpireTime", 141: "ResetSeqNumFlag", 150: "ExecType",
    151: "LeavesQty", 198: "SecondaryOrderID", 371: "RefTagID", 372: "RefMsgType",
    373: "SessionRejectReason", 379: "BusinessRejectRefID", 380: "BusinessRejectReason",
    434: "CxlRejResponseTo", 479: "CommCurrency", 530: "MassCancelRequestType",
    531: "MassCancelResponse", 532: "MassCancelRejectReason", 533: "TotalAffectedOrders",
    553: "Username", 554: "Password", 584: "MassStatusReqID", 585: "MassStatusReqType",
    789: "NextExpectedMsgSeqNum", 851: "LastLiquidityInd", 911: "TotNumReports",
    912: "LastRptRequested", 1128: "ApplVerID", 1137: "DefaultApplVerID",
    1369: "MassActionReportID", 8013: "CancelOnDisconnect",
}

# Fields the readable form leaves out (the header, the trailer and bookkeeping); -v shows all.
_HIDDEN = frozenset({8, 9, 10, 34, 35, 49, 52, 56, 43, 122, 13, 17, 60})
# Fields shown first, in this order (the rest follow in wire order).
_FIRST: dict[str, tuple[int, ...]] = {
    "8": (150, 39, 11, 41, 37, 55, 54, 38, 40, 44, 59, 32, 31, 14, 151, 6),
    "9": (11, 41, 37, 39, 434, 102),
    "D": (11, 54, 55, 38, 40, 44, 59),
}
_SECRETS = frozenset({554, 925})

_ADMIN = frozenset({"0", "1", "2", "3", "4", "5", "A"})


class ClientError(Exception):
    """The run cannot succeed; the message says why (printed, exit code 1)."""


@dataclass(frozen=True, slots=True)
class FixMessage:
    """One message as it came off the wire (values decoded as UTF-8)."""

    raw: bytes
    fields: tuple[tuple[int, str], ...]

    @classmethod
    def parse(cls, raw: bytes) -> FixMessage:
        return cls(raw, tuple((t, v.decode("utf-8", "replace")) for t, v in split_fields(raw)))

    def get(self, tag: int) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    @property
    def msg_type(self) -> str:
        return self.get(35) or ""

    @property
    def seq(self) -> int:
        v = self.get(34) or ""
        return int(v) if v.isdigit() else 0

    @property
    def poss_dup(self) -> bool:
        return self.get(43) == "Y"


def readable(msg_type: str, fields: Iterable[tuple[int, str]]) -> str:
    """``ExecutionReport ExecType=F OrdStatus=2 ClOrdID=... LastQty=... ...``."""
    body = [(t, v) for t, v in fields if t not in _HIDDEN]
    first = _FIRST.get(msg_type, ())
    ordered = [(t, v) for t in first for tt, v in body if tt == t]
    ordered += [(t, v) for t, v in body if t not in first]
    parts = [MSG_NAMES.get(msg_type, f"MsgType={msg_type}")]
    for t, v in ordered:
        shown = "***" if t in _SECRETS else v
        parts.append(f"{FIELD_NAMES.get(t, str(t))}={shown}")
    return " ".join(parts)


def raw_text(raw: bytes) -> str:
    """The message with ``|`` for SOH and passwords masked."""
    out = []
    for part in raw.split(b"\x01"):
        tag, sep, _ = part.partition(b"=")
        if sep and tag.isdigit() and int(tag) in _SECRETS:
            part = tag + b"=***"
        out.append(part.decode("utf-8", "replace"))
    return "|".join(out)


class Printer:
    """Writes what is sent (``>``) and received (``<``); with ``verbose`` the raw message too."""

    def __init__(self, out: TextIO, err: TextIO, verbose: bool) -> None:
        self.out = out
        self.err = err
        self.verbose = verbose

    def message(self, direction: str, msg_type: str, fields: Iterable[tuple[int, str]],
                raw: bytes, note: str = "") -> None:
        print(f"{direction} {readable(msg_type, fields)}{note}", file=self.out, flush=True)
        if self.verbose:
            print(f"  {raw_text(raw)}", file=self.out, flush=True)

    def info(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(f"fixgw client: {text}", file=self.err, flush=True)


# ------------------------------------------------------------------------------------------------
# the state file


@dataclass
class ClientState:
    """Sequence numbers per session and the orders placed, in a small JSON file.

    Saved before every message is written (so a crash never reuses a MsgSeqNum) and after every
    message is received."""

    path: Path
    session: str
    next_out: int = 1
    next_in: int = 1
    orders: dict[str, dict[str, str]] = field(default_factory=dict)
    _sessions: dict[str, dict[str, int]] = field(default_factory=dict)

    MAX_ORDERS: ClassVar[int] = 200

    @classmethod
    def load(cls, path: Path, session: str) -> ClientState:
        st = cls(path, session)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return st
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read the state file {path}: {exc} (delete it and run "
                              "with --reset)") from None
        try:
            st._sessions = {str(k): {"next_out": int(v["next_out"]), "next_in": int(v["next_in"])}
                            for k, v in dict(raw.get("sessions", {})).items()}
            st.orders = {str(k): {str(a): str(b) for a, b in dict(v).items()}
                         for k, v in dict(raw.get("orders", {})).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ClientError(f"the state file {path} is malformed ({exc!r}): delete it and run "
                              "with --reset") from None
        mine = st._sessions.get(session)
        if mine is not None:
            st.next_out, st.next_in = mine["next_out"], mine["next_in"]
        return st

    def save(self) -> None:
        self._sessions[self.session] = {"next_out": self.next_out, "next_in": self.next_in}
        data = {"sessions": self._sessions, "orders": self.orders}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def remember(self, cl_ord_id: str, info: dict[str, str]) -> None:
        self.orders.pop(cl_ord_id, None)
        self.orders[cl_ord_id] = info
        while len(self.orders) > self.MAX_ORDERS:
            del self.orders[next(iter(self.orders))]


# ------------------------------------------------------------------------------------------------
# the session


@dataclass(frozen=True, slots=True)
class SessionConfig:
    host: str
    port: int
    sender: str
    target: str
    fixt: bool
    heartbeat: int
    timeout: float

    @property
    def begin_string(self) -> str:
        return "FIXT.1.1" if self.fixt else "FIX.4.4"


Body = list[tuple[int, str]]


class ClientSession:
    """One initiator connection: sequence numbers, admin messages, gap handling.

    :meth:`receive` returns the application messages (and Reject / BusinessMessageReject) in
    MsgSeqNum order; everything else is answered here."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cfg: SessionConfig,
        state: ClientState,
        printer: Printer,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.cfg = cfg
        self.state = state
        self.printer = printer
        self.parser = FrameParser(max_size=1 << 24)
        self.logged_on = False
        self.logout_sent = False
        self.logout_text: str | None = None
        """Text of the gateway's Logout, once it arrived."""
        self.gateway_logout = False
        """The gateway started the logout (not an answer to ours)."""
        self.closed = False
        self._ready: deque[FixMessage] = deque()
        self._queue: dict[int, tuple[FixMessage, bool]] = {}
        self._resend_until: int | None = None
        self._sent: dict[int, tuple[str, Body, bytes]] = {}
        self._last_sent = time.monotonic()

    @classmethod
    async def connect(cls, cfg: SessionConfig, state: ClientState,
                      printer: Printer) -> ClientSession:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(cfg.host, cfg.port), cfg.timeout)
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot connect to {cfg.host}:{cfg.port}: {exc or 'timeout'} "
                              "(is `fixgw run` running?)") from None
        return cls(reader, writer, cfg, state, printer)

    # --- sending ---------------------------------------------------------------------------

    async def send(self, msg_type: str, body: Body) -> int:
        """Send with the next MsgSeqNum (saved first); returns it."""
        seq = self.state.next_out
        self.state.next_out += 1
        self.state.save()
        now = format_utc(time.time()).decode()
        if msg_type not in _ADMIN:
            self._sent[seq] = (msg_type, body, now.encode())
        await self._write(msg_type, seq, body, now)
        return seq

    async def _write(self, msg_type: str, seq: int, body: Body, sending_time: str,
                     header: Body | None = None, note: str = "") -> None:
        fields: Body = [(35, msg_type), (34, str(seq)), (49, self.cfg.sender),
                        (52, sending_time), (56, self.cfg.target), *(header or []), *body]
        raw = encode(self.cfg.begin_string.encode(), [(t, v.encode()) for t, v in fields])
        self.printer.message(">", msg_type, body, raw, note)
        self._last_sent = time.monotonic()
        if self.closed:
            return
        try:
            self.writer.write(raw)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self.closed = True

    async def _answer_resend(self, begin: int, end: int) -> None:
        """Resend this connection's application messages; gap-fill everything else."""
        last = self.state.next_out - 1
        if end == 0 or end > last:
            end = last
        gap: int | None = None
        now = format_utc(time.time()).decode()
        for seq in range(max(begin, 1), end + 1):
            sent = self._sent.get(seq)
            if sent is None:
                if gap is None:
                    gap = seq
                continue
            if gap is not None:
                await self._gap_fill(gap, seq, now)
                gap = None
            msg_type, body, orig = sent
            await self._write(msg_type, seq, body, now,
                              header=[(43, "Y"), (122, orig.decode())], note=" (resent)")
        if gap is not None:
            await self._gap_fill(gap, end + 1, now)

    async def _gap_fill(self, begin: int, new_seq: int, now: str) -> None:
        await self._write("4", begin, [(123, "Y"), (36, str(new_seq))], now,
                          header=[(43, "Y"), (122, now)])

    # --- receiving -------------------------------------------------------------------------

    async def receive(self, deadline: float) -> FixMessage | None:
        """The next application message, or None at ``deadline`` (``loop.time()``).

        Sends Heartbeats when idle; raises ClientError when the gateway logs out or closes."""
        loop = asyncio.get_running_loop()
        while not self._ready:
            if self.gateway_logout:
                raise ClientError(f"the gateway logged out: {self.logout_text}")
            now = loop.time()
            if now >= deadline:
                return None
            hb_due = self._last_sent + self.cfg.heartbeat - time.monotonic()
            if hb_due <= 0:
                await self.send("0", [])
                continue
            await self._read(min(deadline - now, hb_due))
        return self._ready.popleft()

    async def _read(self, within: float) -> None:
        if self.closed:
            raise ClientError(self._closed_text())
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), within)
        except TimeoutError:
            return
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.closed = True
            if self.logout_text is not None:
                raise ClientError(f"the gateway logged out: {self.logout_text}")
            raise ClientError(self._closed_text())
        self.parser.feed(data)
        for ev in self.parser.frames():
            if isinstance(ev, StreamError):
                self.closed = True
                raise ClientError(f"the gateway sent an unreadable stream: {ev.reason}")
            if isinstance(ev, Frame):
                await self._on_frame(ev.data)
            else:
                self.printer.info(f"! garbled message ignored ({ev.reason})")

    def _closed_text(self) -> str:
        if not self.logged_on:
            return ("the gateway closed the connection during logon (unknown SenderCompID/"
                    "TargetCompID, wrong username or password, or this session is already "
                    "logged on elsewhere?)")
        return "the gateway closed the connection"

    async def _on_frame(self, data: bytes) -> None:
        reason = verify_frame(data)
        if reason is None:
            try:
                msg = FixMessage.parse(data)
            except GarbledMessage as exc:
                reason = str(exc)
        if reason is not None:
            self.printer.info(f"! garbled message ignored ({reason})")
            return
        mt = msg.msg_type
        self.printer.message("<", mt, msg.fields, data, " (PossDup)" if msg.poss_dup else "")
        seq = msg.seq
        st = self.state
        if mt == "4" and msg.get(123) != "Y":  # SequenceReset-Reset: no MsgSeqNum check
            new = msg.get(36) or ""
            if new.isdigit() and int(new) > st.next_in:
                st.next_in = int(new)
                st.save()
            await self._drain_queue()
            return
        if mt == "A" and msg.get(141) == "Y":
            st.next_in = seq
        if seq > st.next_in:
            processed = False
            if mt in ("A", "5", "2"):
                # a Logon, Logout or ResendRequest is acted on now (the gateway must not wait for
                # our gap fill while we wait for its); it is counted when the gap is filled
                await self._process(msg)
                processed = True
            self._queue[seq] = (msg, processed)
            if self._resend_until is None:
                self.printer.info(f"! MsgSeqNum too high, expecting {st.next_in} but received "
                                  f"{seq}: asking for a resend")
                self._resend_until = seq - 1
                await self.send("2", [(7, str(st.next_in)), (16, "0")])
            return
        if seq < st.next_in:
            if msg.poss_dup:
                return  # a duplicate of what we already have
            if mt == "5":
                await self._process(msg)
                return
            text = f"MsgSeqNum too low, expecting {st.next_in} but received {seq}"
            await self.logout(text, wait=False)
            raise ClientError(f"{text}: the sequence numbers are out of step with the gateway "
                              "(run again with --reset to start both at 1)")
        st.next_in = seq + 1
        await self._process(msg)
        st.save()
        await self._drain_queue()

    async def _drain_queue(self) -> None:
        st = self.state
        while st.next_in in self._queue:
            msg, processed = self._queue.pop(st.next_in)
            st.next_in += 1
            if not processed:
                await self._process(msg)
            st.save()
        for seq in [s for s in self._queue if s < st.next_in]:
            del self._queue[seq]
        if self._resend_until is not None and st.next_in > self._resend_until:
            self._resend_until = None

    async def _process(self, msg: FixMessage) -> None:
        mt = msg.msg_type
        if mt == "0":
            return
        if mt == "1":
            await self.send("0", [(112, msg.get(112) or "")])
        elif mt == "2":
            await self._answer_resend(int(msg.get(7) or 0), int(msg.get(16) or 0))
        elif mt == "4":
            new = msg.get(36) or ""
            if new.isdigit() and int(new) > self.state.next_in:
                self.state.next_in = int(new)
        elif mt == "5":
            self.logout_text = msg.get(58) or "no reason given"
            if not self.logout_sent:
                self.gateway_logout = True
                await self.logout(None, wait=False)
        elif mt == "A":
            self.logged_on = True
        else:
            self._ready.append(msg)

    # --- logon and logout ------------------------------------------------------------------

    async def logon(self, *, reset: bool, username: str | None, password: str | None) -> None:
        if reset:
            self.state.next_out = 1
            self.state.next_in = 1
        body: Body = [(98, "0"), (108, str(self.cfg.heartbeat))]
        if reset:
            body.append((141, "Y"))
        if username is not None:
            body.append((553, username))
        if password is not None:
            body.append((554, password))
        if self.cfg.fixt:
            body.append((1137, "9"))  # FIX.5.0SP2
        await self.send("A", body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.timeout
        while not self.logged_on:
            if self.logout_text is not None:
                hint = (" (the sequence numbers are out of step: run again with --reset to "
                        "start both at 1)" if "too low" in self.logout_text else "")
                raise ClientError(f"logon refused: {self.logout_text}{hint}")
            if loop.time() >= deadline:
                raise ClientError(f"no Logon answer within {self.cfg.timeout:g}s")
            try:
                await self._read(deadline - loop.time())
            except ClientError as exc:
                raise ClientError(f"logon failed: {exc}") from None

    async def logout(self, text: str | None = None, *, wait: bool = True) -> None:
        """Send Logout; with ``wait``, read until the gateway answers it (or closes)."""
        if self.logout_sent or self.closed:
            return
        self.logout_sent = True
        await self.send("5", [(58, text)] if text else [])
        if not wait:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.timeout
        while self.logout_text is None and not self.closed and loop.time() < deadline:
            try:
                await self._read(deadline - loop.time())
            except ClientError:
                break
        self._ready.clear()

    async def close(self) -> None:
        self.closed = True
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)
