"""What the audit reports: findings (something in the trail is wrong) and session events
(facts worth seeing that are not faults: logons, rejected logons, sequence resets)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Kind(Enum):
    """A kind of finding: its id (used in JSON and on the terminal) and what it means."""

    ILLEGAL_TRANSITION = "illegal-transition"
    CUM_QTY = "cum-qty"
    LEAVES_QTY = "leaves-qty"
    AVG_PX = "avg-px"
    OVERFILL = "overfill"
    DUPLICATE_EXEC_ID = "duplicate-exec-id"
    DUPLICATE_CL_ORD_ID = "duplicate-clordid"
    STALE_CL_ORD_ID = "stale-clordid"
    SEQUENCE_GAP = "sequence-gap"
    SEQUENCE_RESET = "sequence-reset"
    ORPHAN = "orphan-report"
    ORDER_UNANSWERED = "order-unanswered"
    CANCEL_UNANSWERED = "cancel-unanswered"
    REPLACE_UNANSWERED = "replace-unanswered"
    GARBLED = "garbled"
    STORE_DIFFERENCE = "store-difference"
    NOT_IN_STORE = "not-in-store"
    NOT_IN_LOG = "not-in-log"

    @property
    def meaning(self) -> str:
        return MEANING[self]


MEANING = {
    Kind.ILLEGAL_TRANSITION: "an ExecutionReport moves the order between OrdStatus values the "
                             "FIX order state matrices do not allow, or its ExecType does not "
                             "fit its OrdStatus",
    Kind.CUM_QTY: "CumQty (14) differs from the sum of LastQty (32) over the order's distinct "
                  "ExecIDs",
    Kind.LEAVES_QTY: "LeavesQty (151) is not OrderQty - CumQty for a live order, or not 0 for a "
                     "done one",
    Kind.AVG_PX: "AvgPx (6) does not match the fills' volume-weighted price",
    Kind.OVERFILL: "CumQty exceeds OrderQty",
    Kind.DUPLICATE_EXEC_ID: "an ExecID reported again without PossDupFlag (43=Y)",
    Kind.DUPLICATE_CL_ORD_ID: "a NewOrderSingle reuses the ClOrdID of an order still open",
    Kind.STALE_CL_ORD_ID: "a report names a ClOrdID that a confirmed replace had retired",
    Kind.SEQUENCE_GAP: "MsgSeqNum values that never appear in the log (not resent, not "
                       "gap-filled)",
    Kind.SEQUENCE_RESET: "MsgSeqNum goes back without PossDupFlag, SequenceReset or a Logon "
                         "that resets",
    Kind.ORPHAN: "a report or cancel reject for an order the log never saw",
    Kind.ORDER_UNANSWERED: "a NewOrderSingle that got no ExecutionReport or reject",
    Kind.CANCEL_UNANSWERED: "an OrderCancelRequest that got no ExecutionReport or "
                            "OrderCancelReject",
    Kind.REPLACE_UNANSWERED: "an OrderCancelReplaceRequest that got no ExecutionReport or "
                             "OrderCancelReject",
    Kind.GARBLED: "a line that is no readable FIX message, or a field whose value is not of "
                  "its type",
    Kind.STORE_DIFFERENCE: "the order store holds other values than the log's last report",
    Kind.NOT_IN_STORE: "an order of the log that the order store does not hold",
    Kind.NOT_IN_LOG: "an order of the store that the log never mentions",
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    session: str
    text: str
    stamp: bytes = b""
    where: str = ""
    """``file:line`` of the message the finding is about (empty when it is about none)."""
    seq: int | None = None
    order: int | None = None
    """The order's number in the audit (:attr:`Chain.number`); None for a session finding."""
    cl_ord_id: str | None = None
    raw: bytes | None = None
    """The message, kept when a report shows messages (HTML, --order)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "session": self.session, "text": self.text,
            "time": self.stamp.decode("ascii", "replace"), "where": self.where,
            "seq": self.seq, "order": self.order, "cl_ord_id": self.cl_ord_id,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """A session event: ``logon``, ``logon-rejected``, ``logon-unanswered``, ``logout``,
    ``reset``."""

    kind: str
    session: str
    text: str
    stamp: bytes = b""
    where: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "session": self.session, "text": self.text,
                "time": self.stamp.decode("ascii", "replace"), "where": self.where}


MAX_KEPT = 100_000
"""Findings and events kept whole (each is also counted); past this, only counted, so memory
stays bounded on a log that is wrong throughout."""


class Findings:
    """Every finding and event, counted; the first :data:`MAX_KEPT` of each kept. ``listener``
    hears each finding as it is made (``--follow`` prints them)."""

    def __init__(self, since: bytes = b"") -> None:
        self.since = since
        """Findings about messages before this stamp are not reported (the messages were read
        to know the orders' state)."""
        self.counts: Counter[Kind] = Counter()
        self.kept: list[Finding] = []
        self.event_counts: Counter[str] = Counter()
        self.events: list[Event] = []
        self.listeners: list[Any] = []

    def add(self, finding: Finding) -> bool:
        """Record ``finding``; False when it falls before ``since`` (dropped)."""
        if self.since and finding.stamp and finding.stamp < self.since:
            return False
        self.counts[finding.kind] += 1
        if len(self.kept) < MAX_KEPT:
            self.kept.append(finding)
        for listener in self.listeners:
            listener(finding)
        return True

    def event(self, event: Event) -> None:
        if self.since and event.stamp and event.stamp < self.since:
            return
        self.event_counts[event.kind] += 1
        if len(self.events) < MAX_KEPT:
            self.events.append(event)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
