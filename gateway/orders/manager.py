"""The order path: FIX orders to venues and every venue event back as ExecutionReports.

The :class:`OrderManager` is the acceptor's application. For each order it

* stores the intent before the venue is called (write-ahead, Invariant 1);
* stores every venue event before the ExecutionReport that tells the client (Invariant 1), with
  ExecIDs derived from the venue's ids so a duplicated or replayed event is dropped
  (Invariant 2);
* never turns a timeout into a reject: the order stays pending until a query by client order id
  resolves it (Invariant 3);
* reconciles with the venue on start and on request, and delivers what a client missed when it
  logs on again (Invariant 4);
* cancels a session's orders when it drops, per its cancel-on-disconnect policy (Invariant 5).

State changes are applied in memory synchronously (so their order is the order of events), then
persisted; the ExecutionReport goes out when the event's commit completes. Commits complete in
order, so reports reach the client in the order of events.

This module holds the state, the session and venue plumbing, NewOrderSingle and venue events;
cancel and replace are in :mod:`.replace`, reconciliation in :mod:`.recovery`, status and mass
requests and cancel-on-disconnect in :mod:`.mass`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine
from dataclasses import replace
from typing import Any

from connectors.base import (
    Connector,
    Instrument,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    RejectReason,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueRejected,
    VenueUnavailable,
    venue_client_order_id,
)
from gateway.fix.message import FieldValueError, Message
from gateway.fix.session import Session, SessionID
from gateway.fix.tags import BR_UNSUPPORTED_MESSAGE_TYPE
from gateway.routing.router import RoutingError, UnknownSymbol, resolve_venue
from gateway.store.errors import StoreUnavailable
from gateway.store.orders import FillRecord

from . import fixmap
from .core import SessionPolicy
from .filters import instrument_rules
from .fixmap import (
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_PENDING_NEW,
    EXEC_REJECTED,
    EXEC_STATUS,
    EXEC_TRADE,
    Execution,
    NewOrder,
    Refusal,
)
from .lifecycle import OrdStatus
from .mass import MassRequests
from .model import ZERO, Order, OrderEvent, order_from_json, order_to_json
from .recovery import Recovery
from .replace import CancelReplace

__all__ = ["OrderManager", "SessionPolicy"]

log = logging.getLogger("fixgw.orders")


class OrderManager(CancelReplace, Recovery, MassRequests):
    """The acceptor's application (module docstring); its state is set up by
    :class:`~gateway.orders.core.OrderCore`."""

    # ---------------------------------------------------------------------------------------
    # lifecycle

    def bind(self, flush: Callable[[SessionID], Coroutine[Any, Any, None]]) -> None:
        """How to make a session write what was queued on it (the acceptor's flush)."""
        self._flush = flush

    async def _start_venue(self, name: str, conn: Connector) -> bool:
        """Connect one venue and load its instruments; False (and why in :attr:`down`) when it
        cannot be reached now."""
        try:
            await asyncio.wait_for(conn.start(), self._venue_start_timeout)
            self.symbols.load(name, await conn.instruments())
        except (VenueError, TimeoutError, OSError) as exc:
            self.down[name] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.error("venue %s cannot be started (%s); orders for it are refused until it "
                      "can", name, self.down[name])
            with contextlib.suppress(Exception):
                await conn.close()
            return False
        self.down.pop(name, None)
        return True

    async def _start_later(self, name: str, conn: Connector) -> None:
        """Keep trying a venue that was down at start; once up, catch up as a start does."""
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._venue_retry_cap)
            if await self._start_venue(name, conn):
                log.info("venue %s is up", name)
                self._consumers.append(asyncio.create_task(self._consume(name, conn)))
                await self.reconcile(name)
                self._reissue_pending(name)
                return

    async def start(self, sessions: Collection[str] | None = None) -> None:
        """Connect the venues, load the open orders and untold reports of ``sessions`` (all
        with order routing when None: a node serving every session) and reconcile them with
        the venues; re-arm the kill switch and cancel-on-disconnect."""
        for blocks in self._id_blocks.values():
            await blocks.start()
        started = [name for name, conn in self.connectors.items()
                   if await self._start_venue(name, conn)]
        for name in self.connectors:
            if name not in started:
                self._consumers.append(asyncio.create_task(
                    self._start_later(name, self.connectors[name])))
        serving = set(self._sessions) if sessions is None else set(sessions) & set(self._sessions)
        self._serving = serving
        await self._load_sessions(serving)
        for name in started:
            self._consumers.append(asyncio.create_task(self._consume(name, self.connectors[name])))
        for name in started:
            await self.reconcile(name)
        for name in started:
            self._reissue_pending(name)
        await self._after_restart(serving)

    async def adopt(self, sessions: Collection[str]) -> None:
        """Take on ``sessions`` from a node that is gone (hot standby): their open orders and
        untold reports from the store, reconciled with the venues; a promise to cancel on
        disconnect is kept (the node's death is a disconnect); the kill switch holds."""
        serving = set(sessions) & set(self._sessions)
        self._serving |= serving
        loaded = await self._load_sessions(serving)
        ids = {o.order_id for o in loaded}
        for venue in sorted({o.venue for o in loaded}):
            if venue not in self.down:
                await self.reconcile(venue)
                self._reissue_pending(venue, ids)  # (this node's own are in hand already)
        await self._after_restart(serving)

    def let_go(self, sid: str) -> None:
        """Forget session ``sid``'s orders here (another node takes it over with what the
        store has; nothing is cancelled). Raises RuntimeError while one of them has a request
        in flight (its outcome would be written by this node): try again once it is settled."""
        mine = [o for o in self.orders.values() if o.session_id == sid]
        busy = [o.order_id for o in mine if o.pending is not None or o.unacknowledged
                or o.order_id in self._cancel_why]
        if busy or self._deferred:
            raise RuntimeError(f"orders with requests in flight ({', '.join(busy[:5])}) or "
                               "events not stored yet: try again once they are settled")
        st = self._sessions.get(sid)
        if st is not None:
            if st.cod_task is not None:
                st.cod_task.cancel()
                st.cod_task = None
            st.unreported = []
        for o in mine:
            self._forget(o)
        self._serving.discard(sid)

    async def _load_sessions(self, sessions: set[str]) -> list[Order]:
        """Index the open orders of ``sessions`` (those not known yet) and queue their
        reports the client was never told."""
        loaded = [o for o in map(order_from_json, await self.store.load_open_orders())
                  if o.session_id in sessions and o.order_id not in self.orders]
        for o in loaded:
            self._index(o)
            self.risk.opened(o.session_id, o.account)
        for sid in sorted(sessions):
            self._sessions[sid].unreported = await self._untold(sid)
        return loaded

    async def _after_restart(self, sessions: set[str]) -> None:
        """What holds across a restart for ``sessions``: the kill switch (engaged by the
        configuration or an admin command) cancels what is still open of its scope; a promise
        to cancel on disconnect is kept (a restart is a disconnect, not a logout)."""
        stored_kills = await self.store.load_kill_switches()
        unknown = sorted(k for k in stored_kills if k != "*" and k not in self._sessions)
        if unknown:
            log.warning("kill switch engaged for sessions no longer configured: %s (release "
                        "with fixgw kill-switch --session ID --release)", ", ".join(unknown))
        for scope in sessions | {"*"} | set(unknown):
            # as stored (an admin command on another node may have released it), or as
            # configured
            if scope in stored_kills:
                self.risk.killed[scope] = stored_kills[scope]
            elif scope in self._configured_kills:
                self.risk.killed[scope] = self._configured_kills[scope]
            else:
                self.risk.killed.pop(scope, None)
        killed = [o for o in self._killed_orders() if o.session_id in sessions]
        if killed:
            log.warning("kill switch engaged (%s): cancelling %d open orders",
                        ", ".join(sorted(self.risk.killed)), len(killed))
            self._cancel_orders(killed, reason="kill switch")
        overrides = await self.store.load_cod_overrides()
        for sid in sorted(sessions):
            st = self._sessions[sid]
            st.cod_override = overrides.get(sid)
            mode = st.cod_override or st.policy.cancel_on_disconnect
            if st.session is not None:
                continue  # logged on again already: nothing to keep
            if mode in ("disconnect", "both") and any(
                o.session_id == sid for o in self.orders.values()
            ):
                st.cod_task = self._spawn(self._cancel_on_disconnect(sid, st.policy.cod_grace))

    async def close(self) -> None:
        for t in self._consumers:
            t.cancel()
        for st in self._sessions.values():
            if st.cod_task is not None:
                st.cod_task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for conn in self.connectors.values():
            await conn.close()

    async def idle(self) -> None:
        """Wait until no order work is in flight (tests, benchmarks)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # ---------------------------------------------------------------------------------------
    # the acceptor's application

    def on_logon(self, session: Session, now: float) -> None:
        st = self._sessions.get(str(session.sid))
        if st is None:
            return
        st.session = session
        if st.cod_task is not None:
            st.cod_task.cancel()
            st.cod_task = None
        logon = session.logon_message
        flag = logon.get(8013) if logon is not None else None
        st.cod_override = {b"Y": "both", b"N": "off"}.get(flag) if flag else None
        self._store_cod_override(str(session.sid), st.cod_override)
        self._replay(st, session, now)

    def _store_cod_override(self, sid: str, mode: str | None) -> None:
        """Persist a Logon's cancel-on-disconnect choice (tag 8013; None: none), so that
        :meth:`start` re-arms with it after a restart. Queued now, during the Logon's
        processing, so it commits no later than the Logon reply saved after it."""
        try:
            saved = self.store.save_cod_override(sid, mode)
        except Exception:
            log.exception("%s: storing the cancel-on-disconnect override failed", sid)
            return
        saved.add_done_callback(functools.partial(_log_cod_failure, sid))

    def on_logout(self, session: Session, now: float) -> None:
        st = self._sessions.get(str(session.sid))
        if st is None:
            return
        st.session = None
        mode = st.cod_override or st.policy.cancel_on_disconnect
        clean = session.logout_initiator in ("counterparty", "local")
        if mode == "both" or (mode == "logout" and clean) or (mode == "disconnect" and not clean):
            grace = st.policy.cod_grace
            st.cod_task = self._spawn(self._cancel_on_disconnect(str(session.sid), grace))

    def on_message(
        self, session: Session, message: Message, now: float
    ) -> Awaitable[bool] | None:
        """Handle one application message; what is answered after a store read is returned
        (the session stores the message as received once it is done)."""
        sid = str(session.sid)
        if sid not in self._sessions:
            session.business_reject(message, 4, now, text="No order routing for this session")
            return None
        mt = message.msg_type
        h = message.header
        maybe_seen = h.get(97) == b"Y" or h.get(43) == b"Y"
        if mt == b"D":
            if maybe_seen:
                return self._spawn(self._on_possible_resend(session, message, now))
            self._on_new_order(session, message, now)
        elif mt == b"F" or mt == b"G":
            if maybe_seen:
                return self._spawn(self._on_possible_resend_of_request(session, message, now))
            return self._on_cancel_or_replace(session, message, now)
        elif mt == b"H":
            return self._spawn(self._on_status(session, message))
        elif mt == b"AF":
            self._on_mass_status(session, message, now)
        elif mt == b"q":
            self._on_mass_cancel(session, message, now)
        else:
            session.business_reject(message, BR_UNSUPPORTED_MESSAGE_TYPE, now)
        return None

    def _on_cancel_or_replace(
        self, session: Session, message: Message, now: float
    ) -> Awaitable[bool] | None:
        if message.msg_type == b"F":
            return self._on_cancel(session, message, now)
        return self._on_replace(session, message, now)

    async def _on_possible_resend_of_request(
        self, session: Session, msg: Message, now: float
    ) -> bool:
        """A cancel or replace with PossDupFlag (43=Y) or PossResend (97=Y): when its ClOrdID
        is already known, it was processed and answered (a resend after a crash or a store
        outage took the sequence number back); otherwise it is new."""
        sid = str(session.sid)
        cl = msg.get_str(11) or ""
        known = ((sid, cl) in self._by_cl or (sid, cl) in self._refused_cl
                 or await self.store.find_order(sid, cl) is not None)
        if known:
            log.info("%s: %s with ClOrdID %s is a resend of one already answered: ignored",
                     sid, msg.msg_type.decode(), cl)
            return True
        pending = self._on_cancel_or_replace(session, msg, now)
        return True if pending is None else await pending

    # ---------------------------------------------------------------------------------------
    # NewOrderSingle

    async def _on_possible_resend(self, session: Session, msg: Message, now: float) -> bool:
        """PossResend (97=Y), or PossDupFlag (43=Y) on a message we are told we never
        processed (a crash can lose the target sequence number but never the stored intent):
        the client may have sent this order before. An order already placed is answered with
        its status, not placed again."""
        sid = str(session.sid)
        cl = msg.get_str(11) or ""
        oid = self._by_cl.get((sid, cl))
        o = self.orders.get(oid) if oid is not None else await self._stored_order(sid, cl)
        if o is None:
            self._on_new_order(session, msg, now)
            return True
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS,
                       text="possible duplicate: this order was already received")
        return self._send_now(session, b"8",
                              fixmap.execution_report(o, ex, time.time_ns(), self._ts))

    def _on_new_order(self, session: Session, msg: Message, now: float) -> None:
        sid = str(session.sid)
        st = self._sessions[sid]
        cl = (msg.get_str(11) or "")
        order_id = str(self._take_id("order"))
        try:
            req = fixmap.parse_new_order(msg, st.policy.default_time_in_force)
        except (Refusal, FieldValueError) as exc:
            reason = exc.reason if isinstance(exc, Refusal) else fixmap.ORD_REJ_OTHER
            self._reject_new(session, msg, order_id, reason, str(exc))
            return
        try:
            venue = resolve_venue(st.policy.routing, req.destination, req.account)
            conn = self.connectors.get(venue)
            if conn is None:
                raise RoutingError(f"venue {venue} is not configured")
            if venue in self.down:
                self._reject_new(session, msg, order_id, fixmap.ORD_REJ_EXCHANGE_CLOSED,
                                 f"venue {venue} is unavailable ({self.down[venue]})")
                return
            inst = self.symbols.instrument(venue, req.symbol, req.security_id,
                                           req.security_id_source)
        except RoutingError as exc:
            reason = (fixmap.ORD_REJ_UNKNOWN_SYMBOL if isinstance(exc, UnknownSymbol)
                      else fixmap.ORD_REJ_BROKER)
            self._reject_new(session, msg, order_id, reason, str(exc))
            return
        o = Order(
            order_id=order_id, session_id=sid, cl_ord_id=req.cl_ord_id, account=req.account,
            venue=venue, symbol=inst.symbol, side=req.side, type=req.type,
            quantity=req.quantity, price=req.price, stop_price=req.stop_price,
            time_in_force=req.time_in_force, expire_time_ns=req.expire_time_ns,
            post_only=req.post_only, reduce_only=req.reduce_only, created_ns=time.time_ns(),
        )
        o.venue_client_order_id = venue_client_order_id(
            order_id, 0, conn.info.client_order_id_rules
        )
        o.updated_ns = o.created_ns  # as new_order() has it when the log is replayed
        if (sid, cl) in self._by_cl:
            refusal: Refusal | None = Refusal(
                fixmap.ORD_REJ_DUPLICATE, f"duplicate ClOrdID {cl}: a live order has it")
        else:
            refusal = self._pre_trade(session, req, o, conn, inst, now)
        created = OrderEvent(0, o.order_id, sid, "created", o.created_ns,
                             {"order": order_to_json(o)})
        if refusal is not None:
            o.status = OrdStatus.PENDING_NEW
            ev = replace(created, event_id=self._take_id("event"))
            self._store_and_tell(ev, o, None, b"8", None)
            self._record(o, "rejected", {"text": refusal.text, "by": "gateway"},
                         Execution(self._exec_id(o), EXEC_REJECTED, text=refusal.text,
                                   ord_rej_reason=refusal.reason))
            return
        self._index(o)
        self.risk.opened(sid, o.account)
        execution = (Execution(self._exec_id(o), EXEC_PENDING_NEW)
                     if st.policy.report_pending_new else None)
        ev = replace(created, event_id=self._take_id("event"),
                     exec_id=execution.exec_id if execution else None)
        o.last_event_id = ev.event_id
        if execution is not None:
            o.exec_count += 1
        persisted = self._record_created(ev, o, execution)
        self._spawn(self._place(o, conn, persisted))

    def _record_created(
        self, ev: OrderEvent, o: Order, execution: Execution | None
    ) -> asyncio.Future[None]:
        body = None
        if execution is not None:
            body = fixmap.execution_report(o, execution, ev.ts_ns, self._ts)
        return self._store_and_tell(ev, o, None, b"8", body)

    def _pre_trade(
        self, session: Session, req: NewOrder, o: Order, conn: Connector, inst: Instrument,
        now: float,
    ) -> Refusal | None:
        caps = conn.capabilities
        if req.type not in caps.order_types:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"OrdType {req.type.value} is not supported at {conn.name}")
        if req.time_in_force not in caps.time_in_force:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"TimeInForce {req.time_in_force.value} is not supported at "
                           f"{conn.name}")
        if req.post_only and not caps.post_only:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED, f"post-only is not supported at {conn.name}")
        if req.reduce_only and not caps.reduce_only:
            return Refusal(fixmap.ORD_REJ_UNSUPPORTED,
                           f"reduce-only is not supported at {conn.name}")
        rules = instrument_rules(inst, req.quantity, req.price, req.stop_price)
        if rules is not None:
            return rules
        refused = self.risk.check(
            session_id=o.session_id, account=o.account, order_type=o.type, quantity=o.quantity,
            price=o.price, last_price=conn.last_price(o.symbol), now=now,
        )
        if refused is not None:
            return Refusal(refused.reason, refused.text)
        return None

    def _reject_new(
        self, session: Session, msg: Message, order_id: str, reason: bytes, text: str
    ) -> None:
        """ExecutionReport(Rejected) for an order that cannot even be described."""
        body: list[tuple[int, bytes]] = [
            (6, b"0"), (11, msg.get(11) or b"NONE"), (14, b"0"), (17, f"{order_id}.1".encode()),
            (37, order_id.encode()), (39, b"8"),
        ]
        if msg.get(38):
            body.append((38, msg.get(38) or b""))
        body += [(54, msg.get(54) or b"1"), (55, msg.get(55) or b"NONE"), (58, text.encode()),
                 (103, reason), (150, EXEC_REJECTED), (151, b"0")]
        self._send_now(session, b"8", body)

    async def _place(self, o: Order, conn: Connector, persisted: Awaitable[None]) -> None:
        try:
            await persisted  # write-ahead: the intent is stored before the venue hears of it
            await self.venue_gate()
        except Exception as exc:
            # never placed: the venue is not called for an order the store does not have.
            # The client is told (the reject is kept with the intent until the store is back)
            text = str(exc) if isinstance(exc, StoreUnavailable) else (
                f"the order could not be stored ({type(exc).__name__})")
            log.warning("%s: not placed: %s", o.order_id, exc)
            self._record(o, "rejected", {"text": text, "by": "gateway"},
                         Execution(self._exec_id(o), EXEC_REJECTED,
                                   text=f"not placed: {text}", ord_rej_reason=fixmap.ORD_REJ_OTHER))
            return
        req = OrderRequest(
            client_order_id=o.venue_client_order_id, symbol=o.symbol, side=o.side, type=o.type,
            quantity=o.quantity - o.cum_qty, price=o.price, stop_price=o.stop_price,
            time_in_force=o.time_in_force, expire_time_ns=o.expire_time_ns,
            post_only=o.post_only, reduce_only=o.reduce_only, account=o.account,
        )
        try:
            ack = await conn.place(req)
        except VenueRejected as exc:
            self._venue_rejected(o, exc.reason, exc.text)
        except VenueUnavailable as exc:
            self._venue_rejected(o, RejectReason.VENUE_UNAVAILABLE, str(exc) or "venue unavailable")
        except VenueAmbiguous as exc:
            log.warning("%s: place at %s is ambiguous (%s): querying", o.order_id, conn.name, exc)
            await self._resolve_ambiguous(o, conn)
        else:
            self._on_accepted(o, ack.venue_order_id)

    def _venue_rejected(self, o: Order, reason: RejectReason, text: str) -> None:
        if not o.unacknowledged:
            return
        self._record(o, "rejected", {"text": text, "by": "venue"},
                     Execution(self._exec_id(o), EXEC_REJECTED,
                               text=fixmap.venue_reason_text(o.venue, reason, text),
                               ord_rej_reason=fixmap.VENUE_REASON_TO_ORD_REJ.get(
                                   reason, fixmap.ORD_REJ_OTHER)))

    def _on_accepted(self, o: Order, venue_order_id: str) -> None:
        if o.unacknowledged:
            # also when a cancel is already pending (PendingCancel stays): the acknowledgement
            # is an event like any other, so the stored log rebuilds the venue's order id
            self._record(o, "accepted", {"venue_order_id": venue_order_id},
                         Execution(self._exec_id(o), EXEC_NEW))
        if o.order_id in self._cancel_when_acked:
            self._cancel_when_acked.discard(o.order_id)
            self._spawn(self._venue_cancel(o))

    # ---------------------------------------------------------------------------------------
    # venue events

    async def _consume(self, name: str, conn: Connector) -> None:
        async for ev in conn.events():
            try:
                self.on_venue_event(name, ev)
            except Exception:
                log.exception("venue event %r failed", ev)

    def on_venue_event(self, venue: str, ev: VenueEvent) -> None:
        oid = self._by_coid.get((venue, ev.client_order_id))
        o = self.orders.get(oid) if oid is not None else None
        if o is None:
            log.debug("%s: event for an unknown or closed order: %r", venue, ev)
            return
        if isinstance(ev, OrderFilled):
            self._on_fill(o, ev)
        elif isinstance(ev, OrderAccepted):
            self._on_accepted(o, ev.venue_order_id)
        elif isinstance(ev, OrderRejected):
            self._venue_rejected(o, ev.reason, ev.text)
        elif isinstance(ev, OrderCanceled | OrderExpired):
            self._spawn(self._on_venue_closed(venue, o, ev))
        elif isinstance(ev, OrderAmended):
            self._on_amended(o, ev)

    def _on_fill(self, o: Order, ev: OrderFilled) -> None:
        if ev.trade_id in o.trade_ids:
            return
        if o.unacknowledged and ev.venue_order_id:
            self._on_accepted(o, ev.venue_order_id)
        fill = FillRecord(
            venue=o.venue, trade_id=ev.trade_id, order_id=o.order_id, quantity=ev.quantity,
            price=ev.price, fee=ev.fee, fee_currency=ev.fee_currency,
            liquidity=ev.liquidity.value if ev.liquidity else None, ts_ns=ev.ts_ns,
        )
        data = {"trade_id": ev.trade_id, "quantity": str(ev.quantity), "price": str(ev.price),
                "venue_order_id": ev.venue_order_id}
        applied = self._record(o, "fill", data, Execution(
            f"{o.order_id}.T{ev.trade_id}", EXEC_TRADE, last_qty=ev.quantity, last_px=ev.price,
            liquidity=ev.liquidity, commission=ev.fee, commission_currency=ev.fee_currency,
        ), fill)
        if applied is not None and self.orders.get(o.order_id) is o:
            # (a fill that closed the order made _record forget it: nothing more to count)
            key = (o.venue, ev.client_order_id)
            self._coid_filled[key] = self._coid_filled.get(key, ZERO) + ev.quantity

    async def _on_venue_closed(
        self, venue: str, o: Order, ev: OrderCanceled | OrderExpired
    ) -> None:
        """A venue order is canceled or has expired. Events may arrive out of order: fills of
        it still on their way are fetched first, so the order never closes with a fill missing
        (once closed, a late fill would find no open order to apply to)."""
        conn = self.connectors[venue]
        seen = self._coid_filled.get((venue, ev.client_order_id), ZERO)
        if ev.filled_quantity is None or ev.filled_quantity > seen:
            try:
                state = await conn.query_order(o.symbol, ev.client_order_id)
            except VenueError as exc:
                log.warning("%s: query after %r failed: %s", o.order_id, ev, exc)
                state = None
            if state is not None and state.filled_quantity > seen:
                await self._catch_up_fills(o, conn, ev.client_order_id)
        if not o.is_open:
            return
        if isinstance(ev, OrderCanceled):
            self._on_canceled(o, ev.client_order_id, ev.reason)
        elif ev.client_order_id == o.venue_client_order_id:
            self._record(o, "expired", {}, Execution(self._exec_id(o), EXEC_EXPIRED))


def _log_cod_failure(sid: str, future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("%s: storing the cancel-on-disconnect override failed", sid,
                  exc_info=future.exception())
