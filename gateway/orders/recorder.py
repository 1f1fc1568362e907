"""Recording order events: each event is applied to its order at once (so the order of events
is the order of calls), then stored, and its owner is told once it is committed (Invariant 1).
The owner of a client order is the client, told by an ExecutionReport (or OrderCancelReject)
stored in the same commit as the event; the owner of a child order is its parent's strategy,
told as soon as the event is applied (its own events are stored after the child's).

While the store cannot take events (an outage, Invariant 8) they are kept here, in order, and
stored once it is back; their reports wait for the client's next Logon.

The drop copies of a client order's ExecutionReports (:mod:`.dropcopy`) are made here too, as
each event is recorded, and stored in its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.base import TimeInForce
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.session import Session, SessionID
from gateway.routing.router import SessionRouting
from gateway.store.errors import StoreUnavailable
from gateway.store.records import FillRecord, OrderAppend
from gateway.store.rows import build_append, copy_row

from .benchmarks import Benchmarks
from .book import OrderBook
from .dropcopy import Copy, DropCopies
from .fixmap import Execution, Report
from .ids import IdBlocks
from .model import Order, OrderEvent, StaleEvent, apply, order_from_json, order_to_json
from .ports import OrderStorePort
from .tasks import Tasks

log = logging.getLogger("fixgw.orders")

Told = tuple[bytes, list[tuple[int, bytes]], str]
"""A report as sent: MsgType, body, ExecID."""


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
class SessionState:
    """A session with order routing, as the order path sees it."""

    policy: SessionPolicy
    session: Session | None = None
    """While logged on."""
    unreported: list[Told] = field(default_factory=list)
    """Reports the client was not told yet, in order (sent at its next Logon)."""
    cod_override: str | None = None
    cod_task: asyncio.Task[None] | None = None


ChildEvent = Callable[[Order, Order, OrderEvent], None]
"""(parent, child, event): an event applied to a child order, for its parent's strategy."""


def _no_parent(parent: Order, child: Order, ev: OrderEvent) -> None:
    return None


def _no_list(o: Order, ev: OrderEvent) -> None:
    return None


