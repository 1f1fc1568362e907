"""The FIX initiator session behind ``fixgw client`` (:mod:`gateway.client`).

The FIX is the gateway's own session (:class:`gateway.fix.session.Session` in the initiator
role, driven by :mod:`gateway.initiator`): the client sends its Logon and waits for the answer,
asks for a resend when the gateway's MsgSeqNum jumps and holds what follows the gap until it is
filled, answers a ResendRequest (the application messages it sent on this connection resent
with PossDupFlag, everything else gap-filled: it keeps no message store across runs), and keeps
the line alive. Sequence numbers are kept in a small JSON state file so the next run continues
where this one stopped, as a FIX counterparty must.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TextIO

from gateway.fix.codec import split_fields
from gateway.fix.dictionary import DataDictionary, standard
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.states import Role
from gateway.initiator import Initiator, InitiatorClosed

# ------------------------------------------------------------------------------------------------
# names for the readable form

MSG_NAMES: dict[str, str] = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject",
    "4": "SequenceReset", "5": "Logout", "A": "Logon", "8": "ExecutionReport",
    "9": "OrderCancelReject", "D": "NewOrderSingle", "F": "OrderCancelRequest",
    "G": "OrderCancelReplaceRequest", "H": "OrderStatusRequest", "AF": "OrderMassStatusRequest",
    "q": "OrderMassCancelRequest", "r": "OrderMassCancelReport", "j": "BusinessMessageReject",
    "V": "MarketDataRequest", "W": "MarketDataSnapshotFullRefresh",
    "X": "MarketDataIncrementalRefresh", "Y": "MarketDataRequestReject",
    "x": "SecurityListRequest", "y": "SecurityList", "BB": "CollateralInquiry",
    "BA": "CollateralReport", "BG": "CollateralInquiryAck", "AN": "RequestForPositions",
    "AO": "RequestForPositionsAck", "AP": "PositionReport", "E": "NewOrderList",
    "N": "ListStatus", "M": "ListStatusRequest", "K": "ListCancelRequest",
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
    1369: "MassActionReportID", 8013: "CancelOnDisconnect", 66: "ListID", 67: "ListSeqNo",
    68: "TotNoOrders", 73: "NoOrders", 84: "CxlQty", 394: "BidType", 429: "ListStatusType",
    431: "ListOrderStatus", 444: "ListStatusText",
    15: "Currency", 207: "SecurityExchange", 262: "MDReqID", 263: "SubscriptionRequestType",
    264: "MarketDepth", 267: "NoMDEntryTypes", 268: "NoMDEntries", 269: "MDEntryType",
    270: "MDEntryPx", 271: "MDEntrySize", 275: "MDMkt", 279: "MDUpdateAction",
    281: "MDReqRejReason", 146: "NoRelatedSym", 448: "PartyID", 452: "PartyRole",
    453: "NoPartyIDs", 702: "NoPositions", 703: "PosType", 704: "LongQty", 705: "ShortQty",
    707: "PosAmtType", 708: "PosAmt", 710: "PosReqID", 721: "PosMaintRptID",
    724: "PosReqType", 727: "TotalNumPosReports", 728: "PosReqResult", 729: "PosReqStatus",
    730: "SettlPrice", 734: "PriorSettlPrice", 753: "NoPosAmt", 900: "TotalNetValue",
    908: "CollRptID", 909: "CollInquiryID", 910: "CollStatus", 945: "CollInquiryStatus",
    946: "CollInquiryResult", 20010: "AvailableBalance", 20011: "LockedBalance",
    30: "LastMkt", 168: "EffectiveTime", 847: "TargetStrategy",
}

# Fields the readable form leaves out (the header, the trailer and bookkeeping); -v shows all.
_HIDDEN = frozenset({8, 9, 10, 34, 35, 49, 52, 56, 43, 122, 13, 17, 60})
# Fields shown first, in this order (the rest follow in wire order).
_FIRST: dict[str, tuple[int, ...]] = {
    "8": (150, 39, 11, 41, 37, 55, 54, 38, 40, 44, 59, 32, 31, 14, 151, 6),
    "9": (11, 41, 37, 39, 434, 102),
    "D": (11, 54, 55, 38, 40, 44, 59),
    "4": (123, 36),
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
    """One connection of the client's initiator session: a :class:`~gateway.fix.session.Session`
    in the initiator role driven by :class:`~gateway.initiator.Initiator`, which does all the
    FIX (sequence numbers, gaps, resends, heartbeats, the Logout handshake). This class prints
    what goes out and comes in, keeps the sequence numbers in the state file, and words what
    goes wrong for a person at a shell.

    :meth:`receive` returns the application messages (and Reject / BusinessMessageReject) in
    MsgSeqNum order."""

    def __init__(self, initiator: Initiator, cfg: SessionConfig, state: ClientState,
                 printer: Printer) -> None:
        self.initiator = initiator
        self.cfg = cfg
        self.state = state
        self.printer = printer

    @classmethod
    async def connect(cls, cfg: SessionConfig, state: ClientState,
                      printer: Printer) -> ClientSession:
        session = Session(_settings(cfg), *_dictionaries(cfg),
                          next_sender=state.next_out, next_target=state.next_in)
        seen: set[str] = set()

        def note(text: str) -> None:
            if text.startswith(_SHOWN_NOTES) and text not in seen:
                seen.add(text)
                printer.info(f"! {text}")

        def sequence(next_out: int, next_in: int) -> None:
            state.next_out, state.next_in = next_out, next_in
            state.save()

        try:
            initiator = await Initiator.connect(
                session, cfg.host, cfg.port, timeout=cfg.timeout,
                on_write=lambda raw: _print(printer, ">", raw),
                on_read=lambda raw: _print(printer, "<", raw),
                on_sequence=sequence, on_note=note)
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot connect to {cfg.host}:{cfg.port}: {exc or 'timeout'} "
                              "(is `fixgw run` running?)") from None
        return cls(initiator, cfg, state, printer)

    async def send(self, msg_type: str, body: Body) -> int:
        """Send with the next MsgSeqNum (saved first); returns it."""
        try:
            return await self.initiator.send(msg_type.encode(),
                                             [(t, v.encode()) for t, v in body])
        except InitiatorClosed as exc:
            raise ClientError(_ended(exc)) from None

    async def receive(self, deadline: float) -> FixMessage | None:
        """The next application message, or None at ``deadline`` (``loop.time()``).
        ClientError when the gateway logs out or closes."""
        wait = deadline - asyncio.get_running_loop().time()
        try:
            msg = await self.initiator.receive(max(wait, 0.0))
        except InitiatorClosed as exc:
            raise ClientError(_ended(exc)) from None
        return None if msg is None else FixMessage.parse(msg.raw)

    async def logon(self, *, reset: bool, username: str | None, password: str | None) -> None:
        body: list[tuple[int, bytes]] = []
        if username is not None:
            body.append((553, username.encode()))
        if password is not None:
            body.append((554, password.encode()))
        try:
            await self.initiator.logon(reset=reset, body=body, timeout=self.cfg.timeout)
        except InitiatorClosed as exc:
            if exc.logout_text is not None:
                raise ClientError(f"logon refused: {exc.logout_text}{_hint(exc.logout_text)}"
                                  ) from None
            if exc.reason.startswith("no Logon answer"):
                raise ClientError(exc.reason) from None
            raise ClientError(f"logon failed: {_ended(exc)}") from None

    async def logout(self, text: str | None = None, *, wait: bool = True) -> None:
        """Send Logout; with ``wait``, read until the gateway answers it (or closes)."""
        await self.initiator.logout(text, timeout=self.cfg.timeout if wait else 0.0)

    async def close(self) -> None:
        await self.initiator.close()


_SHOWN_NOTES = ("MsgSeqNum too high", "Garbled message", "Invalid message")
"""The session's notes a person at a shell is shown (with ``!``): gaps and what was ignored."""


