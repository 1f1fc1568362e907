"""The order manager's state and the plumbing every part of it shares: tasks, id blocks,
indexes, and recording an event (apply it now, persist it, report it once committed).

:class:`OrderCore` is the base of :class:`~gateway.orders.manager.OrderManager` and of its
parts (:mod:`.replace`, :mod:`.recovery`, :mod:`.mass`); what one part calls in another is
declared here for the type checker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.base import (
    Connector,
    OrderFilled,
    OrderState,
    RejectReason,
    TimeInForce,
    VenueEvent,
)
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.session import Session, SessionID
from gateway.risk.checks import RiskEngine
from gateway.routing.router import SessionRouting, SymbolMap
from gateway.store.errors import StoreUnavailable
from gateway.store.orders import FillRecord, OrderAppend, build_append

from . import fixmap
from .fixmap import Execution
from .ids import IdBlocks
from .model import Order, OrderEvent, StaleEvent, apply, order_from_json
from .ports import OrderStorePort

log = logging.getLogger("fixgw.orders")

REFUSED_KEPT = 10_000
"""Refused cancel and replace ClOrdIDs remembered to recognise a PossDup resend of one."""

AMBIGUOUS_RETRY_CAP_S = 10.0
"""Queries about an unanswered cancel or replace, and a cancel the gateway promised that the
venue cannot take, back off up to this many seconds apart."""


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


class OrderCore:
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
        self._ambiguous_retry_cap = AMBIGUOUS_RETRY_CAP_S
        """The longest wait between two queries about an unanswered cancel or replace."""
        self._ambiguous_patience = ambiguous_patience
        self._venue_start_timeout = venue_start_timeout
        self._venue_retry_cap = venue_retry_cap
        self.down: dict[str, str] = {}
        """Venues that could not be started yet -> why; new orders for them are refused."""
        self._consumers: list[asyncio.Task[None]] = []
        self._replace_after_cancel: dict[str, str] = {}
        """Cancel-then-new: the client order id of the venue order whose cancel places the
        next one."""
        self._replacing: set[str] = set()
        """Cancel-then-new: the old venue order is canceled, the new one being placed."""
        self._cancel_why: dict[str, str] = {}
        """OrderID -> why the gateway itself is cancelling it (cancel-on-disconnect, mass
        cancel, kill switch): the Text (58) of its Canceled report."""
        self._cancel_after_pending: set[str] = set()
        """Orders to cancel (cancel-on-disconnect, mass cancel) once their pending cancel or
        replace is resolved."""
        self.venue_gate: Callable[[], Awaitable[None]] = _open_gate
        """Awaited before every venue call: returns while this node may trade (its lease
        runs), raises once another node has taken its place (gateway.cluster)."""
        self._configured_kills = dict(self.risk.killed)
        """Kill switches engaged by the configuration (they hold whatever the store says)."""
        self.venues_shared: Callable[[], bool] = lambda: False
        """Whether another gateway node may trade the same venue accounts now (then a venue's
        bulk cancel, which cancels every order of the account, is never used)."""
        self._refused_cl: dict[tuple[str, str], None] = {}
        """ClOrdIDs of cancels and replaces refused lately (see _remember_refused)."""
        self._deferred: list[tuple[OrderAppend, asyncio.Future[None] | None]] = []
        """Order events the store could not take (it was down), in order, each with the future
        of whoever waits for its commit: stored once it is back (:meth:`store_back`); their
        reports wait in the sessions' ``unreported``."""
        self._draining: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._replay_due: asyncio.Task[None] | None = None
        self._serving: set[str] = set(policies)
        """The sessions this node serves (all, unless another node shares the store)."""

    if TYPE_CHECKING:
        # what the parts call in one another (defined in manager, replace, recovery, mass)
        def on_venue_event(self, venue: str, ev: VenueEvent) -> None: ...
        def _on_accepted(self, o: Order, venue_order_id: str) -> None: ...
        def _on_fill(self, o: Order, ev: OrderFilled) -> None: ...
        def _venue_rejected(self, o: Order, reason: RejectReason, text: str) -> None: ...
        def _on_canceled(self, o: Order, coid: str, reason: str) -> None: ...
        def _amended(
            self, o: Order, venue_order_id: str, new_coid: str | None = None
        ) -> None: ...
        def _amends(self, conn: Connector, o: Order) -> bool: ...
        def _amend_coid(self, conn: Connector, o: Order) -> str | None: ...
        async def _venue_cancel(self, o: Order) -> None: ...
        async def _venue_replace(self, o: Order, persisted: Awaitable[None] | None) -> None: ...
        async def _apply_state(self, o: Order, conn: Connector, state: OrderState) -> None: ...
        async def _catch_up_fills(self, o: Order, conn: Connector, coid: str) -> None: ...
        def _cancel_orders(self, targets: list[Order], reason: str) -> None: ...

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
        report kept for the client's next logon. The future resolves after the commit.

        While events the store could not take are waiting (:attr:`_deferred`), a new one
        waits behind them (the log stays in the order of events)."""
        st = self._sessions.get(ev.session_id)
        session = st.session if st is not None else None
        fills = (fill,) if fill is not None else ()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        if body is None and self._batching is not None:
            self._batching.append((build_append((ev,), (o,), fills), future))
            return future
        if (body is not None and session is not None and session.is_logged_on
                and not self._deferred):
            stored = _Stored(build_append((ev,), (o,), fills), future,
                             functools.partial(self._unsent, ev, msg_type, body))
            session.send(msg_type, body, self.clock(), ref=ev.exec_id, attachment=stored)
            self._request_flush(session.sid)
            return future
        if body is not None and st is not None and ev.exec_id is not None:
            self._keep_report(st, ev, msg_type, body)
            if session is not None and session.is_logged_on:
                self._request_replay(st)
        append = build_append((ev,), (o,), fills)
        if self._deferred:
            self._defer(append, future)
            return future
        alone = self.store.append_now(append)
        alone.add_done_callback(functools.partial(self._stored_alone, append, future))
        return future

    @staticmethod
    def _keep_report(
        st: _SessionState, ev: OrderEvent, msg_type: bytes, body: list[tuple[int, bytes]]
    ) -> None:
        """Keep the report for the session's next Logon, and in the event (a restart finds it
        there, unreported)."""
        assert ev.exec_id is not None
        ev.data["er"] = [[t, v.decode()] for t, v in body]
        if msg_type != b"8":
            ev.data["msg_type"] = msg_type.decode()
        st.unreported.append((msg_type, body, ev.exec_id))

    def _request_replay(self, st: _SessionState) -> None:
        """Reports kept while the session is logged on (behind events the store had not taken
        yet): told once those are stored."""
        if st.session is not None and self._replay_due is None:
            self._replay_due = self._spawn(self._replay_when_stored())

    async def _replay_when_stored(self) -> None:
        try:
            await self._drain()
        except StoreUnavailable:
            return  # down again: the sessions end, the reports wait for the next Logon
        finally:
            self._replay_due = None
        for st in self._sessions.values():
            if st.session is not None and st.session.is_logged_on and st.unreported:
                self._replay(st, st.session, self.clock())

    def _replay(self, st: _SessionState, session: Session, now: float) -> None:
        """Send the reports the client was not told, in order. One the session cannot store
        (the store failed) goes back to the front of the list."""
        pending, st.unreported = st.unreported, []
        returned = [0]
        for msg_type, body, exec_id in pending:
            session.send(msg_type, body, now, ref=exec_id,
                         attachment=_Replayed(st, (msg_type, body, exec_id), returned))
        if pending:
            self._request_flush(session.sid)

    def _unsent(
        self, ev: OrderEvent, msg_type: bytes, body: list[tuple[int, bytes]],
        stored: _Stored, exc: BaseException,
    ) -> None:
        """A report and its event the store could not take (the session's commit failed):
        the report waits for the next Logon, the event for the store (Invariant 8)."""
        st = self._sessions.get(ev.session_id)
        if st is not None and ev.exec_id is not None:
            self._keep_report(st, ev, msg_type, body)
        p = stored.payload
        self._defer(OrderAppend(build_append((ev,), ()).events, p.orders, p.fills))
        stored.fail(exc)

    def _stored_alone(
        self, append: OrderAppend, future: asyncio.Future[None], done: asyncio.Future[None]
    ) -> None:
        if future.done():
            return
        exc = None if done.cancelled() else done.exception()
        if exc is None:
            future.set_result(None)
            return
        # kept for when the store is back (a request the store refused for itself is tried
        # again then, and dropped, logged, if it still is); the waiter learns it failed now
        self._defer(append)
        future.set_exception(exc)

    def _defer(self, append: OrderAppend, future: asyncio.Future[None] | None = None) -> None:
        if not self._deferred:
            log.warning("order events the store could not take are kept in memory until it "
                        "takes them")
        self._deferred.append((append, future))
        if getattr(self.store, "available", True) and self._draining is None:
            self._draining = self._spawn(self._drain_quietly())

    async def _drain_quietly(self) -> None:
        try:
            await self._drain()
        except StoreUnavailable:
            pass  # the store's "available" again drains them (store_back)

    async def _drain(self) -> None:
        """Store the kept events, in order, first all at once, else one by one (a request
        the store refuses for itself is dropped, logged)."""
        async with self._drain_lock:
            await self._drain_locked()

    async def _drain_locked(self) -> None:
        try:
            while self._deferred:
                batch = list(self._deferred)
                try:
                    await self.store.append_built(merge_appends([a for a, _ in batch]))
                except StoreUnavailable:
                    raise
                except Exception:
                    await self._drain_one_by_one(batch)
                else:
                    for _, f in batch:
                        if f is not None and not f.done():
                            f.set_result(None)
                del self._deferred[: len(batch)]
                log.warning("stored %d order events kept while the store could not take them",
                            len(batch))
        finally:
            self._draining = None

    async def _drain_one_by_one(
        self, batch: list[tuple[OrderAppend, asyncio.Future[None] | None]]
    ) -> None:
        for i, (append, f) in enumerate(batch):
            try:
                await self.store.append_built(append)
            except StoreUnavailable:
                del self._deferred[:i]
                raise
            except Exception as exc:
                log.error("an order event the store refuses is dropped: %s (%s)", exc,
                          append.events[:1])
                if f is not None and not f.done():
                    f.set_exception(exc)
                continue
            if f is not None and not f.done():
                f.set_result(None)

    async def store_back(self) -> None:
        """The store takes writes again: store the order events kept meanwhile, in order, then
        take what each session was not told from the store (the truth of what was told: a
        commit whose answer was lost may have stored a report after all). Runs before Logons
        are accepted again."""
        await self._drain()
        for sid in sorted(self._serving):
            st = self._sessions[sid]
            st.unreported = await self._untold(sid)

    async def _untold(self, sid: str) -> list[tuple[bytes, list[tuple[int, bytes]], str]]:
        untold: list[tuple[bytes, list[tuple[int, bytes]], str]] = []
        for ev in await self.store.unreported_events(sid):
            er = ev.data.get("er")
            if er and ev.exec_id:
                body = [(int(t), v.encode()) for t, v in er]
                untold.append((ev.data.get("msg_type", "8").encode(), body, ev.exec_id))
        return untold

    async def _append_many(self, batch: list[tuple[OrderAppend, asyncio.Future[None]]]) -> None:
        merged = merge_appends([a for a, _ in batch])
        try:
            if self._deferred:
                self._defer(merged)
            else:
                await self.store.append_built(merged)
        except Exception:
            self._defer(merged)
        finally:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    def _send_now(self, session: Session, msg_type: bytes, body: list[tuple[int, bytes]]) -> bool:
        """A reply that is not an order event (rejects of requests, status answers); False
        when the session is no longer logged on to take it."""
        if not session.is_logged_on:
            return False
        session.send(msg_type, body, self.clock())
        self._request_flush(session.sid)
        return True

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

    def _remember_refused(self, sid: str, cl_ord_id: str) -> None:
        """A cancel or replace refused: its ClOrdID is free again for the order, but a PossDup
        resend of the same request (its sequence number taken back by a store outage) is not
        a new one. The last :data:`REFUSED_KEPT` are remembered."""
        self._refused_cl[(sid, cl_ord_id)] = None
        if len(self._refused_cl) > REFUSED_KEPT:
            del self._refused_cl[next(iter(self._refused_cl))]

    async def _stored_order(
        self, sid: str, cl_ord_id: str | None = None, order_id: str | None = None
    ) -> Order | None:
        """The order of session ``sid`` as the store has it (one no longer open, or loaded by
        another node): by ClOrdID, else by OrderID."""
        snapshot = await self.store.find_order(sid, cl_ord_id) if cl_ord_id else None
        if snapshot is None and order_id:
            snapshot = await self.store.load_order(order_id)
            if snapshot is not None and snapshot.get("session_id") != sid:
                snapshot = None
        return None if snapshot is None else order_from_json(snapshot)

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
        self._cancel_why.pop(o.order_id, None)
        self._replace_after_cancel.pop(o.order_id, None)
        self._replacing.discard(o.order_id)
        self.risk.closed(o.session_id, o.account)


async def _open_gate() -> None:
    return None


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a failure as seen (its waiter, if any, handles it; none need be)."""
    if not future.cancelled():
        future.exception()


def merge_appends(appends: list[OrderAppend]) -> OrderAppend:
    """Several appends as one (rows in order)."""
    return OrderAppend(
        tuple(r for a in appends for r in a.events),
        tuple(r for a in appends for r in a.orders),
        tuple(r for a in appends for r in a.fills),
    )


class _Replayed:
    """A report the client was not told, sent at its Logon: when the session cannot store it
    (the store failed), it goes back to the front of the session's list."""

    __slots__ = ("_st", "_report", "_returned")
    payload = OrderAppend((), (), ())

    def __init__(
        self, st: _SessionState, report: tuple[bytes, list[tuple[int, bytes]], str],
        returned: list[int],
    ) -> None:
        self._st = st
        self._report = report
        self._returned = returned
        """How many of this replay's reports went back so far (they go back in order)."""

    def committed(self) -> None:
        return None

    def failed(self, exc: BaseException) -> None:
        self._st.unreported.insert(self._returned[0], self._report)
        self._returned[0] += 1


class _Stored:
    """An order event stored with the message that reports it (a session Send attachment)."""

    __slots__ = ("payload", "_future", "_on_failure")

    def __init__(
        self, payload: OrderAppend, future: asyncio.Future[None],
        on_failure: Callable[[_Stored, BaseException], None],
    ) -> None:
        self.payload = payload
        self._future = future
        self._on_failure = on_failure

    def committed(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def failed(self, exc: BaseException) -> None:
        self._on_failure(self, exc)

    def fail(self, exc: BaseException) -> None:
        if not self._future.done():
            self._future.set_exception(exc)
