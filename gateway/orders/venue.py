"""The venue side of the order path: what is said to the venues about orders and what they say
back. It places an order once its intent is stored (Invariant 1), cancels and replaces it (by
the venue's native amend where it can, quantity and price only, else cancel-then-new: the new
venue order is placed once the old one is gone, so there are never two live), turns every venue
event into an order event, and asks the venue when an answer is missing: a timeout is never
taken for a refusal (Invariant 3).

This is how an order is worked when it goes to its venue as it is (:class:`VenueSide` is the
``direct`` executor); a parent's strategy works its children through it too (:mod:`.children`).
A cancel or replace in flight is the order's ``pending``; the work it carries ends with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from connectors.base import (
    AmendRequest,
    Connector,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    RejectReason,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
    venue_client_order_id,
)
from gateway.store.errors import StoreUnavailable
from gateway.store.records import FillRecord

from . import fixmap
from .book import OrderBook
from .fixmap import (
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_REPLACED,
    EXEC_TRADE,
    CancelRefused,
    Execution,
)
from .lifecycle import OrdStatus
from .model import Order, Pending
from .recorder import Recorder
from .tasks import Tasks

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_PENDING_CANCEL: Final = OrdStatus.PENDING_CANCEL
_CANCELED: Final = VenueStatus.CANCELED
_EXPIRED: Final = VenueStatus.EXPIRED
_REJECTED: Final = VenueStatus.REJECTED
_LIQUIDITY: Final = {m: m.value for m in Liquidity}
"""A fill's liquidity as the fills table has it (``.value`` is a Python descriptor call)."""

log = logging.getLogger("fixgw.orders")

AMBIGUOUS_RETRY_CAP_S = 10.0
"""Queries about an unanswered cancel or replace, and a cancel the gateway promised that the
venue cannot take, back off up to this many seconds apart."""


@dataclass(slots=True)
class Patience:
    """How the venue is asked when an answer is missing."""

    retry: float = 0.5
    """The first wait between two queries (doubling up to ``retry_cap``)."""
    retry_cap: float = AMBIGUOUS_RETRY_CAP_S
    patience: float = 5.0
    """How long an order the venue says it does not know may still appear there."""


async def _open_gate() -> None:
    return None


