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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from connectors.base import (
    AmendRequest,
    Connector,
    Instrument,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderType,
    RejectReason,
    TimeInForce,
    VenueAmbiguous,
    VenueError,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
    venue_client_order_id,
)
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.message import FieldValueError, Message
from gateway.fix.session import Session, SessionID
from gateway.fix.tags import BR_UNSUPPORTED_MESSAGE_TYPE
from gateway.risk.checks import RiskEngine
from gateway.routing.router import RoutingError, SessionRouting, SymbolMap, resolve_venue
from gateway.store.orders import FillRecord, OrderAppend, build_append

from . import fixmap
from .fixmap import Execution, NewOrder, Refusal
from .ids import IdBlocks
from .lifecycle import OrdStatus
from .model import ZERO, Order, OrderEvent, Pending, StaleEvent, apply, order_to_json
from .ports import OrderStorePort

log = logging.getLogger("fixgw.orders")

COD_MODES = ("off", "disconnect", "logout", "both")

EXEC_NEW = b"0"
EXEC_CANCELED = b"4"
EXEC_REPLACED = b"5"
EXEC_PENDING_CANCEL = b"6"
EXEC_REJECTED = b"8"
EXEC_PENDING_NEW = b"A"
EXEC_EXPIRED = b"C"
EXEC_PENDING_REPLACE = b"E"
EXEC_TRADE = b"F"
EXEC_STATUS = b"I"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    routing: SessionRouting
    cancel_on_disconnect: str = "off"
    """off | disconnect (the connection drops without a Logout) | logout | both."""
    cod_grace: float = 0.0
    """A reconnect within this many seconds cancels the cancellation."""
    report_pending_new: bool = False
    """Send ExecutionReport PendingNew (39=A) before the venue acknowledges."""
    default_time_in_force: TimeInForce = TimeInForce.DAY
    """What a NewOrderSingle without TimeInForce (59) means."""


@dataclass(slots=True)
class _SessionState:
    policy: SessionPolicy
    session: Session | None = None
    unreported: list[tuple[bytes, list[tuple[int, bytes]], str]] = field(default_factory=list)
    cod_override: str | None = None
    cod_task: asyncio.Task[None] | None = None


