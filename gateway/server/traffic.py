"""What crosses each session, counted as it happens, and every refusal said at INFO.

The acceptor hands every frame it reads and every message it writes to :class:`Traffic`: it
counts them per session and MsgType (35), the Logons and disconnects, and the rejects by kind
and reason -- Reject (3) by SessionRejectReason (373), BusinessMessageReject (j) by
BusinessRejectReason (380), ExecutionReport Rejected (8 with 39=8) by OrdRejReason (103),
OrderCancelReject (9) by CxlRejReason (102), MarketDataRequestReject (Y) by MDReqRejReason
(281) -- and logs one INFO line per reject with the session, the request's ids and the Text
(58). The admin API's metrics and health read the counts; nothing here does I/O.

Only the MsgType of a message is looked at (one ``bytes.find``; for an ExecutionReport, one more
for OrdStatus Rejected); a reject, rare, is split into its fields. A resent message
(PossDupFlag 43=Y) is counted as written, not logged again. A MsgType the sessions'
dictionaries do not define is counted as ``other`` (the client chooses what it sends: one
count, and one metrics series, each would have no bound). What the client chose (ids, Text) is
logged with its control characters escaped (:func:`gateway.logs.printable`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.fix.codec import GarbledMessage, split_fields
from gateway.logs import printable

log = logging.getLogger("fixgw.session")

REJECTS: dict[bytes, tuple[str, int]] = {
    b"3": ("Reject", 373),
    b"j": ("BusinessMessageReject", 380),
    b"8": ("ExecutionReport", 103),
    b"9": ("OrderCancelReject", 102),
    b"Y": ("MarketDataRequestReject", 281),
}
"""MsgType -> the name of the refusal and its reason tag."""

NAMES = {b"0": "Heartbeat", b"1": "TestRequest", b"2": "ResendRequest", b"3": "Reject",
         b"4": "SequenceReset", b"5": "Logout", b"A": "Logon", b"D": "NewOrderSingle",
         b"F": "OrderCancelRequest", b"G": "OrderCancelReplaceRequest", b"8": "ExecutionReport",
         b"9": "OrderCancelReject", b"j": "BusinessMessageReject"}


def msg_type(data: bytes) -> bytes:
    """The MsgType (35) of a framed message (b"?" when it has none)."""
    i = data.find(b"\x0135=")
    if i < 0:
        return b"?"
    j = data.find(b"\x01", i + 4)
    return data[i + 4:j] if j > 0 else b"?"


@dataclass(slots=True)
class SessionStats:
    """One session's counts since the gateway started."""

    messages_in: Counter[str] = field(default_factory=Counter)
    """MsgType (``other`` for one no dictionary defines) -> frames read."""
    messages_out: Counter[str] = field(default_factory=Counter)
    """MsgType -> messages written (resends included)."""
    rejects: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(refusal, reason code) -> how many were written."""
    logons: int = 0
    disconnects: int = 0
    last_logon_ns: int | None = None
    """When the last Logon completed (UTC ns)."""
    last_disconnect_ns: int | None = None
    last_disconnect_reason: str = ""
    peer: str | None = None
    """The address of the current (or last) connection."""

    @property
    def rejects_total(self) -> int:
        return sum(self.rejects.values())


class Traffic:
    def __init__(self, msg_types: Iterable[bytes] = NAMES) -> None:
        self.labels = {mt: mt.decode() for mt in msg_types}
        """MsgType -> its label in the counts: those the sessions' dictionaries define (the
        acceptor's); any other is counted as ``other``."""
        self.sessions: dict[str, SessionStats] = {}
        self.listeners: list[Callable[[str, str, str], None]] = []
        """Told ("logon", session, peer) and ("dropped", session, why): a logged-on session
        whose connection ended without a Logout (the alerts)."""

    def of(self, sid: str) -> SessionStats:
        st = self.sessions.get(sid)
        if st is None:
            st = self.sessions[sid] = SessionStats()
        return st

    def inbound(self, sid: str, data: bytes) -> None:
        self.of(sid).messages_in[self.labels.get(msg_type(data), "other")] += 1

    def outbound(self, sid: str, chunks: list[bytes]) -> None:
        st = self.of(sid)
        labels = self.labels
        for data in chunks:
            mt = msg_type(data)
            st.messages_out[labels.get(mt, "other")] += 1
            if mt in REJECTS and (mt != b"8" or b"\x0139=8\x01" in data):
                # (an ExecutionReport is a refusal only when Rejected: the others, two or more
                # per order, are not split)
                self._reject(sid, st, mt, data)

    def logged_on(self, sid: str, peer: str | None) -> None:
        st = self.of(sid)
        st.logons += 1
        st.last_logon_ns = time.time_ns()
        st.peer = peer
        log.info("%s: logged on from %s", sid, peer or "?")
        self._tell("logon", sid, peer or "?")

    def logged_out(self, sid: str, reason: str, text: str | None) -> None:
        log.info("%s: logged out (%s%s)", sid, reason, f": {printable(text)}" if text else "")

    def disconnected(self, sid: str, peer: str | None, reason: str, dropped: bool = False
                     ) -> None:
        """The session's connection ended; ``dropped``: while logged on, without a Logout."""
        st = self.of(sid)
        st.disconnects += 1
        st.last_disconnect_ns = time.time_ns()
        st.last_disconnect_reason = reason
        log.info("%s: disconnected from %s (%s)", sid, peer or "?", reason)
        if dropped:
            self._tell("dropped", sid, reason)

    def _tell(self, event: str, sid: str, detail: str) -> None:
        for listener in self.listeners:
            try:
                listener(event, sid, detail)
            except Exception:
                log.exception("a listener of %s failed", event)

    @staticmethod
    def _reject(sid: str, st: SessionStats, mt: bytes, data: bytes) -> None:
        if b"\x0143=Y\x01" in data:
            return  # a resend of one already counted
        try:
            fields = dict(split_fields(data))
        except GarbledMessage:
            return
        if mt == b"8" and fields.get(39) != b"8":
            return  # an ExecutionReport that is not a rejection
        name, reason_tag = REJECTS[mt]
        reason = fields.get(reason_tag, b"").decode(errors="replace") or "none"
        st.rejects[(name, reason)] += 1
        ids = " ".join(f"{label}={fields[tag].decode(errors='replace')}"
                       for tag, label in ((11, "ClOrdID"), (41, "OrigClOrdID"), (37, "OrderID"),
                                          (45, "RefSeqNum"), (372, "RefMsgType"),
                                          (262, "MDReqID"))
                       if tag in fields and fields[tag] != b"NONE")
        ids, text = printable(ids), printable(fields.get(58, b"").decode(errors="replace"))
        log.info("%s: %s %s (%d=%s)%s", sid, "ExecutionReport Rejected" if mt == b"8" else name,
                 ids or "-", reason_tag, reason, f": {text}" if text else "")