def not_stored(exc: BaseException, what: str) -> str:
    """Why ``what`` (the order, the request) is not carried out: the store could not take it."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    return f"{what} could not be stored ({type(exc).__name__})"


def venue_request(
    o: Order, client_order_id: str, quantity: Any, price: Any = None, stop_price: Any = None,
) -> OrderRequest:
    """The venue order that works ``quantity`` of ``o`` (at ``o``'s prices unless given)."""
    return OrderRequest(
        client_order_id=client_order_id, symbol=o.symbol, side=o.side, type=o.type,
        quantity=quantity, price=o.price if price is None else price,
        stop_price=o.stop_price if stop_price is None else stop_price,
        time_in_force=o.time_in_force, expire_time_ns=o.expire_time_ns,
        post_only=o.post_only, reduce_only=o.reduce_only, account=o.account,
    )


class VenueSide:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        connectors: dict[str, Connector],
        tasks: Tasks,
        patience: Patience,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.connectors = connectors
        self.tasks = tasks
        self.patience = patience
        self.gate: Callable[[], Awaitable[None]] = _open_gate
        """Awaited before every venue call: returns while this node may trade (its lease
        runs), raises once another node has taken its place (gateway.cluster)."""
        self.shared: Callable[[], bool] = lambda: False
        """Whether another gateway node may trade the same venue accounts now (then a venue's
        bulk cancel, which cancels every order of the account, is never used)."""
        self.timing: Callable[[str, str, float], None] | None = None
        """Told (kind, venue, seconds) of ``order_to_venue`` (an order's intent stored to its
        venue call) and ``place`` / ``place_batch`` (the venue call until its answer, whatever
        it was: accepted, refused, failed or timed out): the metrics and the alerts."""
        self.resolved: Callable[[Order], None] = lambda o: None
        """Called when an order's pending cancel or replace is resolved and the order is open
        (a cancel the gateway decided meanwhile is carried out then)."""

    # ---------------------------------------------------------------------------------------
    # placing

    async def place(self, o: Order, persisted: Awaitable[None]) -> None:
        """Place ``o`` at its venue once its intent is stored."""
        if not await self._stored(o, persisted):
            return
        conn = self.connectors[o.venue]
        timing = self.timing
        if timing is not None:
            timing("order_to_venue", o.venue, max(time.time_ns() - o.created_ns, 0) / 1e9)
        started = time.monotonic()
        try:
            outcome: OrderAccepted | VenueError = await conn.place(self._request(o))
        except VenueError as exc:
            outcome = exc
        if timing is not None:  # every outcome: a slow refusal or a timeout most of all
            timing("place", o.venue, time.monotonic() - started)
        await self.placed(o, conn, outcome)

    async def place_batch(
        self, venue: str, orders: Sequence[tuple[Order, Awaitable[None]]]
    ) -> None:
        """Place ``orders`` (all at ``venue``) by the venue's batch endpoint
        (:meth:`Connector.place_batch`) once their intents are stored; each outcome is taken
        as :meth:`place` takes its own (an ambiguous one is asked about by query)."""
        ready = [o for o, persisted in orders if await self._stored(o, persisted)]
        if not ready:
            return
        conn = self.connectors[venue]
        timing = self.timing
        if timing is not None:
            now = time.time_ns()
            for o in ready:
                timing("order_to_venue", venue, max(now - o.created_ns, 0) / 1e9)
        started = time.monotonic()
        try:
            outcomes: Sequence[OrderAccepted | VenueError] = await conn.place_batch(
                [self._request(o) for o in ready])
        except VenueError as exc:  # (the contract says never raised: taken for every order)
            outcomes = [exc] * len(ready)
        if timing is not None:
            timing("place_batch", venue, time.monotonic() - started)
        if len(outcomes) != len(ready):
            log.error("%s: place_batch answered %d outcomes for %d orders: asking about each",
                      venue, len(outcomes), len(ready))
            outcomes = [VenueAmbiguous("no outcome of its own")] * len(ready)
        await asyncio.gather(*(self.placed(o, conn, out)
                               for o, out in zip(ready, outcomes, strict=True)))

    @staticmethod
    def _request(o: Order) -> OrderRequest:
        return venue_request(o, o.venue_client_order_id, o.quantity - o.cum_qty)

    async def _stored(self, o: Order, persisted: Awaitable[None]) -> bool:
        """Whether ``o`` may go to its venue: its intent is stored and this node may trade.
        Otherwise it is rejected, never placed."""
        try:
            await persisted  # write-ahead: the intent is stored before the venue hears of it
            await self.gate()
        except Exception as exc:
            # never placed: the venue is not called for an order the store does not have.
            # The client is told (the reject is kept with the intent until the store is back)
            text = not_stored(exc, "the order")
            log.warning("%s: not placed: %s", o.order_id, exc)
            self.recorder.record(o, "rejected", {"text": text, "by": "gateway",
                                                 "ord_rej_reason": fixmap.ORD_REJ_OTHER.decode()},
                                 Execution(self.recorder.exec_id(o), EXEC_REJECTED,
                                           text=f"not placed: {text}",
                                           ord_rej_reason=fixmap.ORD_REJ_OTHER))
            return False
        return True

    async def placed(self, o: Order, conn: Connector, outcome: OrderAccepted | VenueError
                     ) -> None:
        """What the venue answered to the placing of ``o``: an ambiguous answer (or one of an
        unknown kind) is never taken for a refusal (Invariant 3)."""
        if isinstance(outcome, OrderAccepted):
            self.accepted(o, outcome.venue_order_id)
        elif isinstance(outcome, VenueRejected):
            self.rejected(o, outcome.reason, outcome.text)
        elif isinstance(outcome, VenueUnavailable):
            self.rejected(o, RejectReason.VENUE_UNAVAILABLE, str(outcome) or "venue unavailable")
        else:
            log.warning("%s: place at %s is ambiguous (%s): querying", o.order_id, conn.name,
                        outcome)
            await self.resolve_ambiguous(o, conn)

    # ---------------------------------------------------------------------------------------
    # what the venue says

    def on_event(self, venue: str, ev: VenueEvent) -> None:
        o = self.book.at_venue(venue, ev.client_order_id)
        if o is None:
            log.debug("%s: event for an unknown or closed order: %r", venue, ev)
            return
        if isinstance(ev, OrderFilled):
            self.filled(o, ev)
        elif isinstance(ev, OrderAccepted):
            self.accepted(o, ev.venue_order_id)
        elif isinstance(ev, OrderRejected):
            self.rejected(o, ev.reason, ev.text)
        elif isinstance(ev, OrderCanceled | OrderExpired):
            self.tasks.spawn(self._closed(venue, o, ev))
        elif isinstance(ev, OrderAmended):
            self.amended(o, ev.venue_order_id, ev.new_client_order_id)

    def accepted(self, o: Order, venue_order_id: str) -> None:
        if not o.unacknowledged:
            return
        # also when a cancel is already pending (PendingCancel stays): the acknowledgement is
        # an event like any other, so the stored log rebuilds the venue's order id
        self.recorder.record(o, "accepted", {"venue_order_id": venue_order_id},
                             Execution(self.recorder.exec_id(o), EXEC_NEW))
        p = o.pending
        if p is not None and p.awaiting_ack and o.is_open:
            p.awaiting_ack = False
            self.tasks.spawn(self.cancel(o))  # it waited for the acknowledgement

    def rejected(self, o: Order, reason: RejectReason, text: str) -> None:
        if not o.unacknowledged:
            return
        code = fixmap.VENUE_REASON_TO_ORD_REJ.get(reason, fixmap.ORD_REJ_OTHER)
        self.recorder.record(o, "rejected", {"text": text, "by": "venue",
                                             "reason": reason.value,
                                             "ord_rej_reason": code.decode()},
                             Execution(self.recorder.exec_id(o), EXEC_REJECTED,
                                       text=fixmap.venue_reason_text(o.venue, reason, text),
                                       ord_rej_reason=code))

    def filled(self, o: Order, ev: OrderFilled) -> None:
        if ev.trade_id in o.trade_ids:
            return
        if o.unacknowledged and ev.venue_order_id:
            self.accepted(o, ev.venue_order_id)
        fill = FillRecord(
            venue=o.venue, trade_id=ev.trade_id, order_id=o.order_id, quantity=ev.quantity,
            price=ev.price, fee=ev.fee, fee_currency=ev.fee_currency,
            liquidity=_LIQUIDITY[ev.liquidity] if ev.liquidity else None, ts_ns=ev.ts_ns,
        )
        data = {"trade_id": ev.trade_id, "quantity": str(ev.quantity), "price": str(ev.price),
                "venue_order_id": ev.venue_order_id}
        applied = self.recorder.record(o, "fill", data, Execution(
            f"{o.order_id}.T{ev.trade_id}", EXEC_TRADE, last_qty=ev.quantity, last_px=ev.price,
            liquidity=ev.liquidity, commission=ev.fee, commission_currency=ev.fee_currency,
        ), fill)
        if applied is not None and self.book.holds(o):
            # (a fill that closed the order took it out of the book: nothing more to count)
            self.book.add_filled(o.venue, ev.client_order_id, ev.quantity)

    async def _closed(self, venue: str, o: Order, ev: OrderCanceled | OrderExpired) -> None:
        """A venue order is canceled or has expired. Events may arrive out of order: fills of
        it still on their way are fetched first, so the order never closes with a fill missing
        (once closed, a late fill would find no open order to apply to)."""
        conn = self.connectors[venue]
        seen = self.book.filled_at_venue(venue, ev.client_order_id)
        if ev.filled_quantity is None or ev.filled_quantity > seen:
            try:
                state = await conn.query_order(o.symbol, ev.client_order_id,
                                               venue_order_id=ev.venue_order_id or None)
            except VenueError as exc:
                log.warning("%s: query after %r failed: %s", o.order_id, ev, exc)
                state = None
            if state is not None and state.filled_quantity > seen:
                await self.catch_up_fills(o, conn, ev.client_order_id)
        if not o.is_open:
            return
        if isinstance(ev, OrderCanceled):
            self.canceled(o, ev.client_order_id, ev.reason)
        elif ev.client_order_id == o.venue_client_order_id:
            self.expired(o)

    def canceled(self, o: Order, coid: str, reason: str) -> None:
        """The venue order ``coid`` of ``o`` is canceled."""
        p = o.pending
        if p is not None and p.kind == "replace" and p.cancel_sent_for == coid:
            # cancel-then-new: the old venue order is gone; place the next one. The marker
            # goes now, so a duplicated cancel event cannot place a second one.
            p.cancel_sent_for = None
            p.placing = True
            self.tasks.spawn(self._place_replacement(o))
            return
        if coid != o.venue_client_order_id or (p is not None and p.placing):
            return  # an earlier venue order of this order (cancel-then-new): not the order
        cl = p.cl_ord_id if p is not None else None
        orig = p.orig_cl_ord_id if p is not None and not p.unsolicited else None
        if p is not None and p.why is not None:
            # the gateway cancelled it: say why, with the venue's words after
            reason = f"{p.why}: {reason}" if reason else p.why
        self.recorder.record(o, "canceled", {"text": reason},
                             Execution(self.recorder.exec_id(o), EXEC_CANCELED,
                                       text=reason or None, cl_ord_id=cl, orig_cl_ord_id=orig))

    def expired(self, o: Order) -> None:
        self.recorder.record(o, "expired", {}, Execution(self.recorder.exec_id(o), EXEC_EXPIRED))

    def amended(self, o: Order, venue_order_id: str, new_coid: str | None = None) -> None:
        """The venue amended ``o`` as its pending replace asked."""
        p = o.pending
        if p is None or p.kind != "replace":
            return
        data: dict[str, Any] = {"venue_order_id": venue_order_id}
        if new_coid and new_coid != o.venue_client_order_id:
            data["venue_client_order_id"] = new_coid
            data["venue_version"] = o.venue_version + 1
        self.recorder.record(o, "replaced", data,
                             Execution(self.recorder.exec_id(o), EXEC_REPLACED,
                                       cl_ord_id=p.cl_ord_id, orig_cl_ord_id=p.orig_cl_ord_id))
        self._after_pending(o)

    # ---------------------------------------------------------------------------------------
    # cancel

    async def cancel(self, o: Order) -> None:
        """Carry out ``o``'s pending cancel at the venue (one not acknowledged yet: once it
        is)."""
        conn = self.connectors[o.venue]
        if o.venue_order_id is None:
            if o.pending is not None:
                o.pending.awaiting_ack = True  # not acknowledged yet: cancelled once it is
            return
        delay = self.patience.retry
        while True:
            try:
                await self.gate()
                await conn.cancel(o.symbol, o.venue_client_order_id)
            except VenueRejected as refused:  # (each clause a name: mypyc types a name once)
                self.refuse_pending(o, refused.text, fixmap.VENUE_REASON_TO_CXL_REJ.get(
                    refused.reason, fixmap.CXL_REJ_OTHER))
            except VenueAmbiguous as unclear:
                # Invariant 3: asked until the venue answers or events resolve it meanwhile
                state = await self._ask_about(conn, o)
                if state is not None:
                    await self.apply_state(o, conn, state)
                    if state.status.is_open and o.status is _PENDING_CANCEL:
                        # the venue still has it open: the cancel did not happen
                        self.refuse_pending(o, f"{o.venue}: cancel not confirmed ({unclear})",
                                            fixmap.CXL_REJ_OTHER)
            except VenueUnavailable as unavailable:
                if self._promised_cancel(o):
                    # cancel-on-disconnect, a mass cancel, the kill switch: a promise, kept by
                    # asking again, backing off, until the venue takes it (Invariant 5)
                    log.warning("%s: %s cannot take the cancel (%s); again in %.1f s",
                                o.order_id, o.venue, unavailable, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.patience.retry_cap)
                    if self._promised_cancel(o):
                        continue
                    return
                self.refuse_pending(o, f"venue unavailable: {unavailable}",
                                    fixmap.CXL_REJ_OTHER)
            return

    def _promised_cancel(self, o: Order) -> bool:
        """``o`` is open and being cancelled by the gateway itself, not by its client."""
        p = o.pending
        return o.is_open and p is not None and p.unsolicited and self.book.holds(o)

    async def cancel_all(self, venue: str, orders: list[Order]) -> None:
        """Carry out the pending cancels the gateway itself decided for ``orders`` of
        ``venue``: by the venue's bulk cancel when they are every open order of this gateway
        there and no other node trades the account (``shared``), else one by one."""
        conn = self.connectors[venue]
        ids = {o.order_id for o in orders}
        # the bulk cancel cancels every order of the account: only when all are to go, those
        # still being placed (PendingNew) included
        everything_ours = not self.shared() and all(
            o.order_id in ids for o in self.book.venue_orders(venue) if o.is_open)
        live = [o for o in orders if o.venue_order_id is not None]
        for o in orders:
            if o.venue_order_id is None and o.pending is not None:
                o.pending.awaiting_ack = True  # cancelled once acknowledged
        if everything_ours and conn.capabilities.bulk_cancel and len(live) > 1:
            try:
                await self.gate()
                await conn.cancel_all()
                return
            except VenueError as exc:
                log.warning("bulk cancel at %s failed (%s): cancelling one by one", venue, exc)
        await asyncio.gather(*(self.cancel(o) for o in live))

    def refuse_pending(self, o: Order, text: str, reason: bytes) -> None:
        """The pending cancel or replace of ``o`` did not happen: the client is told (an
        OrderCancelReject; a cancel the gateway started has no one to tell)."""
        p = o.pending
        if p is None:
            return
        is_replace = p.kind == "replace"
        report = None if p.unsolicited else CancelRefused(
            self.recorder.exec_id(o), p.cl_ord_id, p.orig_cl_ord_id, is_replace, reason, text)
        kind = "replace_refused" if is_replace else "cancel_refused"
        if self.recorder.record(o, kind, {"text": text}, report) is None:
            return
        if not p.unsolicited:  # (an unsolicited cancel's ClOrdID is the order's own)
            self.book.unmap_cl(o.session_id, p.cl_ord_id)
        self._after_pending(o)

    def _after_pending(self, o: Order) -> None:
        if o.pending is None and o.is_open:
            self.resolved(o)

    # ---------------------------------------------------------------------------------------
    # replace

    def amends(self, conn: Connector, o: Order) -> bool:
        """Whether the pending replace goes by native amend (else cancel, then new): the amend
        changes quantity and price only."""
        p = o.pending
        return conn.capabilities.amend and p is not None and (
            p.stop_price is None or p.stop_price == o.stop_price
        )

    def amend_coid(self, conn: Connector, o: Order) -> str | None:
        """The client order id the venue order replacing ``o``'s gets, where the venue's amend
        needs one: the next version's, so a retry after a restart asks for the same."""
        if not conn.capabilities.amend_new_client_order_id:
            return None
        return venue_client_order_id(o.order_id, o.venue_version + 1,
                                     conn.info.client_order_id_rules)

    async def replace(self, o: Order, persisted: Awaitable[None] | None) -> None:
        """Carry out ``o``'s pending replace at the venue once it is stored."""
        if persisted is not None:
            try:
                await persisted  # write-ahead: the replace is stored before the venue hears of it
            except Exception as failed:  # (a name of its own: mypyc types a name once)
                # not sent to the venue; refused (told once the store is back)
                self.refuse_pending(o, f"replace not sent: {not_stored(failed, 'the request')}",
                                    fixmap.CXL_REJ_OTHER)
                return
        conn = self.connectors[o.venue]
        p = o.pending
        if p is None:
            return
        if self.amends(conn, o):
            await self._amend(conn, o, p)
            return
        # cancel-then-new: never two live orders; the new one is placed once the old is gone
        p.cancel_sent_for = o.venue_client_order_id
        try:
            await self.gate()
            await conn.cancel(o.symbol, o.venue_client_order_id)
        except VenueRejected as refused:
            p.cancel_sent_for = None
            self.refuse_pending(o, f"{o.venue}: {refused.text}",
                                fixmap.VENUE_REASON_TO_CXL_REJ.get(refused.reason,
                                                                   fixmap.CXL_REJ_OTHER))
        except (VenueAmbiguous, VenueUnavailable) as unclear:
            state = await self._ask_about(conn, o)
            # (the cancel's event may have come meanwhile: cancel_sent_for read as it is now)
            if state is not None and not state.status.is_open:
                # canceled: place the next one, unless the cancel event did so already
                if state.status is _CANCELED and cancel_sent_for(p) is not None:
                    p.cancel_sent_for = None
                    p.placing = True
                    await self.catch_up_fills(o, conn, state.client_order_id)
                    await self._place_replacement(o)
                return
            if cancel_sent_for(p) is not None:
                p.cancel_sent_for = None
                self.refuse_pending(o, f"{o.venue}: cancel not confirmed ({unclear})",
                                    fixmap.CXL_REJ_OTHER)

    async def _amend(self, conn: Connector, o: Order, p: Pending) -> None:
        new_coid = self.amend_coid(conn, o)
        if new_coid is not None:
            self.book.map_coid(o, new_coid)
        try:
            await self.gate()
            await conn.amend(AmendRequest(o.venue_client_order_id, o.symbol,
                                          quantity=p.quantity, price=p.price,
                                          new_client_order_id=new_coid))
        except VenueRejected as refused:  # (each clause a name: mypyc types a name once)
            self.refuse_pending(o, f"{o.venue}: {refused.text}", fixmap.VENUE_REASON_TO_CXL_REJ
                                .get(refused.reason, fixmap.CXL_REJ_OTHER))
        except VenueUnavailable as unavailable:
            self.refuse_pending(o, f"{o.venue}: unavailable ({unavailable})",
                                fixmap.CXL_REJ_OTHER)
        except VenueAmbiguous as unclear:
            # Invariant 3: asked until the venue answers (a restart asks again)
            state = await self._ask_while_pending(conn, o, p, new_coid)
            if o.pending is not p:
                return  # resolved meanwhile (the amend's event, a fill, a cancel)
            if new_coid is not None and state is not None and (
                state.status is not _REJECTED
            ):
                self.amended(o, state.venue_order_id, new_coid)  # the new order exists
            elif state is not None and state.status.is_open and shows_amend(state, p):
                self.amended(o, state.venue_order_id)
            else:
                self.refuse_pending(o, f"{o.venue}: amend not confirmed ({unclear})",
                                    fixmap.CXL_REJ_OTHER)

    async def _place_replacement(self, o: Order) -> None:
        """Cancel-then-new, the old venue order being canceled: place the new one."""
        p = o.pending
        if p is None or not o.is_open:
            return
        try:
            await self._place_new_version(o, p)
        finally:
            p.placing = False

    async def _place_new_version(self, o: Order, p: Pending) -> None:
        conn = self.connectors[o.venue]
        version = o.venue_version + 1
        coid = venue_client_order_id(o.order_id, version, conn.info.client_order_id_rules)
        self.book.map_coid(o, coid)
        qty = (p.quantity or o.quantity) - o.cum_qty
        done = Execution(self.recorder.exec_id(o), EXEC_REPLACED, cl_ord_id=p.cl_ord_id,
                         orig_cl_ord_id=p.orig_cl_ord_id)
        if qty <= 0:  # the old order filled up to the new quantity before it was canceled
            self.recorder.record(o, "replaced", {}, done)
            return
        failure: str | None = None
        venue_order_id = ""
        try:
            await self.gate()
            venue_order_id = (await conn.place(venue_request(
                o, coid, qty, p.price, p.stop_price))).venue_order_id
        except VenueAmbiguous as unclear:  # (a name of its own: mypyc types a name once)
            # Invariant 3: ask the venue whether the new order exists
            state = await self._find_at_venue(conn, o.symbol, coid)
            if state is None or state.status is _REJECTED:
                failure = f"the venue never received it (checked by query after: {unclear})"
            else:
                venue_order_id = state.venue_order_id
        except VenueError as exc:
            failure = str(exc)
        if failure is not None:
            # the old order is cancelled and the new one refused: the order is over
            text = f"replace failed at {o.venue} after the old order was canceled: {failure}"
            self.recorder.record(o, "canceled", {"text": text},
                                 Execution(self.recorder.exec_id(o), EXEC_CANCELED, text=text,
                                           cl_ord_id=p.cl_ord_id,
                                           orig_cl_ord_id=p.orig_cl_ord_id))
            return
        self.recorder.record(o, "replaced", {"venue_order_id": venue_order_id,
                                             "venue_client_order_id": coid,
                                             "venue_version": version},
                             Execution(self.recorder.exec_id(o), EXEC_REPLACED,
                                       cl_ord_id=p.cl_ord_id, orig_cl_ord_id=p.orig_cl_ord_id))
        self._after_pending(o)

    # ---------------------------------------------------------------------------------------
    # asking the venue

    async def apply_state(self, o: Order, conn: Connector, state: OrderState) -> None:
        """Bring ``o`` in line with the venue's view of it (reconciliation, ambiguity)."""
        if state.venue_order_id and o.unacknowledged and (
            state.status is not _REJECTED
        ):
            self.accepted(o, state.venue_order_id)
        if state.filled_quantity > 0:
            await self.catch_up_fills(o, conn, state.client_order_id)
        p = o.pending
        if (p is not None and p.kind == "replace" and state.status.is_open
                and self.amends(conn, o) and shows_amend(state, p)):
            self.amended(o, state.venue_order_id)  # the amend's event was lost
        if state.status is _REJECTED and o.unacknowledged:
            self.rejected(o, RejectReason.OTHER, "rejected by the venue")
        elif state.status is _CANCELED and o.is_open:
            self.canceled(o, o.venue_client_order_id, "canceled at the venue")
        elif state.status is _EXPIRED and o.is_open:
            self.expired(o)

    async def resolve_ambiguous(self, o: Order, conn: Connector) -> None:
        """Invariant 3: ask the venue by client order id until it answers."""
        waited = 0.0
        while o.unacknowledged:
            try:
                state = await conn.query_order(o.symbol, o.venue_client_order_id,
                                               venue_order_id=o.venue_order_id)
            except VenueError as exc:
                log.warning("%s: query failed (%s); retrying", o.order_id, exc)
                state = None
                found = False
            else:
                found = True
            if state is not None:
                await self.apply_state(o, conn, state)
                return
            if found and waited >= self.patience.patience:
                self.rejected(o, RejectReason.OTHER,
                              "the venue never received the order (checked by query)")
                return
            await asyncio.sleep(self.patience.retry)
            waited += self.patience.retry

    async def catch_up_fills(self, o: Order, conn: Connector, coid: str) -> None:
        """Apply the venue's fills of ``coid`` that ``o`` has not seen (dropped or late)."""
        for f in await conn.fills_since(o.created_ns - 1):
            if f.client_order_id == coid:
                self.filled(o, f)

    async def _ask_while_pending(
        self, conn: Connector, o: Order, p: Pending, coid: str | None
    ) -> OrderState | None:
        """The venue's answer about ``coid`` (None: it does not know it), asked until it
        answers or ``p`` is resolved by events meanwhile (then None)."""
        delay = self.patience.retry
        while o.pending is p:
            try:
                if coid is not None:  # a new venue order: its venue id is not known yet
                    return await conn.query_order(o.symbol, coid)
                return await conn.query_order(o.symbol, o.venue_client_order_id,
                                              venue_order_id=o.venue_order_id)
            except VenueError as exc:
                log.warning("%s: query after an unanswered request failed (%s); asking again "
                            "in %.1f s", o.order_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.patience.retry_cap)
        return None

    async def _ask_about(self, conn: Connector, o: Order) -> OrderState | None:
        """The venue's state of ``o`` after an unanswered cancel: asked while its cancel or
        replace is pending (None once events resolved it, or when the venue does not know it);
        an order with nothing pending is asked once."""
        p = o.pending
        if p is not None:
            return await self._ask_while_pending(conn, o, p, None)
        try:
            return await conn.query_order(o.symbol, o.venue_client_order_id,
                                          venue_order_id=o.venue_order_id)
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
                if state is not None or waited >= self.patience.patience:
                    return state
            await asyncio.sleep(self.patience.retry)
            waited += self.patience.retry


def cancel_sent_for(p: Pending) -> str | None:
    """``p.cancel_sent_for`` as it is now. Read so after a call that may change it: mypy takes
    it for what the caller set before the call, and mypyc checks the value read against that
    (TypeError when an event set it to None meanwhile)."""
    return p.cancel_sent_for


def shows_amend(state: OrderState, p: Pending) -> bool:
    """Whether the venue's order shows the pending amend's price and quantity."""
    return (p.price is None or state.price == p.price) and (
        p.quantity is None or state.quantity == p.quantity
    )