class OrderManager:
    def __init__(
        self,
        store: OrderStorePort,
        connectors: dict[str, Connector],
        policies: dict[str, SessionPolicy],
        risk: RiskEngine | None = None,
        *,
        clock: Callable[[], float] = time.time,
        timestamp_precision: int = 3,
        ambiguous_retry: float = 0.5,
        ambiguous_patience: float = 5.0,
        venue_start_timeout: float = 30.0,
        venue_retry_cap: float = 60.0,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.risk = risk or RiskEngine()
        self.clock = clock
        self.symbols = SymbolMap()
        self._ts = TimestampFormatter(timestamp_precision)
        self._sessions = {sid: _SessionState(p) for sid, p in policies.items()}
        self.orders: dict[str, Order] = {}
        """Open orders (and those with work in flight), by OrderID."""
        self._by_cl: dict[tuple[str, str], str] = {}
        self._by_coid: dict[tuple[str, str], str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flush: Callable[[SessionID], Coroutine[Any, Any, None]] | None = None
        self._flush_due: set[SessionID] = set()
        self._flush_scheduled = False
        self._id_blocks = {c: IdBlocks(store.reserve, c) for c in ("order", "event")}
        self._cancel_when_acked: set[str] = set()
        self._cl_keys: dict[str, list[tuple[str, str]]] = {}
        self._batching: list[tuple[OrderAppend, asyncio.Future[None]]] | None = None
        self._coid_filled: dict[tuple[str, str], Decimal] = {}
        """What each venue order has filled as far as this process has applied."""
        self._coid_keys: dict[str, list[tuple[str, str]]] = {}
        self._ambiguous_retry = ambiguous_retry
        self._ambiguous_patience = ambiguous_patience
        self._venue_start_timeout = venue_start_timeout
        self._venue_retry_cap = venue_retry_cap
        self.down: dict[str, str] = {}
        """Venues that could not be started yet -> why; new orders for them are refused."""
        self._consumers: list[asyncio.Task[None]] = []
        self._replace_after_cancel: dict[str, tuple[int, str]] = {}
        self._replacing: set[str] = set()
        """Cancel-then-new: the old venue order is canceled, the new one being placed."""
        self._cancel_after_pending: set[str] = set()
        """Orders to cancel (cancel-on-disconnect, mass cancel) once their pending cancel or
        replace is resolved."""

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

    def _reissue_pending(self, venue: str | None) -> None:
        for o in list(self.orders.values()):
            # what was in flight when the last process stopped is asked again (both idempotent)
            if (venue is None or o.venue == venue) and o.is_open and o.pending is not None:
                if o.pending.kind == "cancel":
                    self._spawn(self._venue_cancel(o))
                else:
                    self._spawn(self._venue_replace(o, None))

    async def start(self) -> None:
        for blocks in self._id_blocks.values():
            await blocks.start()
        started = [name for name, conn in self.connectors.items()
                   if await self._start_venue(name, conn)]
        for name in self.connectors:
            if name not in started:
                self._consumers.append(asyncio.create_task(
                    self._start_later(name, self.connectors[name])))
        for o in await self.store.load_open_orders():
            self._index(o)
        for sid, st in self._sessions.items():
            for ev in await self.store.unreported_events(sid):
                er = ev.data.get("er")
                if er and ev.exec_id:
                    body = [(int(t), v.encode()) for t, v in er]
                    st.unreported.append((ev.data.get("msg_type", "8").encode(), body, ev.exec_id))
        for o in self.orders.values():
            self.risk.opened(o.session_id, o.account)
        for name in started:
            self._consumers.append(asyncio.create_task(self._consume(name, self.connectors[name])))
        for name in started:
            await self.reconcile(name)
        for name in started:
            self._reissue_pending(name)
        for sid, st in self._sessions.items():
            # every session is disconnected now: a promise to cancel on disconnect still holds
            if st.policy.cancel_on_disconnect in ("disconnect", "both") and any(
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

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("order task failed", exc_info=task.exception())

    def _take_id(self, counter: str) -> int:
        return self._id_blocks[counter].take()

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
        pending, st.unreported = st.unreported, []
        for msg_type, body, exec_id in pending:
            session.send(msg_type, body, now, ref=exec_id)
        if pending:
            self._request_flush(session.sid)

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

    def on_message(self, session: Session, message: Message, now: float) -> None:
        sid = str(session.sid)
        if sid not in self._sessions:
            session.business_reject(message, 4, now, text="No order routing for this session")
            return
        mt = message.msg_type
        if mt == b"D":
            h = message.header
            if h.get(97) == b"Y" or h.get(43) == b"Y":
                self._spawn(self._on_possible_resend(session, message, now))
            else:
                self._on_new_order(session, message, now)
        elif mt == b"F":
            self._on_cancel(session, message, now)
        elif mt == b"G":
            self._on_replace(session, message, now)
        elif mt == b"H":
            self._spawn(self._on_status(session, message))
        elif mt == b"AF":
            self._on_mass_status(session, message, now)
        elif mt == b"q":
            self._on_mass_cancel(session, message, now)
        else:
            session.business_reject(message, BR_UNSUPPORTED_MESSAGE_TYPE, now)

    # ---------------------------------------------------------------------------------------
    # sending

    def _request_flush(self, sid: SessionID) -> None:
        self._flush_due.add(sid)
        if not self._flush_scheduled and self._flush is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._do_flush)

    def _do_flush(self) -> None:
        self._flush_scheduled = False
        due, self._flush_due = self._flush_due, set()
        assert self._flush is not None
        for sid in due:
            self._spawn(self._flush(sid))

    def _store_and_tell(
        self,
        ev: OrderEvent,
        o: Order,
        fill: FillRecord | None,
        msg_type: bytes,
        body: list[tuple[int, bytes]] | None,
    ) -> asyncio.Future[None]:
        """Persist ``ev`` with the order as it is now (and ``fill``); when ``body`` is given,
        report it. A report to a logged-on session is stored in the same commit as the
        event (the session's write-ahead flush); otherwise the event is stored alone, with the
        report kept for the client's next logon. The future resolves after the commit."""
        st = self._sessions.get(ev.session_id)
        session = st.session if st is not None else None
        fills = (fill,) if fill is not None else ()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if body is None and self._batching is not None:
            self._batching.append((build_append((ev,), (o,), fills), future))
            return future
        if body is not None and session is not None and session.is_logged_on:
            stored = _Stored(build_append((ev,), (o,), fills), future)
            session.send(msg_type, body, self.clock(), ref=ev.exec_id, attachment=stored)
            self._request_flush(session.sid)
            return future
        if body is not None and st is not None and ev.exec_id is not None:
            ev.data["er"] = [[t, v.decode()] for t, v in body]
            if msg_type != b"8":
                ev.data["msg_type"] = msg_type.decode()
            st.unreported.append((msg_type, body, ev.exec_id))
        alone = self.store.append_now(build_append((ev,), (o,), fills))
        alone.add_done_callback(_log_store_failure)
        return alone

    async def _append_many(self, batch: list[tuple[OrderAppend, asyncio.Future[None]]]) -> None:
        try:
            await self.store.append_built(merge_appends([a for a, _ in batch]))
        finally:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _send_now(self, session: Session, msg_type: bytes, body: list[tuple[int, bytes]]) -> None:
        """A reply that is not an order event (rejects of requests, status answers)."""
        if session.is_logged_on:
            session.send(msg_type, body, self.clock())
            self._request_flush(session.sid)

    # ---------------------------------------------------------------------------------------
    # recording events

    def _record(
        self,
        o: Order,
        kind: str,
        data: dict[str, Any],
        execution: Execution | None = None,
        fill: FillRecord | None = None,
        created: bool = False,
    ) -> asyncio.Future[None] | None:
        """Apply an event now, then persist it and report it (see :meth:`_store_and_tell`).

        Returns a future resolved once it is committed (None when the event is stale)."""
        ts = time.time_ns()
        exec_id = execution.exec_id if execution is not None else None
        ev = OrderEvent(self._take_id("event"), o.order_id, o.session_id, kind, ts, data, exec_id)
        if not created:
            try:
                apply(o, ev)
            except StaleEvent as exc:
                log.debug("dropped: %s", exc)
                return None
        body = None
        if execution is not None:
            body = fixmap.execution_report(o, execution, ts, self._ts)
        if not o.is_open:
            self._forget(o)
        return self._store_and_tell(ev, o, fill, b"8", body)

    def _exec_id(self, o: Order) -> str:
        return f"{o.order_id}.{o.exec_count + 1}"

    def _index(self, o: Order) -> None:
        self.orders[o.order_id] = o
        self._map_cl(o, o.cl_ord_id)
        if o.pending is not None:
            self._map_cl(o, o.pending.cl_ord_id)
        if o.venue_client_order_id:
            self._map_coid(o, o.venue_client_order_id)

    def _map_cl(self, o: Order, cl_ord_id: str) -> None:
        key = (o.session_id, cl_ord_id)
        self._by_cl[key] = o.order_id
        self._cl_keys.setdefault(o.order_id, []).append(key)

    def _map_coid(self, o: Order, coid: str) -> None:
        key = (o.venue, coid)
        self._by_coid[key] = o.order_id
        self._coid_keys.setdefault(o.order_id, []).append(key)

    def _forget(self, o: Order) -> None:
        if self.orders.pop(o.order_id, None) is None:
            return
        for key in self._cl_keys.pop(o.order_id, ()):
            if self._by_cl.get(key) == o.order_id:
                del self._by_cl[key]
        for key in self._coid_keys.pop(o.order_id, ()):
            self._coid_filled.pop(key, None)
            if self._by_coid.get(key) == o.order_id:
                del self._by_coid[key]
        self._cancel_when_acked.discard(o.order_id)
        self._cancel_after_pending.discard(o.order_id)
        self._replace_after_cancel.pop(o.order_id, None)
        self._replacing.discard(o.order_id)
        self.risk.closed(o.session_id, o.account)

    # ---------------------------------------------------------------------------------------
    # NewOrderSingle

    async def _on_possible_resend(self, session: Session, msg: Message, now: float) -> None:
        """PossResend (97=Y), or PossDupFlag (43=Y) on a message we are told we never
        processed (a crash can lose the target sequence number but never the stored intent):
        the client may have sent this order before. An order already placed is answered with
        its status, not placed again."""
        sid = str(session.sid)
        cl = msg.get_str(11) or ""
        oid = self._by_cl.get((sid, cl))
        o = self.orders.get(oid) if oid is not None else await self.store.find_order(sid, cl)
        if o is None:
            self._on_new_order(session, msg, now)
            return
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS,
                       text="possible duplicate: this order was already received")
        self._send_now(session, b"8", fixmap.execution_report(o, ex, time.time_ns(), self._ts))

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
            reason = (fixmap.ORD_REJ_UNKNOWN_SYMBOL if "symbol" in str(exc)
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
        rules = _instrument_rules(inst, req.quantity, req.price, req.stop_price)
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
        await persisted  # write-ahead: the intent is stored before the venue hears of it
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
        if not _unacknowledged(o):
            return
        self._record(o, "rejected", {"text": text, "by": "venue"},
                     Execution(self._exec_id(o), EXEC_REJECTED,
                               text=fixmap.venue_reason_text(o.venue, reason, text),
                               ord_rej_reason=fixmap.VENUE_REASON_TO_ORD_REJ.get(
                                   reason, fixmap.ORD_REJ_OTHER)))

    def _on_accepted(self, o: Order, venue_order_id: str) -> None:
        if _unacknowledged(o):
            # also when a cancel is already pending (PendingCancel stays): the acknowledgement
            # is an event like any other, so the stored log rebuilds the venue's order id
            self._record(o, "accepted", {"venue_order_id": venue_order_id},
                         Execution(self._exec_id(o), EXEC_NEW))
        if o.order_id in self._cancel_when_acked:
            self._cancel_when_acked.discard(o.order_id)
            self._spawn(self._venue_cancel(o))

    async def _resolve_ambiguous(self, o: Order, conn: Connector) -> None:
        """Invariant 3: ask the venue by client order id until it answers."""
        waited = 0.0
        while _unacknowledged(o):
            try:
                state = await conn.query_order(o.symbol, o.venue_client_order_id)
            except VenueError as exc:
                log.warning("%s: query failed (%s); retrying", o.order_id, exc)
                state = None
                found = False
            else:
                found = True
            if state is not None:
                await self._apply_state(o, conn, state)
                return
            if found and waited >= self._ambiguous_patience:
                self._venue_rejected(o, RejectReason.OTHER,
                                     "the venue never received the order (checked by query)")
                return
            await asyncio.sleep(self._ambiguous_retry)
            waited += self._ambiguous_retry

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
        if _unacknowledged(o) and ev.venue_order_id:
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
        if applied is not None:
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

    async def _catch_up_fills(self, o: Order, conn: Connector, coid: str) -> None:
        """Apply the venue's fills of ``coid`` that ``o`` has not seen (dropped or late)."""
        for f in await conn.fills_since(o.created_ns - 1):
            if f.client_order_id == coid:
                self._on_fill(o, f)

    def _on_canceled(self, o: Order, coid: str, reason: str) -> None:
        p = o.pending
        marker = self._replace_after_cancel.get(o.order_id)
        if p is not None and p.kind == "replace" and marker is not None and marker[1] == coid:
            # cancel-then-new: the old venue order is gone; place the next one. The marker
            # goes now, so a duplicated cancel event cannot place a second one.
            del self._replace_after_cancel[o.order_id]
            self._replacing.add(o.order_id)
            self._spawn(self._replace_place(o))
            return
        if coid != o.venue_client_order_id or o.order_id in self._replacing:
            return  # an earlier venue order of this order (cancel-then-new): not the order
        cl = p.cl_ord_id if p is not None else None
        orig = p.orig_cl_ord_id if p is not None and not _unsolicited(p) else None
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

    async def _apply_state(self, o: Order, conn: Connector, state: OrderState) -> None:
        """Bring ``o`` in line with the venue's view of it (reconciliation, ambiguity)."""
        if state.venue_order_id and _unacknowledged(o) and (
            state.status is not VenueStatus.REJECTED
        ):
            self._on_accepted(o, state.venue_order_id)
        if state.filled_quantity > 0:
            await self._catch_up_fills(o, conn, state.client_order_id)
        p = o.pending
        if (p is not None and p.kind == "replace" and state.status.is_open
                and self._amends(conn, o) and _shows_amend(state, p)):
            self._amended(o, state.venue_order_id)  # the amend's event was lost
        if state.status is VenueStatus.REJECTED and _unacknowledged(o):
            self._venue_rejected(o, RejectReason.OTHER, "rejected by the venue")
        elif state.status is VenueStatus.CANCELED and o.is_open:
            self._on_canceled(o, o.venue_client_order_id, "canceled at the venue")
        elif state.status is VenueStatus.EXPIRED and o.is_open:
            self._record(o, "expired", {}, Execution(self._exec_id(o), EXEC_EXPIRED))

    async def reconcile(self, venue: str) -> None:
        """Invariant 4: compare our open orders with the venue's and apply what we missed."""
        conn = self.connectors[venue]
        ours = [o for o in self.orders.values() if o.venue == venue]
        if not ours:
            return
        try:
            at_venue = {s.client_order_id: s for s in await conn.open_orders()}
            since = min(o.created_ns for o in ours) - 1
            fills = await conn.fills_since(since)
        except VenueError as exc:
            log.warning("reconcile %s failed: %s", venue, exc)
            return
        for f in sorted(fills, key=lambda f: f.ts_ns):
            self.on_venue_event(venue, f)
        for o in list(ours):
            if not o.is_open:
                continue
            new_coid = self._amend_coid(conn, o) if (
                o.pending is not None and o.pending.kind == "replace" and self._amends(conn, o)
            ) else None
            if new_coid is not None:
                # an amend that replaces the venue order was under way: its new order, if it
                # exists, is the order now (the old one is canceled by the amend)
                st = at_venue.get(new_coid)
                if st is None:
                    try:
                        st = await conn.query_order(o.symbol, new_coid)
                    except VenueError:
                        continue
                if st is not None and st.status is not VenueStatus.REJECTED:
                    self._map_coid(o, new_coid)
                    self._amended(o, st.venue_order_id, new_coid)
            state = at_venue.get(o.venue_client_order_id)
            if state is None:
                try:
                    state = await conn.query_order(o.symbol, o.venue_client_order_id)
                except VenueError:
                    continue
            if state is None:
                if o.status is OrdStatus.PENDING_NEW:
                    self._spawn(self._resolve_ambiguous(o, conn))
                else:
                    self._on_canceled(o, o.venue_client_order_id, "not found at the venue")
                continue
            await self._apply_state(o, conn, state)

    # ---------------------------------------------------------------------------------------
    # cancel and replace

    def _find(self, sid: str, orig: str | None, order_id: str | None) -> Order | None:
        if orig is not None:
            oid = self._by_cl.get((sid, orig))
            if oid is not None:
                return self.orders.get(oid)
        if order_id is not None:
            o = self.orders.get(order_id)
            if o is not None and o.session_id == sid:
                return o
        return None

    def _cancel_reject(
        self, session: Session, req: fixmap.CancelRequest | fixmap.ReplaceRequest,
        o: Order | None, reason: bytes, text: str, replace_: bool,
    ) -> None:
        body = fixmap.cancel_reject(
            order_id=o.order_id if o is not None else "NONE", cl_ord_id=req.cl_ord_id,
            orig_cl_ord_id=req.orig_cl_ord_id,
            status=o.status if o is not None else OrdStatus.REJECTED,
            response_to_replace=replace_, reason=reason, text=text,
        )
        self._send_now(session, b"9", body)

    def _check_cancelable(
        self, session: Session, req: fixmap.CancelRequest | fixmap.ReplaceRequest, replace_: bool,
    ) -> Order | None:
        sid = str(session.sid)
        o = self._find(sid, req.orig_cl_ord_id, req.order_id)
        if o is None:
            # not open: the store tells "too late" (done) from "unknown"
            self._spawn(self._reject_closed_or_unknown(session, req, replace_))
            return None
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
    ) -> None:
        sid = str(session.sid)
        o = await self.store.find_order(sid, req.orig_cl_ord_id) if req.orig_cl_ord_id else None
        if o is None and req.order_id:
            found = await self.store.load_order(req.order_id)
            o = found if found is not None and found.session_id == sid else None
        if o is not None and not o.is_open:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_TOO_LATE,
                                f"too late: the order is {o.status.name.lower()}", replace_)
            return
        self._cancel_reject(session, req, None, fixmap.CXL_REJ_UNKNOWN_ORDER,
                            "unknown order", replace_)

    def _on_cancel(self, session: Session, msg: Message, now: float) -> None:
        req = fixmap.parse_cancel(msg)
        o = self._check_cancelable(session, req, False)
        if o is None:
            return
        orig = o.cl_ord_id
        self._record(o, "cancel_requested", {"cl_ord_id": req.cl_ord_id, "orig_cl_ord_id": orig},
                     Execution(self._exec_id(o), EXEC_PENDING_CANCEL, cl_ord_id=req.cl_ord_id,
                               orig_cl_ord_id=orig))
        self._map_cl(o, req.cl_ord_id)
        self._spawn(self._venue_cancel(o))

    async def _venue_cancel(self, o: Order) -> None:
        conn = self.connectors[o.venue]
        if o.status is OrdStatus.PENDING_NEW or (
            o.status is OrdStatus.PENDING_CANCEL and o.venue_order_id is None
        ):
            # not acknowledged yet: cancel as soon as it is
            self._cancel_when_acked.add(o.order_id)
            if o.venue_order_id is None:
                return
        try:
            await conn.cancel(o.symbol, o.venue_client_order_id)
        except VenueRejected as exc:
            if exc.reason is RejectReason.UNKNOWN_ORDER and o.venue_order_id is None:
                self._cancel_when_acked.add(o.order_id)
                return
            self._refuse_pending(o, exc.text, fixmap.VENUE_REASON_TO_CXL_REJ.get(
                exc.reason, fixmap.CXL_REJ_OTHER))
        except VenueAmbiguous as exc:
            state = await self._query_quietly(conn, o)
            if state is not None:
                await self._apply_state(o, conn, state)
                if state.status.is_open and o.status is OrdStatus.PENDING_CANCEL:
                    # the venue still has it open: the cancel did not happen
                    self._refuse_pending(o, f"{o.venue}: cancel not confirmed ({exc})",
                                         fixmap.CXL_REJ_OTHER)
        except VenueUnavailable as exc:
            self._refuse_pending(o, f"venue unavailable: {exc}", fixmap.CXL_REJ_OTHER)

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
            delay = min(delay * 2, 10.0)
        return None

    async def _query_quietly(
        self, conn: Connector, o: Order, coid: str | None = None
    ) -> OrderState | None:
        for _ in range(10):
            try:
                return await conn.query_order(o.symbol, coid or o.venue_client_order_id)
            except VenueError:
                await asyncio.sleep(self._ambiguous_retry)
        return None

    def _refuse_pending(self, o: Order, text: str, reason: bytes) -> None:
        p = o.pending
        if p is None:
            return
        is_replace = p.kind == "replace"
        kind = "replace_refused" if is_replace else "cancel_refused"
        told = not _unsolicited(p)  # a cancel the gateway started has no one to answer
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
            self._cancel_orders([o], reason="deferred cancel")

    def _on_replace(self, session: Session, msg: Message, now: float) -> None:
        try:
            req = fixmap.parse_replace(msg)
        except (Refusal, FieldValueError) as exc:
            cancel = fixmap.CancelRequest(msg.get_str(11) or "", msg.get_str(41),
                                          msg.get_str(37))
            self._cancel_reject(session, cancel, None, fixmap.CXL_REJ_OTHER, str(exc), True)
            return
        o = self._check_cancelable(session, req, True)
        if o is None:
            return
        if o.status is OrdStatus.PENDING_NEW:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                "the venue has not acknowledged the order yet", True)
            return
        qty = req.quantity if req.quantity is not None else o.quantity
        if qty <= o.cum_qty:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                f"OrderQty {qty} is not above the filled quantity {o.cum_qty}",
                                True)
            return
        if req.type is not o.type or (req.time_in_force not in (None, o.time_in_force)):
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_BROKER,
                                "only OrderQty, Price and StopPx can be replaced", True)
            return
        if o.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and req.price is None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER,
                                "Price (44) is required to replace a limit order", True)
            return
        inst = self.symbols.instrument(o.venue, o.symbol, None, None)
        rules = _instrument_rules(inst, qty, req.price, req.stop_price)
        if rules is not None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_OTHER, rules.text, True)
            return
        refused = self.risk.check_replace(
            session_id=o.session_id, account=o.account, order_type=o.type, quantity=qty,
            price=req.price if req.price is not None else o.price,
            last_price=self.connectors[o.venue].last_price(o.symbol),
        )
        if refused is not None:
            self._cancel_reject(session, req, o, fixmap.CXL_REJ_BROKER, refused.text, True)
            return
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

    def _amends(self, conn: Connector, o: Order) -> bool:
        """Whether the pending replace goes by native amend (else cancel, then new): the amend
        changes quantity and price only."""
        p = o.pending
        return conn.capabilities.amend and p is not None and (
            p.stop_price is None or p.stop_price == o.stop_price
        )

    async def _venue_replace(self, o: Order, persisted: Awaitable[None] | None) -> None:
        if persisted is not None:
            await persisted  # write-ahead: the replace is stored before the venue hears of it
        conn = self.connectors[o.venue]
        p = o.pending
        if p is None:
            return
        if self._amends(conn, o):
            new_coid = self._amend_coid(conn, o)
            if new_coid is not None:
                self._map_coid(o, new_coid)
            try:
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
                elif state is not None and state.status.is_open and _shows_amend(state, p):
                    self._amended(o, state.venue_order_id)
                else:
                    self._refuse_pending(o, f"{o.venue}: amend not confirmed ({exc})",
                                         fixmap.CXL_REJ_OTHER)
            return
        # cancel-then-new: never two live orders; the new one is placed once the old is gone
        self._replace_after_cancel[o.order_id] = (o.venue_version, o.venue_client_order_id)
        try:
            await conn.cancel(o.symbol, o.venue_client_order_id)
        except VenueRejected as exc:
            self._replace_after_cancel.pop(o.order_id, None)
            self._refuse_pending(o, f"{o.venue}: {exc.text}", fixmap.VENUE_REASON_TO_CXL_REJ.get(
                exc.reason, fixmap.CXL_REJ_OTHER))
        except (VenueAmbiguous, VenueUnavailable) as exc:
            state = await self._query_quietly(conn, o)
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

    # ---------------------------------------------------------------------------------------
    # status and mass requests

    async def _on_status(self, session: Session, msg: Message) -> None:
        sid = str(session.sid)
        cl = msg.get_str(11)
        o = self._find(sid, cl, msg.get_str(37))
        if o is None and cl:
            o = await self.store.find_order(sid, cl)
        if o is None and msg.get_str(37):
            found = await self.store.load_order(msg.get_str(37) or "")
            o = found if found is not None and found.session_id == sid else None
        if o is None:
            body: list[tuple[int, bytes]] = [
                (6, b"0"), (11, msg.get(11) or b"NONE"), (14, b"0"),
                (17, f"S{time.time_ns()}".encode()), (37, msg.get(37) or b"NONE"), (39, b"8"),
                (54, msg.get(54) or b"1"), (55, msg.get(55) or b"NONE"),
                (58, b"unknown order"), (150, EXEC_STATUS), (151, b"0"),
            ]
            self._send_now(session, b"8", body)
            return
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS)
        self._send_now(session, b"8", fixmap.execution_report(o, ex, time.time_ns(), self._ts))

    def _on_mass_status(self, session: Session, msg: Message, now: float) -> None:
        sid = str(session.sid)
        req_id = msg.get_str(584) or ""
        symbol = msg.get_str(55)
        mine = [o for o in self.orders.values() if o.session_id == sid and o.is_open
                and (symbol is None or o.symbol == symbol)]
        if not mine:
            body: list[tuple[int, bytes]] = [
                (6, b"0"), (11, b"NONE"), (14, b"0"), (17, f"S{time.time_ns()}".encode()),
                (37, b"NONE"), (39, b"8"), (54, b"1"), (55, (symbol or "NONE").encode()),
                (58, b"no open orders"), (150, EXEC_STATUS), (151, b"0"),
                (584, req_id.encode()), (911, b"0"), (912, b"Y"),
            ]
            self._send_now(session, b"8", body)
            return
        ts = time.time_ns()
        for i, o in enumerate(sorted(mine, key=lambda o: o.order_id)):
            ex = Execution(f"{o.order_id}.S{ts}", EXEC_STATUS, mass_status_req_id=req_id,
                           tot_num_reports=len(mine), last_rpt_requested=i == len(mine) - 1)
            self._send_now(session, b"8", fixmap.execution_report(o, ex, ts, self._ts))

    def _on_mass_cancel(self, session: Session, msg: Message, now: float) -> None:
        sid = str(session.sid)
        req_type = msg.get(530) or b""
        symbol = msg.get_str(55)
        report_id = f"M{self._take_id('order')}"
        cl = msg.get_str(11) or ""
        if req_type not in (b"1", b"7") or (req_type == b"1" and not symbol):
            body = fixmap.mass_cancel_report(
                cl_ord_id=cl, report_id=report_id, request_type=req_type, response=b"0",
                # MassCancelRejectReason (532): 0 not supported, 1 unknown security
                affected=0, reject_reason=b"0" if req_type != b"1" else b"1",
                text="MassCancelRequestType 1 (with Symbol) and 7 are supported",
                symbol=symbol, fixt=session.sid.is_fixt)
            self._send_now(session, b"r", body)
            return
        targets = [o for o in self.orders.values() if o.session_id == sid and o.is_open
                   and o.pending is None and (req_type == b"7" or o.symbol == symbol)]
        body = fixmap.mass_cancel_report(
            cl_ord_id=cl, report_id=report_id, request_type=req_type, response=req_type,
            affected=len(targets), reject_reason=None, text=None, symbol=symbol,
            fixt=session.sid.is_fixt)
        self._send_now(session, b"r", body)
        self._cancel_orders(targets, reason="mass cancel")

    def _cancel_orders(self, targets: list[Order], reason: str) -> None:
        by_venue: dict[str, list[Order]] = {}
        for o in targets:
            if o.pending is not None:
                # a cancel or replace of the client's is in flight: cancel once it is resolved
                # (a replaced order is live again)
                self._cancel_after_pending.add(o.order_id)
                continue
            by_venue.setdefault(o.venue, []).append(o)
        # the venue hears first (a cancel needs no write-ahead: if we die before storing the
        # request, reconciliation finds the order cancelled); the requests are then stored in
        # one append, not one per order
        for venue, orders in by_venue.items():
            self._spawn(self._cancel_at_venue(venue, orders))
        self._spawn(self._record_cancel_requests([o for os in by_venue.values() for o in os]))

    async def _record_cancel_requests(self, orders: list[Order]) -> None:
        """Runs after the venue calls have gone out (tasks start in order)."""
        self._batching = []
        try:
            for o in orders:
                if o.is_open and o.pending is None:
                    self._record(o, "cancel_requested",
                                 {"cl_ord_id": o.cl_ord_id, "orig_cl_ord_id": o.cl_ord_id}, None)
        finally:
            batch, self._batching = self._batching, None
        if batch:
            await self._append_many(batch)

    async def _cancel_at_venue(self, venue: str, orders: list[Order]) -> None:
        conn = self.connectors[venue]
        ids = {o.order_id for o in orders}
        # the bulk cancel cancels every order of the account: only when all are to go, those
        # still being placed (PendingNew) included
        everything_ours = all(o.order_id in ids for o in self.orders.values()
                              if o.venue == venue and o.is_open)
        live = [o for o in orders if o.venue_order_id is not None]
        for o in orders:
            if o.venue_order_id is None:
                self._cancel_when_acked.add(o.order_id)
        if everything_ours and conn.capabilities.bulk_cancel and len(live) > 1:
            try:
                await conn.cancel_all()
                return
            except VenueError as exc:
                log.warning("bulk cancel at %s failed (%s): cancelling one by one", venue, exc)
        await asyncio.gather(*(self._venue_cancel(o) for o in live))

    async def _cancel_on_disconnect(self, sid: str, grace: float) -> None:
        if grace > 0:
            await asyncio.sleep(grace)
        st = self._sessions.get(sid)
        if st is not None:
            st.cod_task = None
        targets = [o for o in self.orders.values() if o.session_id == sid and o.is_open]
        log.info("%s: cancel-on-disconnect: %d open orders", sid, len(targets))
        self._cancel_orders(targets, reason="cancel on disconnect")


