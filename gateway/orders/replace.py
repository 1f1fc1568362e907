"""Cancel and replace: OrderCancelRequest (F) and OrderCancelReplaceRequest (G), and their venue
side. A replace goes by the venue's native amend where it can (quantity and price only), else by
cancel-then-new: the new venue order is placed once the old one is gone, so there are never two
live orders. An unanswered request stays pending until the venue is asked (Invariant 3).

Part of :class:`~gateway.orders.manager.OrderManager` (a base class of it, over the state in
:mod:`.core`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from connectors.base import (
    AmendRequest,
    Connector,
    OrderAmended,
    OrderRequest,
    OrderState,
    OrderType,
    RejectReason,
    VenueAmbiguous,
    VenueError,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
    venue_client_order_id,
)
from gateway.fix.message import FieldValueError, Message
from gateway.fix.session import Session
from gateway.store.errors import StoreUnavailable

from . import fixmap
from .core import OrderCore
from .filters import instrument_rules
from .fixmap import (
    EXEC_CANCELED,
    EXEC_PENDING_CANCEL,
    EXEC_PENDING_REPLACE,
    EXEC_REPLACED,
    Execution,
    Refusal,
)
from .lifecycle import OrdStatus
from .model import Order, OrderEvent, Pending, StaleEvent, apply

log = logging.getLogger("fixgw.orders")


class CancelReplace(OrderCore):
    def _on_canceled(self, o: Order, coid: str, reason: str) -> None:
        p = o.pending
        if (p is not None and p.kind == "replace"
                and self._replace_after_cancel.get(o.order_id) == coid):
            # cancel-then-new: the old venue order is gone; place the next one. The marker
            # goes now, so a duplicated cancel event cannot place a second one.
            del self._replace_after_cancel[o.order_id]
            self._replacing.add(o.order_id)
            self._spawn(self._replace_place(o))
            return
        if coid != o.venue_client_order_id or o.order_id in self._replacing:
            return  # an earlier venue order of this order (cancel-then-new): not the order
        cl = p.cl_ord_id if p is not None else None
        orig = p.orig_cl_ord_id if p is not None and not p.unsolicited else None
        why = self._cancel_why.pop(o.order_id, None)
        if why is not None and (p is None or p.unsolicited):
            # the gateway cancelled it: say why, with the venue's words after
            reason = f"{why}: {reason}" if reason else why
        self._record(o, "canceled", {"text": reason},
                     Execution(self._exec_id(o), EXEC_CANCELED, text=reason or None,
                               cl_ord_id=cl, orig_cl_ord_id=orig))

    def _on_amended(self, o: Order, ev: OrderAmended) -> None:
        self._amended(o, ev.venue_order_id, ev.new_client_order_id)

    def _amend_coid(self, conn: Connector, o: Order) -> str | None:
        """The client order id the venue order replacing ``o``'s gets, where the venue's amend
        needs one: the next version's, so a retry after a restart asks for the same."""
        if not conn.capabilities.amend_new_client_order_id:
            return None
        return venue_client_order_id(o.order_id, o.venue_version + 1,
                                     conn.info.client_order_id_rules)

    def _amended(self, o: Order, venue_order_id: str, new_coid: str | None = None) -> None:
        p = o.pending
        if p is None or p.kind != "replace":
            return
        data: dict[str, Any] = {"venue_order_id": venue_order_id}
        if new_coid and new_coid != o.venue_client_order_id:
            data["venue_client_order_id"] = new_coid
            data["venue_version"] = o.venue_version + 1
        self._record(o, "replaced", data,
                     Execution(self._exec_id(o), EXEC_REPLACED, cl_ord_id=p.cl_ord_id,
                               orig_cl_ord_id=p.orig_cl_ord_id))
        self._after_pending(o)

    def _cancel_reject(
        self, session: Session, req: fixmap.CancelRequest | fixmap.ReplaceRequest,
        o: Order | None, reason: bytes, text: str, replace_: bool,
    ) -> bool:
        body = fixmap.cancel_reject(
            order_id=o.order_id if o is not None else "NONE", cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            status=o.status if o is not None else OrdStatus.REJECTED,
            response_to_replace=replace_, reason=reason, text=text,
        )
        return self._send_now(session, b"9", body)

    def _check_cancelable(
        self, session: Session, req: fixmap.CancelRequest | fixmap.ReplaceRequest, replace_: bool,
    ) -> Order | asyncio.Task[bool] | None:
        """The open order ``req`` is for; else its answer is sent (None), or being worked out
        from the store (the task)."""
        sid = str(session.sid)
        o = self._find(sid, req.orig_cl_ord_id, req.order_id)
        if o is None:
            # not open: the store tells "too late" (done) from "unknown"
            return self._spawn(self._reject_closed_or_unknown(session, req, replace_))
        if (sid, req.cl_ord_id) in self._by_cl:
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
        self, session: Session, req: fixmap.CancelRequest | fixmap.ReplaceRequest, replace_: bool,
    ) -> bool:
        """OrderCancelReject for a request about an order not open (its answer was sent)."""
        sid = str(session.sid)
        o = await self._stored_order(sid, req.orig_cl_ord_id, req.order_id)
        if o is not None and not o.is_open:
            return self._cancel_reject(session, req, o, fixmap.CXL_REJ_TOO_LATE,
                                       f"too late: the order is {o.status.name.lower()}",
                                       replace_)
        return self._cancel_reject(session, req, None, fixmap.CXL_REJ_UNKNOWN_ORDER,
                                   "unknown order", replace_)

    def _on_cancel(self, session: Session, msg: Message, now: float) -> asyncio.Task[bool] | None:
        req = fixmap.parse_cancel(msg)
        o = self._check_cancelable(session, req, False)
        if not isinstance(o, Order):
            return o
        orig = o.cl_ord_id
        self._record(o, "cancel_requested", {"cl_ord_id": req.cl_ord_id, "orig_cl_ord_id": orig},
                     Execution(self._exec_id(o), EXEC_PENDING_CANCEL, cl_ord_id=req.cl_ord_id,
                               orig_cl_ord_id=orig))
        self._map_cl(o, req.cl_ord_id)
        self._spawn(self._venue_cancel(o))
        return None

    async def _venue_cancel(self, o: Order) -> None:
        conn = self.connectors[o.venue]
        if o.status is OrdStatus.PENDING_NEW or (
            o.status is OrdStatus.PENDING_CANCEL and o.venue_order_id is None
        ):
            # not acknowledged yet: cancel as soon as it is
            self._cancel_when_acked.add(o.order_id)
            if o.venue_order_id is None:
                return
        delay = self._ambiguous_retry
        while True:
            try:
                await self.venue_gate()
                await conn.cancel(o.symbol, o.venue_client_order_id)
            except VenueRejected as exc:
                if exc.reason is RejectReason.UNKNOWN_ORDER and o.venue_order_id is None:
                    self._cancel_when_acked.add(o.order_id)
                    return
                self._refuse_pending(o, exc.text, fixmap.VENUE_REASON_TO_CXL_REJ.get(
                    exc.reason, fixmap.CXL_REJ_OTHER))
            except VenueAmbiguous as exc:
                # Invariant 3: asked until the venue answers or events resolve it meanwhile
                state = await self._ask_about(conn, o)
                if state is not None:
                    await self._apply_state(o, conn, state)
                    if state.status.is_open and o.status is OrdStatus.PENDING_CANCEL:
                        # the venue still has it open: the cancel did not happen
                        self._refuse_pending(o, f"{o.venue}: cancel not confirmed ({exc})",
                                             fixmap.CXL_REJ_OTHER)
            except VenueUnavailable as exc:
                if self._promised_cancel(o):
                    # cancel-on-disconnect, a mass cancel, the kill switch: a promise, kept by
                    # asking again, backing off, until the venue takes it (Invariant 5)
                    log.warning("%s: %s cannot take the cancel (%s); again in %.1f s",
                                o.order_id, o.venue, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._ambiguous_retry_cap)
                    if self._promised_cancel(o):
                        continue
                    return
                self._refuse_pending(o, f"venue unavailable: {exc}", fixmap.CXL_REJ_OTHER)
            return

    def _promised_cancel(self, o: Order) -> bool:
        """``o`` is open and being cancelled by the gateway itself, not by its client."""
        p = o.pending
        return (o.is_open and o.order_id in self._cancel_why
                and (p is None or p.unsolicited) and self.orders.get(o.order_id) is o)

    def _refuse_pending(self, o: Order, text: str, reason: bytes) -> None:
        p = o.pending
        if p is None:
            return
        is_replace = p.kind == "replace"
        kind = "replace_refused" if is_replace else "cancel_refused"
        told = not p.unsolicited  # a cancel the gateway started has no one to answer
        if p.unsolicited:
            self._cancel_why.pop(o.order_id, None)  # ours failed: the next one says its own
        exec_id = self._exec_id(o) if told else None
        body_args = dict(order_id=o.order_id, cl_ord_id=p.cl_ord_id,
                         orig_cl_ord_id=p.orig_cl_ord_id)
        ts = time.time_ns()
        ev = OrderEvent(self._take_id("event"), o.order_id, o.session_id, kind, ts,
                        {"text": text}, exec_id)
        try:
            apply(o, ev)
        except StaleEvent:
            return
        self._by_cl.pop((o.session_id, p.cl_ord_id), None)
        self._remember_refused(o.session_id, p.cl_ord_id)
        body = None
        if told:
            body = fixmap.cancel_reject(status=o.status, response_to_replace=is_replace,
                                        reason=reason, text=text, **body_args)
        self._store_and_tell(ev, o, None, b"9", body)
        self._after_pending(o)

    def _after_pending(self, o: Order) -> None:
        """A pending cancel or replace is resolved: carry out a cancellation that waited."""
        if o.order_id in self._cancel_after_pending and o.pending is None and o.is_open:
            self._cancel_after_pending.discard(o.order_id)
            self._cancel_orders([o], reason=self._cancel_why.get(o.order_id, "deferred cancel"))

    def _on_replace(
        self, session: Session, msg: Message, now: float
    ) -> asyncio.Task[bool] | None:
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
        if o.status is OrdStatus.PENDING_NEW:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                "the venue has not acknowledged the order yet", True)
            return None
        qty = req.quantity if req.quantity is not None else o.quantity
        if qty <= o.cum_qty:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                f"OrderQty {qty} is not above the filled quantity {o.cum_qty}",
                                True)
            return None
        if req.type is not o.type or (req.time_in_force not in (None, o.time_in_force)):
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_BROKER,
                                "only OrderQty, Price and StopPx can be replaced", True)
            return None
        if o.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and req.price is None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                "Price (44) is required to replace a limit order", True)
            return None
        inst = self.symbols.instrument(o.venue, o.symbol, None, None)
        rules = instrument_rules(inst, qty, req.price, req.stop_price)
        if rules is not None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER, rules.text, True)
            return None
        refused = self.risk.check_replace(
            session_id=o.session_id, account=o.account, order_type=o.type, quantity=qty,
            price=req.price if req.price is not None else o.price,
            last_price=self.connectors[o.venue].last_price(o.symbol),
        )
        if refused is not None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_BROKER, refused.text, True)
            return None
        orig = o.cl_ord_id
        data = {"cl_ord_id": req.cl_ord_id, "orig_cl_ord_id": orig, "quantity": str(qty),
                "price": str(req.price) if req.price is not None else None,
                "stop_price": str(req.stop_price) if req.stop_price is not None else None}
        persisted = self._record(
            o, "replace_requested", data,
            Execution(self._exec_id(o), EXEC_PENDING_REPLACE, cl_ord_id=req.cl_ord_id,
                      orig_cl_ord_id=orig))
        self._map_cl(o, req.cl_ord_id)
        self._spawn(self._venue_replace(o, persisted))
        return None

    def _amends(self, conn: Connector, o: Order) -> bool:
        """Whether the pending replace goes by native amend (else cancel, then new): the amend
        changes quantity and price only."""
        p = o.pending
        return conn.capabilities.amend and p is not None and (
            p.stop_price is None or p.stop_price == o.stop_price
        )

    async def _venue_replace(self, o: Order, persisted: Awaitable[None] | None) -> None:
        if persisted is not None:
            try:
                await persisted  # write-ahead: the replace is stored before the venue hears of it
            except Exception as exc:
                # not sent to the venue; refused (told once the store is back)
                text = str(exc) if isinstance(exc, StoreUnavailable) else (
                    f"the request could not be stored ({type(exc).__name__})")
                self._refuse_pending(o, f"replace not sent: {text}", fixmap.CXL_REJ_OTHER)
                return
        conn = self.connectors[o.venue]
        p = o.pending
        if p is None:
            return
        if self._amends(conn, o):
            new_coid = self._amend_coid(conn, o)
            if new_coid is not None:
                self._map_coid(o, new_coid)
            try:
                await self.venue_gate()
                await conn.amend(AmendRequest(o.venue_client_order_id, o.symbol,
                                              quantity=p.quantity, price=p.price,
                                              new_client_order_id=new_coid))
            except VenueRejected as exc:
                self._refuse_pending(o, f"{o.venue}: {exc.text}", fixmap.VENUE_REASON_TO_CXL_REJ
                                     .get(exc.reason, fixmap.CXL_REJ_OTHER))
            except VenueUnavailable as exc:
                self._refuse_pending(o, f"{o.venue}: unavailable ({exc})", fixmap.CXL_REJ_OTHER)
            except VenueAmbiguous as exc:
                # Invariant 3: asked until the venue answers (a restart asks again)
                state = await self._ask_while_pending(conn, o, p, new_coid)
                if o.pending is not p:
                    return  # resolved meanwhile (the amend's event, a fill, a cancel)
                if new_coid is not None and state is not None and (
                    state.status is not VenueStatus.REJECTED
                ):
                    self._amended(o, state.venue_order_id, new_coid)  # the new order exists
                elif state is not None and state.status.is_open and shows_amend(state, p):
                    self._amended(o, state.venue_order_id)
                else:
                    self._refuse_pending(o, f"{o.venue}: amend not confirmed ({exc})",
                                         fixmap.CXL_REJ_OTHER)
            return
        # cancel-then-new: never two live orders; the new one is placed once the old is gone
        self._replace_after_cancel[o.order_id] = o.venue_client_order_id
        try:
            await self.venue_gate()
            await conn.cancel(o.symbol, o.venue_client_order_id)
        except VenueRejected as exc:
            self._replace_after_cancel.pop(o.order_id, None)
            self._refuse_pending(o, f"{o.venue}: {exc.text}", fixmap.VENUE_REASON_TO_CXL_REJ.get(
                exc.reason, fixmap.CXL_REJ_OTHER))
        except (VenueAmbiguous, VenueUnavailable) as exc:
            state = await self._ask_about(conn, o)
            if state is not None and not state.status.is_open:
                # canceled: place the next one, unless the cancel event did so already
                if (state.status is VenueStatus.CANCELED
                        and self._replace_after_cancel.pop(o.order_id, None) is not None):
                    self._replacing.add(o.order_id)
                    await self._catch_up_fills(o, conn, state.client_order_id)
                    await self._replace_place(o)
                return
            if self._replace_after_cancel.pop(o.order_id, None) is not None:
                self._refuse_pending(o, f"{o.venue}: cancel not confirmed ({exc})",
                                     fixmap.CXL_REJ_OTHER)

    async def _replace_place(self, o: Order) -> None:
        """Cancel-then-new, the old venue order being canceled: place the new one."""
        try:
            await self._replace_place_new(o)
        finally:
            self._replacing.discard(o.order_id)

    async def _replace_place_new(self, o: Order) -> None:
        p = o.pending
        if p is None or not o.is_open:
            return
        conn = self.connectors[o.venue]
        version = o.venue_version + 1
        coid = venue_client_order_id(o.order_id, version, conn.info.client_order_id_rules)
        self._map_coid(o, coid)
        qty = (p.quantity or o.quantity) - o.cum_qty
        if qty <= 0:  # the old order filled up to the new quantity before it was canceled
            self._record(o, "replaced", {}, Execution(
                self._exec_id(o), EXEC_REPLACED, cl_ord_id=p.cl_ord_id,
                orig_cl_ord_id=p.orig_cl_ord_id))
            return
        req = OrderRequest(
            client_order_id=coid, symbol=o.symbol, side=o.side, type=o.type, quantity=qty,
            price=p.price if p.price is not None else o.price,
            stop_price=p.stop_price if p.stop_price is not None else o.stop_price,
            time_in_force=o.time_in_force, expire_time_ns=o.expire_time_ns,
            post_only=o.post_only, reduce_only=o.reduce_only, account=o.account,
        )
        failure: str | None = None
        venue_order_id = ""
        try:
            await self.venue_gate()
            venue_order_id = (await conn.place(req)).venue_order_id
        except VenueAmbiguous as exc:
            # Invariant 3: ask the venue whether the new order exists
            state = await self._find_at_venue(conn, o.symbol, coid)
            if state is None or state.status is VenueStatus.REJECTED:
                failure = f"the venue never received it (checked by query after: {exc})"
            else:
                venue_order_id = state.venue_order_id
        except VenueError as exc:
            failure = str(exc)
        if failure is not None:
            # the old order is cancelled and the new one refused: the order is over
            text = f"replace failed at {o.venue} after the old order was canceled: {failure}"
            self._record(o, "canceled", {"text": text},
                         Execution(self._exec_id(o), EXEC_CANCELED, text=text,
                                   cl_ord_id=p.cl_ord_id, orig_cl_ord_id=p.orig_cl_ord_id))
            return
        self._record(o, "replaced", {"venue_order_id": venue_order_id,
                                     "venue_client_order_id": coid, "venue_version": version},
                     Execution(self._exec_id(o), EXEC_REPLACED, cl_ord_id=p.cl_ord_id,
                               orig_cl_ord_id=p.orig_cl_ord_id))
        self._after_pending(o)

    async def _ask_while_pending(
        self, conn: Connector, o: Order, p: Pending, coid: str | None
    ) -> OrderState | None:
        """The venue's answer about ``coid`` (None: it does not know it), asked until it
        answers or ``p`` is resolved by events meanwhile (then None)."""
        delay = self._ambiguous_retry
        while o.pending is p:
            try:
                return await conn.query_order(o.symbol, coid or o.venue_client_order_id)
            except VenueError as exc:
                log.warning("%s: query after an unanswered request failed (%s); asking again "
                            "in %.1f s", o.order_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._ambiguous_retry_cap)
        return None

    async def _ask_about(self, conn: Connector, o: Order) -> OrderState | None:
        """The venue's state of ``o`` after an unanswered cancel: asked while its cancel or
        replace is pending (None once events resolved it, or when the venue does not know it);
        an order with nothing pending is asked once."""
        p = o.pending
        if p is not None:
            return await self._ask_while_pending(conn, o, p, None)
        try:
            return await conn.query_order(o.symbol, o.venue_client_order_id)
        except VenueError as exc:
            log.warning("%s: query after an unanswered cancel failed (%s); reconciliation "
                        "will settle it", o.order_id, exc)
            return None

    async def _find_at_venue(self, conn: Connector, symbol: str, coid: str) -> OrderState | None:
        """The venue's order with client order id ``coid``, asked until it answers; None when
        it still does not know it after the patience."""
        waited = 0.0
        while True:
            try:
                state = await conn.query_order(symbol, coid)
            except VenueError as exc:
                log.warning("query of %s failed (%s); retrying", coid, exc)
            else:
                if state is not None or waited >= self._ambiguous_patience:
                    return state
            await asyncio.sleep(self._ambiguous_retry)
            waited += self._ambiguous_retry


def shows_amend(state: OrderState, p: Pending) -> bool:
    """Whether the venue's order shows the pending amend's price and quantity."""
    return (p.price is None or state.price == p.price) and (
        p.quantity is None or state.quantity == p.quantity
    )
