"""OrderCancelRequest (F) and OrderCancelReplaceRequest (G): find the order, check the request,
record it as pending (PendingCancel, PendingReplace) and hand it to the order's executor; what
cannot be done is answered by an OrderCancelReject. A request resent with PossDupFlag or
PossResend whose ClOrdID is already known was answered before, and is not done again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.base import Connector, OrderType
from gateway.fix.message import FieldValueError, Message
from gateway.fix.session import Session
from gateway.risk.checks import RiskEngine
from gateway.routing.router import SymbolMap

from . import fixmap
from .book import OrderBook
from .executor import Executor
from .filters import instrument_rules
from .fixmap import EXEC_PENDING_CANCEL, EXEC_PENDING_REPLACE, Execution, Refusal
from .lifecycle import OrdStatus
from .model import Order
from .recorder import Recorder
from .tasks import Tasks

log = logging.getLogger("fixgw.orders")

Request = fixmap.CancelRequest | fixmap.ReplaceRequest


class CancelReplaceRequests:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        connectors: dict[str, Connector],
        symbols: SymbolMap,
        risk: RiskEngine,
        executor: Callable[[Order], Executor],
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.connectors = connectors
        self.symbols = symbols
        self.risk = risk
        self.executor = executor
        self.tasks = tasks

    def on_request(self, session: Session, msg: Message, now: float) -> Awaitable[bool] | None:
        """F or G; what is answered after a store read is returned."""
        if msg.msg_type == b"F":
            return self._on_cancel(session, msg)
        return self._on_replace(session, msg)

    async def possible_resend(self, session: Session, msg: Message, now: float) -> bool:
        """A cancel or replace with PossDupFlag (43=Y) or PossResend (97=Y): when its ClOrdID
        is already known, it was processed and answered (a resend after a crash or a store
        outage took the sequence number back); otherwise it is new."""
        sid = str(session.sid)
        cl = msg.get_str(11) or ""
        known = (self.book.has_cl(sid, cl) or self.book.was_refused(sid, cl)
                 or await self.recorder.store.find_order(sid, cl) is not None)
        if known:
            log.info("%s: %s with ClOrdID %s is a resend of one already answered: ignored",
                     sid, msg.msg_type.decode(), cl)
            return True
        pending = self.on_request(session, msg, now)
        return True if pending is None else await pending

    def _cancel_reject(
        self, session: Session, req: Request, o: Order | None, reason: bytes, text: str,
        replace_: bool,
    ) -> bool:
        body = fixmap.cancel_reject(
            order_id=o.order_id if o is not None else "NONE", cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            status=o.status if o is not None else OrdStatus.REJECTED,
            response_to_replace=replace_, reason=reason, text=text,
        )
        return self.recorder.send_now(session, b"9", body)

    def _check_cancelable(
        self, session: Session, req: Request, replace_: bool,
    ) -> Order | asyncio.Task[bool] | None:
        """The open order ``req`` is for; else its answer is sent (None), or being worked out
        from the store (the task)."""
        sid = str(session.sid)
        o = self.book.find(sid, req.orig_cl_ord_id, req.order_id)
        if o is None:
            # not open: the store tells "too late" (done) from "unknown"
            return self.tasks.spawn(self._reject_closed_or_unknown(session, req, replace_))
        if self.book.has_cl(sid, req.cl_ord_id):
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_DUPLICATE_CLORDID,
                                f"duplicate ClOrdID {req.cl_ord_id}", replace_)
            return None
        if o.pending is not None or o.status in (OrdStatus.PENDING_CANCEL,
                                                 OrdStatus.PENDING_REPLACE):
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_PENDING,
                                "a cancel or replace is already pending", replace_)
            return None
        return o

    async def _reject_closed_or_unknown(
        self, session: Session, req: Request, replace_: bool,
    ) -> bool:
        """OrderCancelReject for a request about an order not open (its answer was sent)."""
        sid = str(session.sid)
        o = await self.recorder.stored_order(sid, req.orig_cl_ord_id, req.order_id, past=True)
        if o is not None and not o.is_open:
            what = "replace" if replace_ else "cancel"
            return self._cancel_reject(session, req, o, fixmap.CXL_REJ_TOO_LATE,
                                       f"too late to {what}: the order is "
                                       f"{o.status.name.lower().replace('_', ' ')}", replace_)
        return self._cancel_reject(session, req, None, fixmap.CXL_REJ_UNKNOWN_ORDER,
                                   "unknown order", replace_)

    def _on_cancel(self, session: Session, msg: Message) -> asyncio.Task[bool] | None:
        req = fixmap.parse_cancel(msg)
        o = self._check_cancelable(session, req, False)
        if not isinstance(o, Order):
            return o
        orig = o.cl_ord_id
        self.recorder.record(
            o, "cancel_requested", {"cl_ord_id": req.cl_ord_id, "orig_cl_ord_id": orig},
            Execution(self.recorder.exec_id(o), EXEC_PENDING_CANCEL, cl_ord_id=req.cl_ord_id,
                      orig_cl_ord_id=orig))
        self.book.map_cl(o, req.cl_ord_id)
        self.tasks.spawn(self.executor(o).cancel(o))
        return None

    def _on_replace(self, session: Session, msg: Message) -> asyncio.Task[bool] | None:
        try:
            req = fixmap.parse_replace(msg)
        except (Refusal, FieldValueError) as exc:
            cancel = fixmap.CancelRequest(msg.get_str(11) or "", msg.get_str(41),
                                          msg.get_str(37))
            self._cancel_reject(session, cancel, None, fixmap.CXL_REJ_OTHER, str(exc), True)
            return None
        o = self._check_cancelable(session, req, True)
        if not isinstance(o, Order):
            return o
        refusal = self._check_replace(req, o)
        if refusal is not None:
            self._cancel_reject(session, req, o, refusal.reason, refusal.text, True)
            return None
        qty = req.quantity if req.quantity is not None else o.quantity
        orig = o.cl_ord_id
        data: dict[str, Any] = {
            "cl_ord_id": req.cl_ord_id, "orig_cl_ord_id": orig, "quantity": str(qty),
            "price": str(req.price) if req.price is not None else None,
            "stop_price": str(req.stop_price) if req.stop_price is not None else None}
        if self._new_expire_time(req, o):
            data["expire_time_ns"] = req.expire_time_ns
        persisted = self.recorder.record(
            o, "replace_requested", data,
            Execution(self.recorder.exec_id(o), EXEC_PENDING_REPLACE, cl_ord_id=req.cl_ord_id,
                      orig_cl_ord_id=orig))
        self.book.map_cl(o, req.cl_ord_id)
        self.tasks.spawn(self.executor(o).replace(o, persisted))
        return None

    def _new_expire_time(self, req: fixmap.ReplaceRequest, o: Order) -> bool:
        """Whether ``req`` changes ExpireTime (126): compared at the precision reports carry
        it (a replace that copies it from an ExecutionReport changes nothing)."""
        if req.expire_time_ns is None:
            return False
        if o.expire_time_ns is None:
            return True
        unit: int = 10 ** (9 - int(self.recorder.ts.precision))
        return req.expire_time_ns // unit != o.expire_time_ns // unit

    def _check_replace(self, req: fixmap.ReplaceRequest, o: Order) -> Refusal | None:
        """Why the replace cannot be done (CxlRejReason and text); None when it can."""
        if o.status is OrdStatus.PENDING_NEW:
            return Refusal(fixmap.CXL_REJ_OTHER, "the venue has not acknowledged the order yet")
        qty = req.quantity if req.quantity is not None else o.quantity
        if qty <= o.cum_qty:
            return Refusal(fixmap.CXL_REJ_OTHER,
                           f"OrderQty {qty} is not above the filled quantity {o.cum_qty}")
        if req.type is not o.type or (req.time_in_force not in (None, o.time_in_force)):
            return Refusal(fixmap.CXL_REJ_BROKER, "only OrderQty, Price and StopPx can be replaced")
        if o.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and req.price is None:
            return Refusal(fixmap.CXL_REJ_OTHER, "Price (44) is required to replace a limit order")
        if self._new_expire_time(req, o):
            assert req.expire_time_ns is not None
            if o.strategy is None:
                return Refusal(fixmap.CXL_REJ_BROKER, "ExpireTime (126) of an order at a venue "
                               "cannot be replaced: cancel it and send a new one")
            if req.expire_time_ns <= time.time_ns():
                return Refusal(fixmap.CXL_REJ_OTHER, "ExpireTime (126) is in the past")
            start = o.effective_time_ns if o.effective_time_ns is not None else o.created_ns
            if req.expire_time_ns <= start:
                return Refusal(fixmap.CXL_REJ_OTHER, "ExpireTime (126) must be after the "
                               "order's start (EffectiveTime (168), or when it was received)")
        # a routed parent: the rules of one of the venues listing it at least, the last price
        # of the first that has one
        venues = [o.venue] if o.venue in self.connectors else [
            v for v in self.connectors if self.symbols.lists(v, o.symbol)]
        if not venues:
            return Refusal(fixmap.CXL_REJ_OTHER, f"no venue lists {o.symbol} any more")
        checked = [instrument_rules(self.symbols.instrument(v, o.symbol, None, None), qty,
                                    req.price, req.stop_price) for v in venues]
        if None not in checked:
            rules = checked[0]
            assert rules is not None
            return Refusal(fixmap.CXL_REJ_OTHER, rules.text)
        last_price = next((p for p in (self.connectors[v].last_price(o.symbol) for v in venues)
                           if p is not None), None)
        refused = self.risk.check_replace(
            session_id=o.session_id, account=o.account, order_type=o.type, quantity=qty,
            price=req.price if req.price is not None else o.price,
            last_price=last_price,
        )
        if refused is not None:
            return Refusal(fixmap.CXL_REJ_BROKER, refused.text)
        return None