def _instrument_rules(
    inst: Instrument, quantity: Decimal, price: Decimal | None, stop_price: Decimal | None
) -> Refusal | None:
    """The venue's filters, checked before sending so the venue never sees a malformed order."""
    if inst.lot_size > 0 and quantity % inst.lot_size != 0:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is not a multiple of the lot size "
                       f"{inst.lot_size} of {inst.symbol}")
    if quantity < inst.min_qty:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is below the minimum {inst.min_qty} of "
                       f"{inst.symbol}")
    if inst.max_qty is not None and quantity > inst.max_qty:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is above the maximum {inst.max_qty}")
    for name, px in (("Price", price), ("StopPx", stop_price)):
        if px is not None and inst.tick_size > 0 and px % inst.tick_size != 0:
            return Refusal(fixmap.ORD_REJ_OTHER,
                           f"{name} {px} is not a multiple of the tick size {inst.tick_size} "
                           f"of {inst.symbol}")
    if price is not None and inst.min_notional > 0:
        notional = price * quantity
        if notional < inst.min_notional:
            return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                           f"notional {notional} is below the minimum {inst.min_notional} of "
                           f"{inst.symbol}")
    return None


def _unacknowledged(o: Order) -> bool:
    """Open, and the venue has not acknowledged it (PendingNew, or PendingCancel before the
    acknowledgement)."""
    return o.venue_order_id is None and o.is_open


def _unsolicited(p: Pending) -> bool:
    """A cancel the gateway started (cancel-on-disconnect, mass cancel): no client ClOrdID."""
    return p.cl_ord_id == p.orig_cl_ord_id


def _shows_amend(state: OrderState, p: Pending) -> bool:
    return (p.price is None or state.price == p.price) and (
        p.quantity is None or state.quantity == p.quantity
    )


def _log_store_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("storing an order event failed", exc_info=future.exception())


def merge_appends(appends: list[OrderAppend]) -> OrderAppend:
    """Several appends as one (rows in order)."""
    return OrderAppend(
        tuple(r for a in appends for r in a.events),
        tuple(r for a in appends for r in a.orders),
        tuple(r for a in appends for r in a.fills),
    )


class _Stored:
    """An order event stored with the message that reports it (a session Send attachment)."""

    __slots__ = ("payload", "_future")

    def __init__(self, payload: OrderAppend, future: asyncio.Future[None]) -> None:
        self.payload = payload
        self._future = future

    def committed(self) -> None:
        if not self._future.done():
            self._future.set_result(None)
