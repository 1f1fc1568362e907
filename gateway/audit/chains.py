"""Order chains rebuilt from a session's messages, and the checks on them.

An order is known by a chain of ClOrdIDs (11) -- its NewOrderSingle's, then each cancel's and
replace's, linked by OrigClOrdID (41) -- by the OrderID (37) and SecondaryOrderID (198) the
other side gives it, and by the ExecIDs (17) of its reports. :class:`OrderBook` keeps the chains
of one session and checks every ExecutionReport against what the chain knows:

* the OrdStatus transition and the ExecType/OrdStatus pair (:mod:`.states`);
* CumQty = the sum of LastQty over the order's distinct ExecIDs (trade corrections and
  cancels, ExecType G/H or FIX 4.2 ExecTransType 2/1, amend that sum);
* LeavesQty = OrderQty - CumQty while the order is live, 0 once it is done;
* AvgPx = the fills' volume-weighted price, within half a unit of the last digit AvgPx is
  written with;
* an ExecID reported again is a duplicate unless the copy carries PossDupFlag (43=Y);
* a report for an order never seen is an orphan; a NewOrderSingle, OrderCancelRequest or
  OrderCancelReplaceRequest that gets no answer within :data:`ANSWER_TIMEOUT` seconds of log
  time (or before the log ends) is unanswered.

What real counterparties do and FIX allows is accepted, not flagged: fills keep arriving under
the original ClOrdID until a cancel or replace is confirmed (parity #70) -- after a confirmed
replace, the retired ClOrdIDs are stale -- and a PendingCancel and its Canceled may carry
different ClOrdIDs of the chain (roq-rencap #47). When a finding is made the chain takes the
counterparty's figure as its new baseline, so one fault is reported once, not on every report
after it.

Memory holds the open orders and, for a while, the closed ones: a chain closed (done, and no
request of it waiting for an answer) stays findable for :data:`~.waiting.CLOSED_WINDOW` seconds
of log time and among the last :data:`~.waiting.MAX_CLOSED` closed chains, for late reports,
resends and cancels that come too late; then it is handed to ``on_closed`` and forgotten.

Where the audit runs compiled, most orders never become a :class:`Chain`: the fast path in C
(``_cscan.Book``, :attr:`OrderBook.fast`) keeps every order whose messages it can check without
a finding, and hands an order to this module (:meth:`OrderBook.restore`) the moment a message
about it needs more -- a finding, a rare case, an answer overdue -- or when it is let go and a
sink wants the Chain. The checks are this module's; the C must equal them (tests/audit/
test_native.py and test_fastpath.py compare the two on the same inputs).

The model is the audit's and the drop copy's and the execution reports' to share: nothing in it
knows about output.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .findings import Finding, Findings, Kind
from .scan import (
    AVG_PX,
    CL_ORD_ID,
    CUM_QTY,
    EXEC_ID,
    EXEC_REF_ID,
    EXEC_TRANS_TYPE,
    EXEC_TYPE,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MASS_STATUS_REQ_ID,
    ORD_STATUS,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_DUP,
    PRICE,
    SECONDARY_ORDER_ID,
    SENDER,
    SIDE,
    SYMBOL,
    TARGET,
    TEXT,
    Fields,
)
from .sources import Origin
from .states import (
    FIX42_TRADES,
    NEXT_STATUS,
    STATUS_FOR_EXEC_TYPE,
    TERMINAL,
    TRADE,
    UNCHECKED_EXEC_TYPES,
    exec_type_name,
    status_name,
)
from .waiting import ClosedChains, ClosedQueue, Deadlines, FastBook

ANSWER_TIMEOUT = 30.0
"""Seconds of log time a request may wait for its first answer."""

ZERO = Decimal(0)
_DEC: dict[bytes, Decimal] = {}
_HALF_ULP: dict[int, Decimal] = {}

LIVE_STATUSES = frozenset({b"A", b"0", b"1", b"5", b"6", b"E"})
"""Statuses whose LeavesQty must be OrderQty - CumQty."""

REQUEST_NAMES = {b"D": "NewOrderSingle", b"F": "OrderCancelRequest",
                 b"G": "OrderCancelReplaceRequest"}
_UNANSWERED = {b"D": Kind.ORDER_UNANSWERED, b"F": Kind.CANCEL_UNANSWERED,
               b"G": Kind.REPLACE_UNANSWERED}


def dec(value: bytes | None) -> Decimal | None:
    """A FIX decimal as a Decimal (cached: quantities and prices repeat); None when absent or
    not a finite number."""
    if value is None:
        return None
    d = _DEC.get(value)
    if d is None:
        try:
            d = Decimal(value.decode("ascii"))
        except (InvalidOperation, UnicodeDecodeError):
            return None
        if not d.is_finite():
            return None
        if len(_DEC) > 16_384:  # bounded: prices vary, memory must not grow with the log
            _DEC.clear()
        _DEC[value] = d
    return d


def _tolerance(text: bytes) -> Decimal:
    """Half a unit of the last digit ``text`` is written with (AvgPx rounded by its writer)."""
    dot = text.find(b".")
    places = 0 if dot < 0 else len(text) - dot - 1
    t = _HALF_ULP.get(places)
    if t is None:
        t = _HALF_ULP[places] = Decimal(5).scaleb(-(places + 1))
    return t


def _s(value: bytes | None) -> str:
    return "none" if value is None else value.decode("utf-8", "replace")


class Request:
    """A NewOrderSingle (D), OrderCancelRequest (F) or OrderCancelReplaceRequest (G) waiting
    for its answer."""

    __slots__ = ("kind", "cl_ord_id", "seq", "sender", "stamp", "where", "chain", "open")

    def __init__(self, kind: bytes, cl_ord_id: bytes, seq: int | None, sender: bytes | None,
                 stamp: bytes, where: str, chain: Chain) -> None:
        self.kind = kind
        self.cl_ord_id = cl_ord_id
        self.seq = seq
        self.sender = sender
        self.stamp = stamp
        self.where = where
        self.chain = chain
        self.open = True


class Chain:
    """One order as the log tells it (see the module docstring)."""

    __slots__ = (
        "number", "session", "cl_ord_ids", "order_id", "secondary_id", "symbol", "side",
        "qty", "price", "status", "cum", "notional", "cum_text", "avg_text", "leaves_key",
        "fills", "exec_ids", "pending", "superseded", "first_stamp", "last_stamp", "closed_at",
        "messages", "findings", "n_fills", "has_new", "adopted", "reports", "last_text",
    )

    def __init__(self, number: int, session: str, stamp: bytes, keep_messages: bool) -> None:
        self.number = number
        self.session = session
        self.cl_ord_ids: list[bytes] = []
        self.order_id: bytes | None = None
        self.secondary_id: bytes | None = None
        self.symbol: bytes | None = None
        self.side: bytes | None = None
        self.qty: bytes | None = None
        self.price: bytes | None = None
        self.status: bytes | None = None
        self.cum = ZERO
        self.notional = ZERO
        self.cum_text: bytes | None = None
        self.avg_text: bytes | None = None
        self.leaves_key: tuple[bytes | None, ...] | None = None
        self.fills: dict[bytes, tuple[Decimal, Decimal]] = {}
        self.exec_ids: list[bytes] = []
        self.pending: list[Request] = []
        self.superseded: set[bytes] | None = None
        self.first_stamp = stamp
        self.last_stamp = stamp
        self.closed_at: float | None = None
        self.messages: list[list[object]] | None = [] if keep_messages else None
        """[stamp, raw, where, notes] of each message of the order, when kept."""
        self.findings: list[Finding] = []
        self.n_fills = 0
        self.has_new = False
        self.adopted = False
        """First seen in a report (the log does not have its NewOrderSingle)."""
        self.reports = 0
        self.last_text: bytes | None = None

    @property
    def cl_ord_id(self) -> bytes | None:
        """The ClOrdID the order is known by now (the last of its chain)."""
        return self.cl_ord_ids[-1] if self.cl_ord_ids else None

    @property
    def is_done(self) -> bool:
        """Done: a final status, or nothing came of it (a request for an order the other side
        did not know, a NewOrderSingle refused by a Reject)."""
        return self.status in TERMINAL or (self.status is None and not self.has_new)

    def label(self) -> str:
        ids = " -> ".join(c.decode("utf-8", "replace") for c in self.cl_ord_ids) or "?"
        oid = f" OrderID {_s(self.order_id)}" if self.order_id is not None else ""
        return f"ClOrdID {ids}{oid}"

    def summary(self) -> dict[str, object]:
        """The order as JSON-ready data (what the reports and the store comparison read)."""
        def txt(v: bytes | None) -> str | None:
            return None if v is None else v.decode("utf-8", "replace")
        return {
            "order": self.number, "session": self.session,
            "cl_ord_ids": [c.decode("utf-8", "replace") for c in self.cl_ord_ids],
            "order_id": txt(self.order_id), "secondary_order_id": txt(self.secondary_id),
            "symbol": txt(self.symbol), "side": txt(self.side), "order_qty": txt(self.qty),
            "price": txt(self.price), "ord_status": txt(self.status),
            "cum_qty": txt(self.cum_text), "avg_px": txt(self.avg_text),
            "fills": self.n_fills, "reports": self.reports,
            "first": self.first_stamp.decode("ascii", "replace"),
            "last": self.last_stamp.decode("ascii", "replace"),
            "open": not self.is_done, "adopted": self.adopted,
            "findings": [f.kind.value for f in self.findings],
        }


class OrderBook:
    """The order chains of one session and the checks on them (the module docstring).

    The caller (:class:`~gateway.audit.checker.Auditor`) hands each application message to
    :meth:`new_order`, :meth:`cancel` (F and G), :meth:`report` (8), :meth:`cancel_reject` (9)
    or :meth:`rejected` (3 and j), keeps :attr:`now` (seconds of log time) current, and calls
    :meth:`expire` and :meth:`evict` now and then and :meth:`finish` at the end.
    """

    def __init__(self, session: str, findings: Findings, deadlines: Deadlines,
                 numbers: itertools.count[int], on_closed: Callable[[Chain], None],
                 keep_messages: bool = False) -> None:
        self.session = session
        self.findings = findings
        self.deadlines = deadlines
        self.numbers = numbers
        self.on_closed = on_closed
        self.keep_messages = keep_messages
        self.by_cl: dict[bytes, Chain] = {}
        self.by_oid: dict[bytes, Chain] = {}
        self.exec_ids: dict[bytes, Chain] = {}
        self.by_seq: dict[tuple[bytes | None, int], Request] = {}
        self.closed: ClosedQueue = ClosedChains()
        """Closed chains still findable, oldest first."""
        self.fast: FastBook | None = None
        """The compiled fast path's orders of this session (:meth:`attach`), or None."""
        self.now = 0.0
        self.orders = 0
        self.fills = 0
        self.open_chains = 0
        self.closed_chains = 0

    def attach(self, fast: FastBook) -> None:
        """Let the compiled fast path keep this session's orders while it can: it holds the
        closed queue too (its orders and this book's chains in one order)."""
        self.fast = fast
        self.closed = fast

    def restore(self, state: tuple[Any, ...], register: bool) -> Chain:
        """An order the fast path kept, as a :class:`Chain` (``_cscan`` builds ``state``:
        the Chain's fields in the order below, its requests, and the keys that find it).
        ``register``: the book takes the order over -- its keys go into the indexes and its
        requests into the deadlines, with the numbers they had; else the Chain is only
        handed on (an order let go)."""
        (number, cl_ord_ids, order_id, secondary_id, symbol, side, qty, price, status,
         cum, notional, cum_text, avg_text, leaves_key, fills, exec_ids, pending, superseded,
         first_stamp, last_stamp, closed_at, n_fills, has_new, reports, last_text,
         cl_keys, oid_keys) = state
        chain = Chain(number, self.session, first_stamp, False)
        chain.cl_ord_ids = cl_ord_ids
        chain.order_id, chain.secondary_id = order_id, secondary_id
        chain.symbol, chain.side, chain.qty, chain.price = symbol, side, qty, price
        chain.status = status
        chain.cum, chain.notional = Decimal(cum), Decimal(notional)
        chain.cum_text, chain.avg_text, chain.leaves_key = cum_text, avg_text, leaves_key
        for exec_id, last_qty, last_px in fills:
            lq, lpx = dec(last_qty), dec(last_px)
            assert lq is not None and lpx is not None
            chain.fills[exec_id] = (lq, lpx)
        chain.exec_ids = exec_ids
        chain.superseded = set(superseded) if superseded is not None else None
        chain.last_stamp, chain.closed_at = last_stamp, closed_at
        chain.n_fills, chain.has_new, chain.reports = n_fills, has_new, reports
        chain.last_text = last_text
        for kind, cl, seq, sender, stamp, origin, line, at, n, keyed in pending:
            req = Request(kind, cl, seq, sender, stamp, f"{origin.name}:{line}", chain)
            chain.pending.append(req)
            if register:
                if keyed:
                    self.by_seq[(sender, seq)] = req
                self.deadlines.push(at, req, self, n)
        if register:
            for cl in cl_keys:
                self.by_cl[cl] = chain
            for oid in oid_keys:
                self.by_oid[oid] = chain
            for eid in exec_ids:
                self.exec_ids[eid] = chain
        return chain

    # --- helpers ------------------------------------------------------------------------------

    def _chain(self, stamp: bytes) -> Chain:
        chain = Chain(next(self.numbers), self.session, stamp, self.keep_messages)
        self.orders += 1
        self.open_chains += 1
        return chain

    def _keep(self, chain: Chain, stamp: bytes, raw: bytes, line: int, origin: Origin) -> None:
        chain.last_stamp = stamp
        if chain.messages is not None:
            chain.messages.append([stamp, raw, f"{origin.name}:{line}", None])

    def _find(self, chain: Chain | None, kind: Kind, text: str, stamp: bytes, line: int,
              origin: Origin, seq: int | None, raw: bytes) -> None:
        cl = None
        if chain is not None:
            cl = chain.cl_ord_id.decode("utf-8", "replace") if chain.cl_ord_id else None
        keep = raw if (self.keep_messages and chain is None) else None
        finding = Finding(kind, self.session, text, stamp, f"{origin.name}:{line}", seq,
                          chain.number if chain is not None else None, cl, keep)
        if self.findings.add(finding) and chain is not None:
            chain.findings.append(finding)
            if chain.messages:
                last = chain.messages[-1]
                notes = last[3]
                if notes is None:
                    last[3] = [finding]
                else:
                    notes.append(finding)  # type: ignore[attr-defined]

    def _request(self, kind: bytes, chain: Chain, v: Fields, seq: int | None, stamp: bytes,
                 line: int, origin: Origin) -> None:
        cl = v[CL_ORD_ID] or b""
        req = Request(kind, cl, seq, v[SENDER], stamp, f"{origin.name}:{line}", chain)
        chain.pending.append(req)
        if seq is not None:
            self.by_seq[(v[SENDER], seq)] = req
        self.deadlines.push(self.now + ANSWER_TIMEOUT, req, self)
        if chain.closed_at is not None:  # a late request on a closed order: keep it open
            self.closed.discard(chain)
            chain.closed_at = None

    def _answer(self, req: Request) -> None:
        req.open = False
        req.chain.pending.remove(req)
        if req.seq is not None:
            self.by_seq.pop((req.sender, req.seq), None)

    def _maybe_close(self, chain: Chain) -> None:
        if chain.closed_at is None and not chain.pending and (
                chain.status in TERMINAL or (chain.status is None and not chain.has_new)):
            chain.closed_at = self.now
            self.closed.add(chain)
            self.open_chains -= 1
            self.closed_chains += 1

    def _index(self, chain: Chain, v: Fields) -> None:
        oid = v[ORDER_ID]
        if oid is not None and oid != chain.order_id and oid != b"NONE":
            if chain.order_id is None:
                chain.order_id = oid
            self.by_oid[oid] = chain
        sec = v[SECONDARY_ORDER_ID]
        if sec is not None:
            chain.secondary_id = sec

    # --- requests -------------------------------------------------------------------------------

    def new_order(self, v: Fields, seq: int | None, stamp: bytes, raw: bytes, line: int,
                  origin: Origin) -> None:
        """A NewOrderSingle (D)."""
        cl = v[CL_ORD_ID]
        if cl is None:
            self._find(None, Kind.GARBLED, "NewOrderSingle without ClOrdID (11)", stamp, line,
                       origin, seq, raw)
            return
        old = self.by_cl.get(cl)
        if old is not None:
            if v[POSS_DUP] == b"Y":
                return  # the client's resend of a message already read
            dup = old.closed_at is None and not old.is_done
        else:
            dup = False
        chain = self._chain(stamp)
        chain.cl_ord_ids.append(cl)
        chain.has_new = True
        chain.qty = v[ORDER_QTY]
        chain.price = v[PRICE]
        chain.side = v[SIDE]
        chain.symbol = v[SYMBOL]
        self.by_cl[cl] = chain
        self._keep(chain, stamp, raw, line, origin)
        if dup:
            self._find(chain, Kind.DUPLICATE_CL_ORD_ID,
                       f"NewOrderSingle reuses ClOrdID {_s(cl)} of order #{old.number} "  # type: ignore[union-attr]
                       "that is still open", stamp, line, origin, seq, raw)
        self._request(b"D", chain, v, seq, stamp, line, origin)

    def cancel(self, kind: bytes, v: Fields, seq: int | None, stamp: bytes, raw: bytes,
               line: int, origin: Origin) -> None:
        """An OrderCancelRequest (F) or OrderCancelReplaceRequest (G)."""
        cl, orig = v[CL_ORD_ID], v[ORIG_CL_ORD_ID]
        if cl is None:
            self._find(None, Kind.GARBLED, f"{REQUEST_NAMES[kind]} without ClOrdID (11)",
                       stamp, line, origin, seq, raw)
            return
        if v[POSS_DUP] == b"Y" and cl in self.by_cl:
            return
        chain = self.by_cl.get(orig) if orig is not None else None
        if chain is None and v[ORDER_ID] is not None:
            chain = self.by_oid.get(v[ORDER_ID])  # type: ignore[arg-type]
        if chain is None:  # an order from before the log: known from here on
            chain = self._chain(stamp)
            chain.adopted = True
            if orig is not None:
                chain.cl_ord_ids.append(orig)
                self.by_cl[orig] = chain
            chain.symbol, chain.side = v[SYMBOL], v[SIDE]
        chain.cl_ord_ids.append(cl)
        self.by_cl[cl] = chain
        self._keep(chain, stamp, raw, line, origin)
        self._request(kind, chain, v, seq, stamp, line, origin)

    # --- answers ------------------------------------------------------------------------------

    def report(self, v: Fields, seq: int | None, stamp: bytes, raw: bytes, line: int,
               origin: Origin) -> None:
        """An ExecutionReport (8): find its chain, then check it (the module docstring).

        Most of a log's messages come through here: the common case is written out inline,
        and the decimal work is done only when the text of a figure changed."""
        possdup = v[POSS_DUP] == b"Y"
        cl, oid = v[CL_ORD_ID], v[ORDER_ID]
        chain = self.by_oid.get(oid) if oid is not None else None
        if chain is None:
            if cl is not None:
                chain = self.by_cl.get(cl)
            if chain is None and v[ORIG_CL_ORD_ID] is not None:
                chain = self.by_cl.get(v[ORIG_CL_ORD_ID])  # type: ignore[arg-type]
        exec_type = v[EXEC_TYPE]
        trans = v[EXEC_TRANS_TYPE]
        exec_id = v[EXEC_ID]
        if trans is not None and trans != b"0":  # FIX 4.2: 1 cancel, 2 correct, 3 status
            exec_type = {b"1": b"H", b"2": b"G", b"3": b"I"}.get(trans, exec_type)
        adopted = False
        if chain is None:
            if possdup:
                return  # a resend of a report whose order is no longer kept
            chain = self._adopt(v, cl, exec_type, seq, stamp, raw, line, origin)
            adopted = True
        else:
            if exec_id is not None and exec_type != b"I":
                prev = self.exec_ids.get(exec_id)
                if prev is not None:
                    if not possdup:
                        self._keep(chain, stamp, raw, line, origin)
                        self._find(chain, Kind.DUPLICATE_EXEC_ID,
                                   f"ExecID {_s(exec_id)} was reported before (order "
                                   f"#{prev.number}) and this report has no PossDupFlag",
                                   stamp, line, origin, seq, raw)
                    return
            if oid is not None and oid != chain.order_id:
                self._index(chain, v)
            chain.last_stamp = stamp
            if chain.messages is not None:
                chain.messages.append([stamp, raw, f"{origin.name}:{line}", None])
        if exec_id is not None and exec_type != b"I":
            self.exec_ids[exec_id] = chain
            chain.exec_ids.append(exec_id)
        chain.reports += 1
        if v[TEXT] is not None:
            chain.last_text = v[TEXT]
        qty_text = v[ORDER_QTY]
        if qty_text is not None:
            chain.qty = qty_text
        status = v[ORD_STATUS]
        if chain.pending:  # the requests this report answers
            for req in list(chain.pending):
                if (req.kind == b"D" or req.cl_ord_id == cl
                        or (req.kind == b"F" and (status == b"4" or exec_type == b"4"))
                        or (req.kind == b"G" and exec_type == b"5")):
                    self._answer(req)

        # fills
        filled = False
        if exec_type == TRADE or (exec_type in FIX42_TRADES and trans in (None, b"0")):
            lq = _DEC.get(v[LAST_QTY]) or dec(v[LAST_QTY])  # type: ignore[arg-type]
            lpx = _DEC.get(v[LAST_PX]) or dec(v[LAST_PX])  # type: ignore[arg-type]
            if lq is None or lpx is None or lq <= 0:
                self._find(chain, Kind.GARBLED, f"a fill (ExecType {exec_type_name(exec_type)})"
                           f" with LastQty {_s(v[LAST_QTY])} and LastPx {_s(v[LAST_PX])}",
                           stamp, line, origin, seq, raw)
            else:
                if exec_id is not None:
                    chain.fills[exec_id] = (lq, lpx)
                chain.cum += lq
                chain.notional += lq * lpx
                chain.n_fills += 1
                self.fills += 1
                filled = True
        elif exec_type == b"H" or exec_type == b"G":
            self._correction(chain, v, exec_type, exec_id)
            filled = True

        # the status
        before = chain.status
        if status is not None:
            if exec_type not in UNCHECKED_EXEC_TYPES:
                fits = STATUS_FOR_EXEC_TYPE.get(exec_type)  # type: ignore[arg-type]
                if fits is not None and status not in fits:
                    self._find(chain, Kind.ILLEGAL_TRANSITION,
                               f"ExecType {exec_type_name(exec_type)} with OrdStatus "
                               f"{status_name(status)}", stamp, line, origin, seq, raw)
                elif before is not None and not adopted:
                    allowed = NEXT_STATUS.get(before)
                    if allowed is not None and status not in allowed and not (
                            possdup and status == before):
                        self._find(chain, Kind.ILLEGAL_TRANSITION,
                                   f"OrdStatus {status_name(before)} -> {status_name(status)} "
                                   f"(ExecType {exec_type_name(exec_type)})", stamp, line,
                                   origin, seq, raw)
                chain.status = status
            elif before is None:
                chain.status = status

        # quantities
        cum_text = v[CUM_QTY]
        if cum_text is not None and cum_text != chain.cum_text:
            self._cum(chain, v, cum_text, filled, adopted, stamp, line, origin, seq, raw)
        leaves = v[LEAVES_QTY]
        if leaves is not None and status is not None and exec_type != b"I":
            key = (chain.qty, cum_text, leaves, status)
            if key != chain.leaves_key:
                chain.leaves_key = key
                self._check_leaves(chain, status, leaves, cum_text, stamp, line, origin, seq,
                                   raw)
        avg_text = v[AVG_PX]
        if avg_text is not None and (filled or avg_text != chain.avg_text):
            chain.avg_text = avg_text
            if chain.cum > 0:
                self._avg(chain, avg_text, adopted, stamp, line, origin, seq, raw)

        # ClOrdIDs
        if cl is not None:
            superseded = chain.superseded
            if superseded is not None and cl in superseded and not possdup:
                self._find(chain, Kind.STALE_CL_ORD_ID,
                           f"report under ClOrdID {_s(cl)}, retired by the confirmed replace "
                           f"to {_s(chain.cl_ord_id)}", stamp, line, origin, seq, raw)
            elif cl not in self.by_cl:
                chain.cl_ord_ids.append(cl)
                self.by_cl[cl] = chain
            if exec_type == b"5":
                self._replaced(chain, cl, v)
        if status in TERMINAL and not chain.pending and chain.closed_at is None:
            self._maybe_close(chain)

    def _adopt(self, v: Fields, cl: bytes | None, exec_type: bytes | None, seq: int | None,
               stamp: bytes, raw: bytes, line: int, origin: Origin) -> Chain:
        """A chain for a report of an order the log has not shown (an orphan, or the answer
        to a status request)."""
        chain = self._chain(stamp)
        chain.adopted = True
        if cl is not None:
            chain.cl_ord_ids.append(cl)
            self.by_cl[cl] = chain
        chain.qty, chain.price = v[ORDER_QTY], v[PRICE]
        chain.side, chain.symbol = v[SIDE], v[SYMBOL]
        self._index(chain, v)
        self._keep(chain, stamp, raw, line, origin)
        if exec_type != b"I" and v[MASS_STATUS_REQ_ID] is None:
            self._find(chain, Kind.ORPHAN,
                       f"ExecutionReport for ClOrdID {_s(cl)} OrderID {_s(v[ORDER_ID])}: the "
                       "log has no NewOrderSingle, cancel or replace for this order", stamp,
                       line, origin, seq, raw)
        return chain

    def _correction(self, chain: Chain, v: Fields, exec_type: bytes,
                    exec_id: bytes | None) -> None:
        """A trade cancel (H) or correction (G): the fill it names leaves the sum."""
        ref = v[EXEC_REF_ID]
        old = chain.fills.pop(ref, None) if ref is not None else None
        if old is not None:
            chain.cum -= old[0]
            chain.notional -= old[0] * old[1]
        if exec_type == b"G":
            lq, lpx = dec(v[LAST_QTY]), dec(v[LAST_PX])
            if lq is not None and lpx is not None and exec_id is not None:
                chain.fills[exec_id] = (lq, lpx)
                chain.cum += lq
                chain.notional += lq * lpx

    def _cum(self, chain: Chain, v: Fields, cum_text: bytes, filled: bool, adopted: bool,
             stamp: bytes, line: int, origin: Origin, seq: int | None, raw: bytes) -> None:
        cum = dec(cum_text)
        if cum is None:
            self._find(chain, Kind.GARBLED, f"CumQty {_s(cum_text)} is not a number",
                       stamp, line, origin, seq, raw)
        else:
            if cum != chain.cum:
                if not adopted:
                    self._find(chain, Kind.CUM_QTY,
                               f"CumQty {_s(cum_text)}, but the fills ({len(chain.fills)} "
                               f"ExecIDs) add up to {chain.cum}", stamp, line, origin, seq, raw)
                # the counterparty's figure is the baseline from here on
                avg = dec(v[AVG_PX])
                chain.notional = cum * avg if avg is not None else chain.notional
                chain.cum = cum
            qty = dec(chain.qty)
            if filled and qty is not None and cum > qty:
                self._find(chain, Kind.OVERFILL, f"CumQty {_s(cum_text)} exceeds OrderQty "
                           f"{_s(chain.qty)}", stamp, line, origin, seq, raw)
        chain.cum_text = cum_text

    def _avg(self, chain: Chain, avg_text: bytes, adopted: bool, stamp: bytes, line: int,
             origin: Origin, seq: int | None, raw: bytes) -> None:
        avg = dec(avg_text)
        if avg is None:
            self._find(chain, Kind.GARBLED, f"AvgPx {_s(avg_text)} is not a number",
                       stamp, line, origin, seq, raw)
        elif abs(avg * chain.cum - chain.notional) > _tolerance(avg_text) * chain.cum:
            if not adopted:
                vwap = chain.notional / chain.cum
                self._find(chain, Kind.AVG_PX,
                           f"AvgPx {_s(avg_text)}, but the fills' volume-weighted "
                           f"price is {vwap:.10g}", stamp, line, origin, seq, raw)
            chain.notional = avg * chain.cum

    def _replaced(self, chain: Chain, cl: bytes, v: Fields) -> None:
        """A confirmed replace: the ClOrdIDs before ``cl`` are retired."""
        retired = set()
        for c in chain.cl_ord_ids:
            if c == cl:
                break
            retired.add(c)
        chain.superseded = retired | (chain.superseded or set())
        if cl in chain.cl_ord_ids:  # the chain now reads up to the new ClOrdID
            chain.cl_ord_ids.remove(cl)
            chain.cl_ord_ids.append(cl)
        chain.price = v[PRICE] if v[PRICE] is not None else chain.price

    def _check_leaves(self, chain: Chain, status: bytes, leaves_text: bytes,
                      cum_text: bytes | None, stamp: bytes, line: int, origin: Origin,
                      seq: int | None, raw: bytes) -> None:
        if status in TERMINAL:
            if leaves_text == b"0":
                return  # the common case, without decimals
        elif cum_text == b"0" and leaves_text == chain.qty and status in LIVE_STATUSES:
            if dec(leaves_text) is not None:
                return  # OrderQty - 0
        leaves = dec(leaves_text)
        if leaves is None:
            self._find(chain, Kind.GARBLED, f"LeavesQty {_s(leaves_text)} is not a number",
                       stamp, line, origin, seq, raw)
            return
        if status in TERMINAL:
            if leaves != 0:
                self._find(chain, Kind.LEAVES_QTY, f"LeavesQty {_s(leaves_text)} on an order "
                           f"that is {status_name(status)} (must be 0)", stamp, line, origin,
                           seq, raw)
        elif status in LIVE_STATUSES:
            qty, cum = dec(chain.qty), dec(cum_text) if cum_text is not None else chain.cum
            if qty is not None and cum is not None and leaves != qty - cum:
                self._find(chain, Kind.LEAVES_QTY,
                           f"LeavesQty {_s(leaves_text)}, but OrderQty {_s(chain.qty)} - "
                           f"CumQty {_s(cum_text)} = {qty - cum}", stamp, line, origin, seq,
                           raw)

    def cancel_reject(self, v: Fields, seq: int | None, stamp: bytes, raw: bytes, line: int,
                      origin: Origin) -> None:
        """An OrderCancelReject (9): it answers the cancel or replace of its ClOrdID."""
        cl, orig, oid = v[CL_ORD_ID], v[ORIG_CL_ORD_ID], v[ORDER_ID]
        chain = self.by_cl.get(cl) if cl is not None else None
        if chain is None and orig is not None:
            chain = self.by_cl.get(orig)
        if chain is None and oid is not None:
            chain = self.by_oid.get(oid)
        if chain is None:
            if v[POSS_DUP] != b"Y":
                self._find(None, Kind.ORPHAN, f"OrderCancelReject for ClOrdID {_s(cl)} "
                           f"(OrigClOrdID {_s(orig)}): the log has no request of that ClOrdID",
                           stamp, line, origin, seq, raw)
            return
        self._keep(chain, stamp, raw, line, origin)
        chain.reports += 1
        if v[TEXT] is not None:
            chain.last_text = v[TEXT]
        for req in list(chain.pending):
            if req.cl_ord_id == cl and req.kind != b"D":
                self._answer(req)
        self._maybe_close(chain)

    def rejected(self, v: Fields, ref_seq: int | None, ref_id: bytes | None, stamp: bytes,
                 raw: bytes, line: int, origin: Origin) -> None:
        """A session Reject (3) or BusinessMessageReject (j): it answers the request it names
        (RefSeqNum 45 of the other side, or BusinessRejectRefID 379 = a ClOrdID)."""
        req = None
        if ref_seq is not None:
            req = self.by_seq.get((v[TARGET], ref_seq))
        if req is None and ref_id is not None:
            chain = self.by_cl.get(ref_id)
            if chain is not None:
                req = next((r for r in chain.pending if r.cl_ord_id == ref_id), None)
        if req is None:
            return
        chain = req.chain
        self._keep(chain, stamp, raw, line, origin)
        self._answer(req)
        if req.kind == b"D" and chain.status is None:
            chain.status = b"8"  # refused before it was an order
        self._maybe_close(chain)

    # --- time -----------------------------------------------------------------------------

    def unanswered(self, req: Request, why: str) -> None:
        chain = req.chain
        self._answer(req)
        name = REQUEST_NAMES[req.kind]
        finding = Finding(_UNANSWERED[req.kind], self.session,
                          f"{name} ClOrdID {_s(req.cl_ord_id)} (MsgSeqNum {req.seq}) {why}",
                          req.stamp, req.where, req.seq, chain.number,
                          req.cl_ord_id.decode("utf-8", "replace"))
        if self.findings.add(finding):
            chain.findings.append(finding)
            if chain.messages:
                for m in chain.messages:
                    if m[2] == req.where:
                        if m[3] is None:
                            m[3] = [finding]
                        else:
                            m[3].append(finding)  # type: ignore[attr-defined]
                        break
        if req.kind == b"D" and chain.status is None:
            chain.has_new = False  # nothing came of it: let the chain close
        self._maybe_close(chain)

    def evict(self, force: bool = False) -> None:
        """Hand on and forget the closed chains past their window (all of them: ``force``)."""
        if len(self.closed):
            self.closed.evict(self.now, force, self.release)

    def release(self, chain: Chain) -> None:
        """Forget ``chain`` and hand it on (it leaves the closed queue)."""
        self._forget(chain)
        self.on_closed(chain)

    def _forget(self, chain: Chain) -> None:
        by_cl, by_oid, exec_ids = self.by_cl, self.by_oid, self.exec_ids
        for cl in chain.cl_ord_ids:
            if by_cl.get(cl) is chain:
                del by_cl[cl]
        if chain.superseded:
            for cl in chain.superseded:
                if by_cl.get(cl) is chain:
                    del by_cl[cl]
        for oid in (chain.order_id,):
            if oid is not None and by_oid.get(oid) is chain:
                del by_oid[oid]
        for eid in chain.exec_ids:
            other = exec_ids.pop(eid, None)
            if other is not chain and other is not None:
                exec_ids[eid] = other  # a duplicate's: the first order keeps it
        chain.fills.clear()

    def finish(self, why: str) -> None:
        """The end of the input: every request still waiting is unanswered, every chain is
        handed on (open ones as they are)."""
        fast = self.fast
        if fast is not None:  # what is still waiting becomes a finding: Python's to make
            fast.promote_pending()
        for chain in list(self._all_chains()):
            for req in list(chain.pending):
                self.unanswered(req, why)
        self.evict(force=True)
        if fast is not None:  # the open orders, to be handed on in order with the book's
            fast.promote_all()
        for chain in self._all_chains():
            self._forget(chain)
            self.on_closed(chain)
        self.by_cl.clear()
        self.by_oid.clear()
        self.exec_ids.clear()

    def _all_chains(self) -> list[Chain]:
        seen: dict[int, Chain] = {}
        for chain in (*self.by_cl.values(), *self.by_oid.values()):
            seen.setdefault(id(chain), chain)
        return sorted(seen.values(), key=lambda c: c.number)

    @property
    def retained(self) -> int:
        """Chains in memory now (open and closed-but-findable), the fast path's orders too."""
        fast = self.fast.sizes()["orders"] if self.fast is not None else 0
        return len(self._all_chains()) + fast

    def state_sizes(self) -> dict[str, int]:
        """Entries of each index (see :meth:`Auditor.state_sizes`)."""
        chains = self._all_chains()
        return {"chains": len(chains), "by_cl_ord_id": len(self.by_cl),
                "by_order_id": len(self.by_oid), "exec_ids": len(self.exec_ids),
                "requests_by_seq": len(self.by_seq), "closed": len(self.closed),
                "chain_exec_ids": sum(len(c.exec_ids) for c in chains),
                "chain_fills": sum(len(c.fills) for c in chains),
                "chain_pending": sum(len(c.pending) for c in chains),
                "dec_cache": len(_DEC),
                **({f"fast_{k}": n for k, n in self.fast.sizes().items()}
                   if self.fast is not None else {})}