class Recorder:
    def __init__(
        self,
        store: OrderStorePort,
        book: OrderBook,
        sessions: dict[str, SessionState],
        tasks: Tasks,
        *,
        clock: Callable[[], float],
        timestamp_precision: int,
        closed: Callable[[Order], None],
        copies: DropCopies | None = None,
    ) -> None:
        self.store = store
        self.copies = copies
        """The drop copy sessions, told of every ExecutionReport recorded (None: none)."""
        self.benchmarks: Benchmarks | None = None
        """What a client order's arrival and end record of the market (``fixgw report``)."""
        self.book = book
        self.sessions = sessions
        self.clock = clock
        self.ts = TimestampFormatter(timestamp_precision)
        self._tasks = tasks
        self._closed = closed
        """A client order is over (it leaves the book)."""
        self.child_event: ChildEvent = _no_parent
        """Who hears of the events of child orders (the strategies, see :mod:`.children`)."""
        self.list_event: Callable[[Order, OrderEvent], None] = _no_list
        """Who hears of the events of the orders of lists once they are recorded (and their
        reports queued): :mod:`.lists`."""
        self._ids = {c: IdBlocks(store.reserve, c, give_back=store.release)
                     for c in ("order", "event")}
        self._flush: Callable[[SessionID], Coroutine[Any, Any, None]] | None = None
        self._flush_due: set[SessionID] = set()
        """Sessions whose flush task is spawned and has not started yet (it takes every send
        queued until it starts)."""
        self._flush_unbound: set[SessionID] = set()
        """Sessions asked to flush before :meth:`bind` (flushed at the first request after)."""
        self._batching: list[tuple[OrderAppend, asyncio.Future[None]]] | None = None
        self._deferred: list[tuple[OrderAppend, asyncio.Future[None] | None]] = []
        """Order events the store could not take (it was down), in order, each with the future
        of whoever waits for its commit: stored once it is back (:meth:`store_back`); their
        reports wait in the sessions' ``unreported``."""
        self._draining: asyncio.Task[None] | None = None
        self._drain_lock = asyncio.Lock()
        self._replay_due: asyncio.Task[None] | None = None
        self._carry: list[OrderAppend] = []
        self.timing: Callable[[str, str, float], None] | None = None
        """Told ("report", venue, seconds) from an event recorded to its ExecutionReport
        committed (and handed to the socket next): the metrics."""
        self.fill_listeners: list[Callable[[Order, FillRecord], None]] = []
        """Told of every fill as it is applied to its order (positions count them)."""
        self._carried: asyncio.Future[None] | None = None
        """The future of the commit that took the carried rows (record() returns it)."""
        """The future of the last event stored (a child's event carried into its parent's
        commit resolves with it)."""
        """A child's event whose parent's strategy is being told of it: stored in the same
        commit as the first event the strategy records on the parent (a parent's fill is
        never lost between its child's commit and its own)."""

    async def start(self) -> None:
        for blocks in self._ids.values():
            await blocks.start()

    async def follow_other_nodes(self) -> None:
        """Orders taken over from another node: their next events get ids above every id that
        node may have given them (:meth:`.ids.IdBlocks.skip_ahead`)."""
        await self._ids["event"].skip_ahead()

    async def release_ids(self) -> None:
        """A clean stop: the ids reserved and never used are given back, so the next start
        goes on from the last one used (:mod:`.ids`)."""
        for blocks in self._ids.values():
            try:
                if not await blocks.release():
                    log.info("%s ids reserved by this gateway stay skipped (another node "
                             "reserved after them)", blocks.counter)
            except Exception as exc:  # the store is down, or this node was fenced
                log.warning("the unused %s ids could not be given back (%s): the next start "
                            "skips them", blocks.counter, exc)

    def bind(self, flush: Callable[[SessionID], Coroutine[Any, Any, None]]) -> None:
        """How to make a session write what was queued on it (the acceptor's flush)."""
        self._flush = flush

    def take_id(self, counter: str) -> int:
        return self._ids[counter].take()

    @staticmethod
    def exec_id(o: Order) -> str:
        """The ExecID of the next report about ``o``."""
        return f"{o.order_id}.{o.exec_count + 1}"

    @property
    def holding(self) -> bool:
        """Events the store could not take yet are held here."""
        return bool(self._deferred)

    # ---------------------------------------------------------------------------------------
    # recording

    def created(self, o: Order, execution: Execution | None = None) -> asyncio.Future[None]:
        """Record a new order (the ``created`` event carries it as it is now); reported when
        ``execution`` is given. The future resolves once it is committed."""
        snapshot = order_to_json(o)
        exec_id = execution.exec_id if execution is not None else None
        data: dict[str, Any] = {"order": snapshot}
        if self.benchmarks is not None and o.parent_id is None:
            arrival = self.benchmarks.arrival(o)
            if arrival is not None:
                data["arrival"] = arrival
        ev = OrderEvent(self.take_id("event"), o.order_id, o.session_id, "created",
                        o.created_ns, data, exec_id)
        o.last_event_id = ev.event_id
        if exec_id is not None:
            o.exec_count += 1
        told = None if execution is None else execution.message(o, ev.ts_ns, self.ts)
        if log.isEnabledFor(logging.DEBUG):  # (its arguments cost: not made for nothing)
            log.debug("%s: order %s (ClOrdID %s) created at %s -> %s: %s %s %s @ %s",
                      o.session_id, o.order_id, o.cl_ord_id, o.venue, o.status.name,
                      o.side.name.lower(), o.quantity, o.symbol, o.price or "market")
        return self._store_and_tell(ev, o, None, told)

    def record(
        self,
        o: Order,
        kind: str,
        data: dict[str, Any],
        report: Report | None = None,
        fill: FillRecord | None = None,
    ) -> asyncio.Future[None] | None:
        """Apply an event now, then store it and tell its owner (module docstring); a report
        about a child order is not sent. Returns a future resolved once it is committed (None
        when the event is stale: it does not apply to the order, and is dropped)."""
        ts = time.time_ns()
        child = o.parent_id is not None
        exec_id = report.exec_id if report is not None and not child else None
        ev = OrderEvent(self.take_id("event"), o.order_id, o.session_id, kind, ts, data, exec_id)
        was_open = o.is_open
        try:
            apply(o, ev)
        except StaleEvent as exc:
            log.debug("dropped: %s", exc)
            return None
        if was_open and not o.is_open and not child and self.benchmarks is not None:
            tape = self.benchmarks.end(o)
            if tape is not None:
                data["tape"] = tape  # (in the event's data: stored with it)
        if log.isEnabledFor(logging.DEBUG):  # one line per lifecycle event
            log.debug("%s: order %s (ClOrdID %s) %s at %s -> %s%s", o.session_id, o.order_id,
                      o.cl_ord_id, kind, o.venue, o.status.name,
                      f" {data}" if data else "")
        if fill is not None:
            for listener in self.fill_listeners:
                listener(o, fill)
        told = None
        if report is not None and exec_id is not None:
            told = report.message(o, ts, self.ts)
        if not o.is_open and self.book.remove(o) and not child:
            self._closed(o)
        if not child:
            stored = self._store_and_tell(ev, o, fill, told)
            timing = self.timing
            if timing is not None and told is not None:
                t0 = time.monotonic()
                stored.add_done_callback(
                    lambda _f: timing("report", o.venue, time.monotonic() - t0))
            if o.list_id is not None:
                self.list_event(o, ev)
            return stored
        parent = self.book.orders.get(o.parent_id or "")
        if parent is None:
            log.error("%s: event %s of a child order whose parent %s is not open here",
                      o.order_id, kind, o.parent_id)
            return self._store_and_tell(ev, o, fill, None)
        carried = build_append((ev,), (o,), (fill,) if fill is not None else ())
        outer, self._carry = self._carry, [carried]
        outer_future, self._carried = self._carried, None
        try:
            self.child_event(parent, o, ev)
        finally:
            # rows the strategy did not take with an event of its own (it recorded nothing,
            # or it failed) are stored alone: a child's event is never lost
            left, self._carry = self._carry, outer
            took = self._carried_now()  # (what the strategy's own event set, if any)
            self._carried = outer_future
            if left:
                took = self._store_built(left[0])
        return took

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Events recorded inside (without a report) are stored in one append after it."""
        self._batching = []
        try:
            yield
        finally:
            batch = self._batching_now()
            self._batching = None
        if batch:
            self._tasks.spawn(self._append_many(batch))

    # (Reads of an attribute that a call may have set since this function set it: mypy narrows
    # ``self._carried = None`` to None for the rest of the function, and mypyc, compiling from
    # those types, would check that the value read after the call is None -- a TypeError when
    # the call set it. A method's result has the attribute's declared type.)

    def _carried_now(self) -> asyncio.Future[None] | None:
        return self._carried

    def _batching_now(self) -> list[tuple[OrderAppend, asyncio.Future[None]]] | None:
        return self._batching

    def _store_and_tell(
        self,
        ev: OrderEvent,
        o: Order,
        fill: FillRecord | None,
        told: tuple[bytes, list[tuple[int, bytes]]] | None,
    ) -> asyncio.Future[None]:
        """Store ``ev`` with the order as it is now (and ``fill``); send ``told`` when given.
        A report to a logged-on session is stored in the same commit as the event (the
        session's write-ahead flush); otherwise the event is stored alone, with the report
        kept for the client's next logon. The future resolves after the commit.

        While events the store could not take are waiting, a new one waits behind them (the
        log stays in the order of events)."""
        st = self.sessions.get(ev.session_id)
        session = st.session if st is not None else None
        copies = self._copies(ev, o, told)
        append = build_append((ev,), (o,), (fill,) if fill is not None else (),
                              [c.record for c in copies] if copies else ())
        if told is None and not self._carry and self._batching is None:
            # an event no report goes with (an order's intent): the caller waits on the
            # store's own future, one turn of the event loop sooner than on a future of ours
            return self._store_built(append)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if copies:
            assert self.copies is not None
            self.copies.track(copies, future)
        if self._carry:  # a child's event goes with its parent's first
            append = merge_appends([*self._carry, append])
            self._carry = []
            self._carried = future
        if told is None and self._batching is not None:
            self._batching.append((append, future))
            return future
        if (told is not None and session is not None and session.is_logged_on
                and not self._deferred):
            msg_type, body = told
            stored = _Stored(append, future,
                             functools.partial(self._unsent, ev, msg_type, body))
            session.send(msg_type, body, self.clock(), ref=ev.exec_id, attachment=stored)
            self._request_flush(session.sid)
            return future
        if told is not None and st is not None and ev.exec_id is not None:
            self._keep_report(st, ev, *told)
            if session is not None and session.is_logged_on:
                self._request_replay()
            # the report is kept in the event's data: its row is made again
            append = replace(append,
                             events=append.events[:-1] + build_append((ev,), ()).events)
        return self._store_built(append, future)

    def _copies(
        self, ev: OrderEvent, o: Order, told: tuple[bytes, list[tuple[int, bytes]]] | None
    ) -> Sequence[Copy]:
        """The drop copies of the ExecutionReport ``told`` of ``ev``."""
        if (told is None or self.copies is None or ev.exec_id is None or told[0] != b"8"
                or not self.copies.copies_of(ev.session_id)):
            return ()
        return self.copies.make(ev.session_id, o.account, ev.event_id, ev.exec_id, told[1],
                                ev.ts_ns)

    def _store_built(
        self, append: OrderAppend, future: asyncio.Future[None] | None = None
    ) -> asyncio.Future[None]:
        """Store rows no report goes with (behind those kept while the store was down). Without
        ``future``, the store's own future is returned: it resolves in the turn of the event loop
        the commit is told in, and rows it fails for are kept (:meth:`_kept_if_failed`, called
        before any waiter of it wakes)."""
        if self._deferred:
            if future is None:
                future = asyncio.get_running_loop().create_future()
            self._defer(append, future)
            return future
        alone = self.store.append_now(append)
        if future is None:
            alone.add_done_callback(functools.partial(self._kept_if_failed, append))
            return alone
        alone.add_done_callback(functools.partial(self._stored_alone, append, future))
        return future

    @staticmethod
    def _keep_report(
        st: SessionState, ev: OrderEvent, msg_type: bytes, body: list[tuple[int, bytes]]
    ) -> None:
        """Keep the report for the session's next Logon, and in the event (a restart finds it
        there, unreported)."""
        assert ev.exec_id is not None
        ev.data["er"] = [[t, v.decode()] for t, v in body]
        if msg_type != b"8":
            ev.data["msg_type"] = msg_type.decode()
        st.unreported.append((msg_type, body, ev.exec_id))

    def _unsent(
        self, ev: OrderEvent, msg_type: bytes, body: list[tuple[int, bytes]],
        stored: _Stored, exc: BaseException,
    ) -> None:
        """A report and its event the store could not take (the session's commit failed):
        the report waits for the next Logon, the event for the store (Invariant 8)."""
        st = self.sessions.get(ev.session_id)
        if st is not None and ev.exec_id is not None:
            self._keep_report(st, ev, msg_type, body)
        p = stored.payload
        # the event's row again (it now keeps the report); a child's carried before it
        self._defer(replace(p, events=p.events[:-1] + build_append((ev,), ()).events))
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
        _fail(future, exc)

    def _kept_if_failed(self, append: OrderAppend, done: asyncio.Future[None]) -> None:
        """The store's future of rows stored alone is done: rows it failed for are kept for
        when the store is back (as :meth:`_stored_alone`; a future its waiter cancelled is
        let be: the commit may have happened)."""
        if not done.cancelled() and done.exception() is not None:
            self._defer(append)

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

    # ---------------------------------------------------------------------------------------
    # telling the client

    def send_now(self, session: Session, msg_type: bytes, body: list[tuple[int, bytes]]) -> bool:
        """A reply that is not an order event (rejects of requests, status answers); False
        when the session is no longer logged on to take it."""
        if not session.send_if_logged_on(msg_type, body, self.clock()):
            return False
        self._request_flush(session.sid)
        return True

    def rejected_unstored(
        self, session: Session, body: list[tuple[int, bytes]], exec_id: str,
        account: str | None,
    ) -> bool:
        """An ExecutionReport Rejected of an order that could not even be described (nothing
        stored of it): sent as :meth:`send_now`, and copied to the drop copies (their copies
        stored alone, ordered among the events by an event id of their own)."""
        if not self.send_now(session, b"8", body):
            return False
        sid = str(session.sid)
        if self.copies is not None and self.copies.copies_of(sid):
            copies = self.copies.make(sid, account, self.take_id("event"), exec_id, body,
                                      time.time_ns())
            if copies:
                stored = self._store_built(
                    OrderAppend((), (), (), tuple(copy_row(c.record) for c in copies)))
                self.copies.track(copies, stored)
        return True

    def _request_flush(self, sid: SessionID) -> None:
        """Make the session write what is queued on it: its flush task is spawned at once and
        runs in the next turn of the event loop, so whatever else is queued on the session in
        this turn (the fill that came with the venue's acknowledgement) goes in the same commit
        and write. While that task has not started, a new request adds nothing."""
        if sid in self._flush_due:
            return
        if self._flush is None:
            self._flush_unbound.add(sid)
            return
        if self._flush_unbound:
            early, self._flush_unbound = self._flush_unbound, set()
            for s in early - {sid}:
                self._flush_due.add(s)
                self._tasks.spawn(self._flush_one(s))
        self._flush_due.add(sid)
        self._tasks.spawn(self._flush_one(sid))

    async def _flush_one(self, sid: SessionID) -> None:
        self._flush_due.discard(sid)  # sends queued from now on need a flush of their own
        assert self._flush is not None
        await self._flush(sid)

    def replay(self, st: SessionState, session: Session, now: float) -> None:
        """Send the reports the client was not told, in order. One the session cannot store
        (the store failed) goes back to the front of the list."""
        pending, st.unreported = st.unreported, []
        returned = [0]
        for msg_type, body, exec_id in pending:
            session.send(msg_type, body, now, ref=exec_id,
                         attachment=_Replayed(st, (msg_type, body, exec_id), returned))
        if pending:
            self._request_flush(session.sid)

    def _request_replay(self) -> None:
        """Reports kept while a session is logged on (behind events the store had not taken
        yet): told once those are stored."""
        if self._replay_due is None:
            self._replay_due = self._tasks.spawn(self._replay_when_stored())

    async def _replay_when_stored(self) -> None:
        try:
            await self._drain()
        except StoreUnavailable:
            return  # down again: the sessions end, the reports wait for the next Logon
        finally:
            self._replay_due = None
        for st in self.sessions.values():
            if st.session is not None and st.session.is_logged_on and st.unreported:
                self.replay(st, st.session, self.clock())

    async def untold(self, sid: str) -> list[Told]:
        """What session ``sid`` was not told, as the store has it."""
        untold: list[Told] = []
        for ev in await self.store.unreported_events(sid):
            er = ev.data.get("er")
            if er and ev.exec_id:
                body = [(int(t), v.encode()) for t, v in er]
                untold.append((ev.data.get("msg_type", "8").encode(), body, ev.exec_id))
        return untold

    async def stored_order(
        self, sid: str, cl_ord_id: str | None = None, order_id: str | None = None,
        *, past: bool = False,
    ) -> Order | None:
        """The client order of session ``sid`` as the store has it (one no longer open, or
        loaded by another node): by ClOrdID (with ``past``, also one its chain had), else by
        OrderID."""
        snapshot = await self.store.find_order(sid, cl_ord_id) if cl_ord_id else None
        if snapshot is None and cl_ord_id and past:
            snapshot = await self.store.find_order_by_past_cl(sid, cl_ord_id)
        if snapshot is None and order_id:
            snapshot = await self.store.load_order(order_id)
            if snapshot is not None and snapshot.get("session_id") != sid:
                snapshot = None
        if snapshot is None or snapshot.get("parent_id") is not None:
            return None
        return order_from_json(snapshot)

    # ---------------------------------------------------------------------------------------
    # events the store could not take

    def _defer(self, append: OrderAppend, future: asyncio.Future[None] | None = None) -> None:
        if not self._deferred:
            log.warning("order events the store could not take are kept in memory until it "
                        "takes them")
        self._deferred.append((append, future))
        if getattr(self.store, "available", True) and self._draining is None:
            self._draining = self._tasks.spawn(self._drain_quietly())

    async def _drain_quietly(self) -> None:
        try:
            await self._drain()
        except StoreUnavailable:
            pass  # the store's "available" again drains them (store_back)

    async def _drain(self) -> None:
        """Store the kept events, in order, first all at once, else one by one (a request
        the store refuses for itself is dropped, logged)."""
        async with self._drain_lock:
            try:
                await self._drain_locked()
            finally:
                self._draining = None

    async def _drain_locked(self) -> None:
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
                    _fail(f, exc)
                continue
            if f is not None and not f.done():
                f.set_result(None)

    async def store_back(self, serving: set[str]) -> None:
        """The store takes writes again: store the order events kept meanwhile, in order, then
        take what each session of ``serving`` was not told from the store (the truth of what
        was told: a commit whose answer was lost may have stored a report after all)."""
        await self._drain()
        for sid in sorted(serving):
            self.sessions[sid].unreported = await self.untold(sid)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    """Fail ``future`` with ``exc``, marked as seen (its waiter, if any, handles it; none need
    be): the futures of order events never log "exception was never retrieved". (Marked here
    rather than by a done callback on every future: that is a callback per event.)"""
    future.set_exception(exc)
    future.exception()


def merge_appends(appends: list[OrderAppend]) -> OrderAppend:
    """Several appends as one (rows in order)."""
    return OrderAppend(
        tuple(r for a in appends for r in a.events),
        tuple(r for a in appends for r in a.orders),
        tuple(r for a in appends for r in a.fills),
        tuple(r for a in appends for r in a.copies),
        tuple(r for a in appends for r in a.delivered),
    )


class _Replayed:
    """A report the client was not told, sent at its Logon: when the session cannot store it
    (the store failed), it goes back to the front of the session's list."""

    __slots__ = ("_st", "_report", "_returned")
    payload = OrderAppend((), (), ())

    def __init__(self, st: SessionState, report: Told, returned: list[int]) -> None:
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
            _fail(self._future, exc)