def _settings(cfg: SessionConfig) -> SessionSettings:
    return SessionSettings(
        SessionID(cfg.begin_string, cfg.sender, cfg.target), role=Role.INITIATOR,
        heartbeat_interval=cfg.heartbeat, logon_timeout=cfg.timeout,
        logout_timeout=cfg.timeout,
        default_appl_ver_id="FIX.5.0SP2" if cfg.fixt else None)


def _dictionaries(cfg: SessionConfig) -> tuple[DataDictionary, dict[str, DataDictionary]]:
    if cfg.fixt:
        return standard("FIXT.1.1"), {"FIX.5.0SP2": standard("FIX.5.0SP2")}
    dd = standard("FIX.4.4")
    return dd, {"FIX.4.4": dd}


def _print(printer: Printer, direction: str, raw: bytes) -> None:
    msg = FixMessage.parse(raw)
    note = ""
    if msg.poss_dup and msg.msg_type != "4":
        note = " (resent)" if direction == ">" else " (PossDup)"
    printer.message(direction, msg.msg_type, msg.fields, raw, note)


def _hint(text: str) -> str:
    if "too low" in text:
        return (" (the sequence numbers are out of step with the gateway: run again with "
                "--reset to start both at 1)")
    return ""


def _ended(exc: InitiatorClosed) -> str:
    if exc.logout_text is not None:
        return f"the gateway logged out: {exc.logout_text}{_hint(exc.logout_text)}"
    if "too low" in exc.reason:
        return f"{exc.reason}{_hint(exc.reason)}"
    if not exc.logged_on:
        return ("the gateway closed the connection during logon (unknown SenderCompID/"
                "TargetCompID, wrong username or password, or this session is already "
                "logged on elsewhere?)")
    return "the gateway closed the connection"
