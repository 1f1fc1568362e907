"""The order state rules the audit holds ExecutionReports to, as tables (STYLE 3): which
OrdStatus (39) may follow which, and which OrdStatus fits which ExecType (150).

Read from the FIX order state change matrices (FIX 4.4 Vol. 4 Appendix D, FIX 5.0 SP2
"Order State Change Matrices"), with what real counterparties do and the matrices allow:
a fill may overtake the acknowledgement (PendingNew -> PartiallyFilled), a pending cancel or
replace may be overtaken by fills, a cancel requested before the acknowledgement may meet a
reject, and an IOC's last fill may carry Canceled. This table is the audit's own: the gateway's
order lifecycle (``gateway/orders/lifecycle.py``) is about its events, this one about what a
counterparty may be told.

A trade correction or cancel (ExecType G/H, FIX 4.2 ExecTransType 2/1), a restatement (D), a
status answer (I) and the FIX 4.2 status ExecTransType 3 may report any status.
"""

from __future__ import annotations

TERMINAL = frozenset({b"2", b"4", b"8", b"C"})
"""Filled, Canceled, Rejected, Expired: the order is done (LeavesQty 0)."""

STATUS_NAMES = {
    b"0": "New", b"1": "PartiallyFilled", b"2": "Filled", b"3": "DoneForDay", b"4": "Canceled",
    b"5": "Replaced", b"6": "PendingCancel", b"7": "Stopped", b"8": "Rejected",
    b"9": "Suspended", b"A": "PendingNew", b"B": "Calculated", b"C": "Expired",
    b"D": "AcceptedForBidding", b"E": "PendingReplace",
}
EXEC_TYPE_NAMES = {
    b"0": "New", b"1": "PartialFill", b"2": "Fill", b"3": "DoneForDay", b"4": "Canceled",
    b"5": "Replaced", b"6": "PendingCancel", b"7": "Stopped", b"8": "Rejected",
    b"9": "Suspended", b"A": "PendingNew", b"B": "Calculated", b"C": "Expired",
    b"D": "Restated", b"E": "PendingReplace", b"F": "Trade", b"G": "TradeCorrect",
    b"H": "TradeCancel", b"I": "OrderStatus", b"L": "Triggered",
}

_S = frozenset
_LIVE = _S({b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"9", b"C", b"E"})

NEXT_STATUS: dict[bytes, frozenset[bytes]] = {
    b"A": _LIVE | {b"A", b"8"},
    b"0": _LIVE,
    b"1": _LIVE - {b"0"},
    b"5": _LIVE,
    b"6": _S({b"6", b"0", b"1", b"2", b"4", b"8", b"C", b"E", b"3"}),
    b"E": _S({b"E", b"0", b"1", b"2", b"4", b"5", b"6", b"C", b"3"}),
    b"3": _S({b"3", b"0", b"1", b"2", b"4", b"6", b"C", b"E"}),
    b"7": _S({b"7", b"1", b"2", b"3", b"4", b"6", b"C"}),
    b"9": _S({b"9", b"0", b"1", b"2", b"4", b"6", b"C", b"E"}),
    b"2": _S(),
    b"4": _S(),
    b"8": _S(),
    b"C": _S(),
}
"""OrdStatus -> the OrdStatus values a later report may carry. A status not listed here
(Calculated, AcceptedForBidding, a custom one) is not checked."""

STATUS_FOR_EXEC_TYPE: dict[bytes, frozenset[bytes]] = {
    b"0": _S({b"0", b"A"}),
    b"1": _S({b"1"}),  # FIX 4.2 PartialFill
    b"2": _S({b"2"}),  # FIX 4.2 Fill
    b"3": _S({b"3"}),
    b"4": _S({b"4"}),
    b"5": _S({b"0", b"1", b"2", b"3", b"5", b"6", b"7", b"9", b"E"}),
    b"6": _S({b"6"}),
    b"7": _S({b"7"}),
    b"8": _S({b"8"}),
    b"9": _S({b"9"}),
    b"A": _S({b"A"}),
    b"C": _S({b"C"}),
    b"E": _S({b"E"}),
    b"F": _S({b"1", b"2", b"3", b"4", b"6", b"7", b"C", b"E"}),
}
"""ExecType -> the OrdStatus values that fit it. ExecTypes not listed (D, G, H, I, L, ...)
may come with any status."""

UNCHECKED_EXEC_TYPES = frozenset({b"D", b"G", b"H", b"I", b"B", b"L"})
"""ExecTypes whose report may carry any status after any other (corrections, restatements,
status answers)."""

TRADE = b"F"
FIX42_TRADES = frozenset({b"1", b"2"})
"""FIX 4.2 reports a fill with ExecType 1 (partial) or 2 (fill) and ExecTransType 0."""


def status_name(code: bytes | None) -> str:
    if code is None:
        return "none"
    name = STATUS_NAMES.get(code)
    return f"{code.decode(errors='replace')} ({name})" if name else code.decode(errors="replace")


def exec_type_name(code: bytes | None) -> str:
    if code is None:
        return "none"
    name = EXEC_TYPE_NAMES.get(code)
    return f"{code.decode(errors='replace')} ({name})" if name else code.decode(errors="replace")
