"""Reading the few fields the audit needs out of a raw FIX message, fast.

The audit reads every message of a log but needs about thirty of its fields (the header's
MsgType, MsgSeqNum, CompIDs and PossDupFlag; an order's ids, quantities, prices and statuses).
Splitting every field into a dict costs ~3 us a message; instead, :class:`Scanner` learns the
*layout* of the messages it meets -- the sequence of tags a given engine writes for a given kind
of message, which repeats message after message -- and compiles it into one regular expression
that walks the message once and captures only the wanted fields (about twice as fast). A message
no known layout matches is split the slow way (:func:`gateway.fix.codec.split_fields`, which
honours length-prefixed DATA fields) and its layout is learned. Where ``_cscan`` is built
(:mod:`.native`), a clean message -- every field ``tag=value<SOH>``, no DATA field -- is scanned
in C in one pass instead (~0.5 us); the rest still comes here.

:meth:`Scanner.fields` returns a tuple indexed by the constants below (``MSG_TYPE``,
``CL_ORD_ID``, ...): the first occurrence of each tag, as bytes, or None where the message has
none. Values are not validated here: the checker decides what a bad value means.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from types import ModuleType

from gateway.fix.codec import STANDARD_DATA_FIELDS, GarbledMessage, split_fields

from . import native

SOH = b"\x01"

WANTED: tuple[int, ...] = (
    35, 34, 43, 49, 56, 8,   # MsgType, MsgSeqNum, PossDupFlag, SenderCompID, TargetCompID, Begin
    11, 41, 37, 17, 19, 20,  # ClOrdID, OrigClOrdID, OrderID, ExecID, ExecRefID, ExecTransType
    150, 39, 14, 151, 6,     # ExecType, OrdStatus, CumQty, LeavesQty, AvgPx
    31, 32, 38, 44, 54, 55,  # LastPx, LastQty, OrderQty, Price, Side, Symbol
    198, 58, 45, 379, 372,   # SecondaryOrderID, Text, RefSeqNum, BusinessRejectRefID, RefMsgType
    123, 36, 141, 434, 584,  # GapFillFlag, NewSeqNo, ResetSeqNumFlag, CxlRejResponseTo,
                             # MassStatusReqID
    1137, 1128, 40,          # DefaultApplVerID, ApplVerID, OrdType
)
"""The tags :meth:`Scanner.fields` returns, in this order."""

(MSG_TYPE, SEQ, POSS_DUP, SENDER, TARGET, BEGIN,
 CL_ORD_ID, ORIG_CL_ORD_ID, ORDER_ID, EXEC_ID, EXEC_REF_ID, EXEC_TRANS_TYPE,
 EXEC_TYPE, ORD_STATUS, CUM_QTY, LEAVES_QTY, AVG_PX,
 LAST_PX, LAST_QTY, ORDER_QTY, PRICE, SIDE, SYMBOL,
 SECONDARY_ORDER_ID, TEXT, REF_SEQ_NUM, BUSINESS_REJECT_REF_ID, REF_MSG_TYPE,
 GAP_FILL, NEW_SEQ_NO, RESET_SEQ_NUM, CXL_REJ_RESPONSE_TO, MASS_STATUS_REQ_ID,
 DEFAULT_APPL_VER_ID, APPL_VER_ID, ORD_TYPE) = range(len(WANTED))

REPEATED = (SENDER, TARGET, BEGIN, SYMBOL, DEFAULT_APPL_VER_ID, APPL_VER_ID)
"""Fields whose few values repeat message after message (``_cscan`` shares their bytes)."""


def _load_cscan() -> ModuleType | None:
    if native.PURE:
        return None
    try:
        from . import _cscan
    except ImportError:
        return None
    _cscan.configure(WANTED, tuple(STANDARD_DATA_FIELDS), REPEATED)
    return _cscan


CSCAN = _load_cscan()
"""``_cscan`` (gateway/audit/_cscan.c) where it is built and not switched off
(:mod:`.native`): its ``fields`` does what :meth:`Scanner.fields` does for clean messages."""

_INDEX = {tag: i for i, tag in enumerate(WANTED)}
_NONE = (None,)
_ABSENT: tuple[None, ...] = (None,) * len(WANTED)

Fields = tuple[bytes | None, ...]
"""What :meth:`Scanner.fields` returns: one entry per tag of :data:`WANTED`."""

MAX_LAYOUTS = 4096
"""Layouts learned at most (a log of many engines and message kinds has a few hundred)."""
MAX_PER_COUNT = 32
"""Layouts tried for messages of one field count before the slow path."""


class _Layout:
    """One learned tag sequence: its regular expression and how its groups map onto WANTED."""

    __slots__ = ("match", "pick")

    def __init__(self, tags: list[int]) -> None:
        parts: list[bytes] = []
        captured: list[int] = []
        for i, tag in enumerate(tags):
            lead = b"" if i == 0 else b"\x01"
            if tag in _INDEX and tag not in captured:
                parts.append(lead + b"%d=([^\x01]*)" % tag)
                captured.append(tag)
            else:
                parts.append(lead + b"%d=[^\x01]*" % tag)
        self.match: Callable[[bytes], re.Match[bytes] | None] = re.compile(
            b"".join(parts) + b"\x01\\Z").match
        absent = len(captured)  # the index of the None appended to the groups
        order = [captured.index(t) if t in captured else absent for t in WANTED]
        self.pick: Callable[[tuple[bytes | None, ...]], Fields] = operator.itemgetter(*order)


class Scanner:
    """Extracts :data:`WANTED` from raw messages (see the module docstring). Not thread-safe;
    one per reader is cheap."""

    def __init__(self) -> None:
        self._layouts: dict[int, list[_Layout]] = {}
        self._last: dict[int, _Layout] = {}
        """Field count -> the layout that matched last (tried first)."""
        self._learned = 0
        self._c: Callable[[bytes], Fields | None] | None = (
            CSCAN.fields if CSCAN is not None else None)

    def fields(self, raw: bytes) -> Fields | None:
        """The wanted fields of ``raw``; None when it is no FIX message (no ``35=`` field)."""
        c = self._c
        if c is not None:
            v = c(raw)
            if v is not None:
                return v
        return self.python_fields(raw)

    def python_fields(self, raw: bytes) -> Fields | None:
        """:meth:`fields` in Python (what ``_cscan`` must equal, and what it leaves to it)."""
        count = raw.count(SOH)
        last = self._last.get(count)
        if last is not None:
            m = last.match(raw)
            if m is not None:
                return last.pick(m.groups() + _NONE)
            for layout in self._layouts[count]:
                m = layout.match(raw)
                if m is not None:
                    self._last[count] = layout
                    return layout.pick(m.groups() + _NONE)
        return self._slow(raw)

    def _slow(self, raw: bytes) -> Fields | None:
        try:
            pairs = split_fields(raw)
            exact = True
        except GarbledMessage:
            pairs = _lenient_split(raw)
            exact = False
        values: list[bytes | None] = list(_ABSENT)
        for tag, value in pairs:
            i = _INDEX.get(tag)
            if i is not None and values[i] is None:
                values[i] = value
        if values[MSG_TYPE] is None:
            return None
        if (exact and self._learned < MAX_LAYOUTS and raw.endswith(SOH)
                and len(pairs) == raw.count(SOH)
                and not any(tag in STANDARD_DATA_FIELDS for tag, _ in pairs)):
            layouts = self._layouts.setdefault(len(pairs), [])
            if len(layouts) < MAX_PER_COUNT:
                layout = _Layout([tag for tag, _ in pairs])
                layouts.append(layout)
                self._last[len(pairs)] = layout
                self._learned += 1
        return tuple(values)


def _lenient_split(raw: bytes) -> list[tuple[int, bytes]]:
    """Fields of a message that does not split cleanly (a truncated or hand-edited line): every
    ``tag=value`` between separators whose tag is a number; the rest is skipped."""
    out: list[tuple[int, bytes]] = []
    for part in raw.split(SOH):
        tag, sep, value = part.partition(b"=")
        if sep and tag.isdigit() and len(tag) < 10:
            out.append((int(tag), value))
    return out


def all_fields(raw: bytes) -> list[tuple[int, bytes]]:
    """Every field of ``raw`` in wire order (for showing a message whole); never raises."""
    try:
        return split_fields(raw if raw.endswith(SOH) else raw + SOH)
    except GarbledMessage:
        return _lenient_split(raw)
