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

It is made of parts, each depending only on those before it:

* :class:`~.book.OrderBook` -- the orders in memory and their indexes;
* :class:`~.recorder.Recorder` -- records an event: applies, stores, tells the owner;
* :class:`~.venue.VenueSide` -- what is said to and heard from the venues (the executor of an
  order that goes to its venue as it is);
* :class:`~.children.Children` and the strategies -- parents worked through child orders;
* :class:`~.cancels.Cancellations` -- the gateway's own cancels (cancel-on-disconnect, mass
  cancel, kill switch);
* the request handlers :class:`~.new.NewOrders` (D), :class:`~.replace.CancelReplaceRequests`
  (F, G), :class:`~.mass.MassRequests` (H, AF, q), :class:`~.lists.Lists` (E, M, K), and
  :class:`~.recovery.Recovery`;
* :class:`~.dropcopy.DropCopies` -- the drop copy sessions, sent a copy of every
  ExecutionReport the recorder records for the sessions they copy.

This module puts them together, and runs the venues and the sessions' lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from typing import Any

from connectors.base import Connector, VenueError, VenueEvent
from gateway.fix.message import Message
from gateway.fix.session import Session, SessionID
from gateway.fix.tags import BR_UNSUPPORTED_MESSAGE_TYPE
from gateway.risk.checks import RiskEngine
from gateway.routing.router import RoutingError, SymbolMap

from .book import OrderBook
from .cancels import Cancellations
from .children import Children, Orphaned, StrategyExecutor
from .dropcopy import DropCopies, DropCopyRule
from .executor import Executor, Strategy
from .lists import Lists
from .mass import MassRequests
from .model import Order, OrderEvent, order_from_json
from .new import NewOrders
from .ports import OrderStorePort
from .recorder import Recorder, SessionPolicy, SessionState
from .recovery import Recovery
from .replace import CancelReplaceRequests
from .tasks import Tasks
from .venue import Patience, VenueSide

__all__ = ["OrderManager", "SessionPolicy"]

log = logging.getLogger("fixgw.orders")

StrategyFactory = Callable[[Children], Strategy]
"""Makes the strategy that works parents with TargetStrategy (847) of its name."""


class OrderManager:
    """The acceptor's application (module docstring)."""

    def __init__(
        self,
        store: OrderStorePort,
        connectors: dict[str, Connector],
        policies: dict[str, SessionPolicy],
        risk: RiskEngine | None = None,
        *,
        strategies: Mapping[str, StrategyFactory] | None = None,
        clock: Callable[[], float] = time.time,
        timestamp_precision: int = 3,
        ambiguous_retry: float = 0.5,
        ambiguous_patience: float = 5.0,
        venue_start_timeout: float = 30.0,
        venue_retry_cap: float = 60.0,
        drop_copies: Mapping[str, DropCopyRule] | None = None,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.risk = risk or RiskEngine()
        self.symbols = SymbolMap()
        self.down: dict[str, str] = {}
        """Venues that could not be started yet -> why; new orders for them are refused."""
        self.patience = Patience(retry=ambiguous_retry, patience=ambiguous_patience)
        self._venue_start_timeout = venue_start_timeout
        self._venue_retry_cap = venue_retry_cap
        self._sessions = {sid: SessionState(p) for sid, p in policies.items()}
        self._serving: set[str] = set(policies)
        """The sessions this node serves (all, unless another node shares the store)."""
        self._consumers: list[asyncio.Task[None]] = []
        self.closed_listeners: list[Callable[[Order], None]] = []
        """Told of every client order that ends (the metrics)."""
        self.tasks = Tasks()
        self.book = OrderBook()
        self.copies = DropCopies(drop_copies or {}, store, clock)
        """The drop copy sessions (``drop_copy_of``)."""
        self.recorder = Recorder(store, self.book, self._sessions, self.tasks, clock=clock,
                                 timestamp_precision=timestamp_precision, closed=self._closed,
                                 copies=self.copies)
        self.venue = VenueSide(self.book, self.recorder, connectors, self.tasks, self.patience)
        self.children = children = Children(self.book, self.recorder, self.venue, connectors,
                                            self.risk, self.tasks, self.symbols)
        self._strategies: dict[str, Strategy] = {
            name: make(children) for name, make in (strategies or {}).items()}
        self._orphaned = Orphaned(children)
        self._executors: dict[str, Executor] = {
            name: StrategyExecutor(s, children) for name, s in self._strategies.items()}
        self._orphaned_executor = StrategyExecutor(self._orphaned, children)
        self.recorder.child_event = self._child_event
        children.routes = self._routes
        self.cancels = Cancellations(self.book, self.recorder, self.venue, self.executor,
                                     self._sessions, self.risk, store, self.tasks)
        self.venue.resolved = self.cancels.resolved
        self.new_orders = NewOrders(self.book, self.recorder, self._sessions, connectors,
                                    self.symbols, self.risk, self.down, self.executor,
                                    frozenset(self._strategies), self.tasks)
        self.requests = CancelReplaceRequests(self.book, self.recorder, connectors, self.symbols,
                                              self.risk, self.executor, self.tasks)
        self.mass = MassRequests(self.book, self.recorder, self.cancels)
        self.lists = Lists(self.book, self.recorder, self._sessions, self.new_orders,
                           self.venue, self.executor, self.cancels, connectors, store,
                           self.tasks)
        self.recorder.list_event = self.lists.on_event
        self.recovery = Recovery(self.book, self.venue, connectors, self.tasks)

    @property
    def orders(self) -> dict[str, Order]:
        """Open orders (and those with work in flight), by OrderID."""
        return self.book.orders

    def executor(self, o: Order) -> Executor:
        """Who works ``o``: its strategy for a parent, else the venue side."""
        if o.strategy is None:
            return self.venue
        return self._executors.get(o.strategy, self._orphaned_executor)

    def strategy(self, name: str) -> Strategy | None:
        """The strategy offered under ``name`` (TargetStrategy 847, or an internal name)."""
        return self._strategies.get(name)

    def _routes(self, parent: Order) -> list[str]:
        """The venues the smart order router may send ``parent``'s children to now: its
        session's (its account's), configured and up."""
        st = self._sessions.get(parent.session_id)
        if st is None:
            return []
        try:
            venues = st.policy.routing.routed_venues(parent.account)
        except RoutingError:
            return []
        return [v for v in venues if v in self.connectors and v not in self.down]

    def _strategy(self, parent: Order) -> Strategy:
        return self._strategies.get(parent.strategy or "", self._orphaned)

    def _child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if self.children.replacing(parent):
            self.children.replace_event(parent, child, ev)
        else:
            self._strategy(parent).child_event(parent, child, ev)

    def _resume(self, loaded: list[Order]) -> None:
        """The parents loaded from the store go on being worked (their children were
        reconciled with their venues first)."""
        for o in loaded:
            if o.strategy is not None and o.is_open and self.book.holds(o):
                try:
                    self._strategy(o).resume(o)
                except Exception:  # one parent's strategy does not keep the gateway down
                    log.exception("%s: its strategy could not resume it", o.order_id)

    def _closed(self, o: Order) -> None:
        self.risk.closed(o.session_id, o.account)
        for listener in self.closed_listeners:
            listener(o)

    # the cluster's hooks (gateway.cluster)

    @property
    def venue_gate(self) -> Callable[[], Awaitable[None]]:
        """Awaited before every venue call: returns while this node may trade."""
        return self.venue.gate

    @venue_gate.setter
    def venue_gate(self, gate: Callable[[], Awaitable[None]]) -> None:
        self.venue.gate = gate

    @property
    def venues_shared(self) -> Callable[[], bool]:
        """Whether another node may trade the same venue accounts now (no bulk cancel)."""
        return self.venue.shared

    @venues_shared.setter
    def venues_shared(self, shared: Callable[[], bool]) -> None:
        self.venue.shared = shared

    # ---------------------------------------------------------------------------------------
    # lifecycle

    def bind(self, flush: Callable[[SessionID], Coroutine[Any, Any, None]]) -> None:
        """How to make a session write what was queued on it (the acceptor's flush)."""
        self.recorder.bind(flush)
        self.copies.bind(flush)

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
                await self.recovery.reconcile(name)
                self.recovery.reissue_pending(name)
                return

    async def start(self, sessions: Collection[str] | None = None) -> None:
        """Connect the venues, load the open orders and untold reports of ``sessions`` (all
        with order routing when None: a node serving every session) and reconcile them with
        the venues; re-arm the kill switch and cancel-on-disconnect."""
        await self.recorder.start()
        started = [name for name, conn in self.connectors.items()
                   if await self._start_venue(name, conn)]
        for name in self.connectors:
            if name not in started:
                self._consumers.append(asyncio.create_task(
                    self._start_later(name, self.connectors[name])))
        serving = set(self._sessions) if sessions is None else set(sessions) & set(self._sessions)
        self._serving = serving
        loaded = await self._load_sessions(serving)
        for name in started:
            self._consumers.append(asyncio.create_task(self._consume(name, self.connectors[name])))
        for name in started:
            await self.recovery.reconcile(name)
        for name in started:
            self.recovery.reissue_pending(name)
        self._resume(loaded)
        await self.cancels.after_restart(serving)

    async def adopt(self, sessions: Collection[str]) -> None:
        """Take on ``sessions`` from a node that is gone (hot standby): their open orders and
        untold reports from the store, reconciled with the venues; a promise to cancel on
        disconnect is kept (the node's death is a disconnect); the kill switch holds."""
        serving = set(sessions) & set(self._sessions)
        # their orders' last events may carry ids of a block the other node reserved after
        # this node's: an event recorded here with a lower id would be dropped as stale
        await self.recorder.follow_other_nodes()
        self._serving |= serving
        loaded = await self._load_sessions(serving)
        ids = {o.order_id for o in loaded}
        for venue in sorted({o.venue for o in loaded}):
            # (a routed parent's "venue" is none: its children name theirs)
            if venue in self.connectors and venue not in self.down:
                await self.recovery.reconcile(venue)
                self.recovery.reissue_pending(venue, ids)  # (this node's own are in hand)
        self._resume(loaded)
        await self.cancels.after_restart(serving)

    def let_go(self, sid: str) -> None:
        """Forget session ``sid``'s orders here (another node takes it over with what the
        store has; nothing is cancelled). Raises RuntimeError while one of them has a request
        in flight (its outcome would be written by this node): try again once it is settled."""
        mine = [o for o in self.book if o.session_id == sid]
        busy = [o.order_id for o in mine if o.pending is not None or o.unacknowledged
                or o.cancel_next is not None]
        if busy or self.recorder.holding:
            raise RuntimeError(f"orders with requests in flight ({', '.join(busy[:5])}) or "
                               "events not stored yet: try again once they are settled")
        st = self._sessions.get(sid)
        if st is not None:
            self.cancels.disarm(sid)
            st.unreported = []
        for o in mine:
            if self.book.remove(o) and o.parent_id is None:
                self._closed(o)
        self.lists.forget(sid)
        self._serving.discard(sid)

    async def _load_sessions(self, sessions: set[str]) -> list[Order]:
        """Index the open orders of ``sessions`` (those not known yet) and queue their
        reports the client was never told."""
        loaded = [o for o in map(order_from_json, await self.store.load_open_orders())
                  if o.session_id in sessions and o.order_id not in self.book.orders]
        for o in loaded:
            self.book.add(o)
            if o.parent_id is None:
                self.risk.opened(o.session_id, o.account)
        for sid in sorted(sessions):
            self._sessions[sid].unreported = await self.recorder.untold(sid)
        await self.lists.restore(loaded)
        return loaded

    async def store_back(self) -> None:
        """The store takes writes again: store the order events kept meanwhile, in order, then
        take what each session was not told from the store. Runs before Logons are accepted
        again."""
        await self.recorder.store_back(self._serving)

    async def reconcile(self, venue: str) -> None:
        """Invariant 4: compare our open orders with the venue's and apply what we missed."""
        await self.recovery.reconcile(venue)

    async def close(self) -> None:
        self.tasks.stop_timers()  # (a strategy's next slice is not sent by a gateway gone)
        await self.copies.close()
        for t in self._consumers:
            t.cancel()
        for sid in self._sessions:
            self.cancels.disarm(sid)
        await self.tasks.wait(5)
        await self.recorder.release_ids()
        for conn in self.connectors.values():
            await conn.close()

    async def idle(self) -> None:
        """Wait until no order work is in flight (tests, benchmarks)."""
        await self.tasks.idle()

    async def _consume(self, name: str, conn: Connector) -> None:
        async for ev in conn.events():
            try:
                self.on_venue_event(name, ev)
            except Exception:
                log.exception("venue event %r failed", ev)

    def on_venue_event(self, venue: str, ev: VenueEvent) -> None:
        self.venue.on_event(venue, ev)

    # ---------------------------------------------------------------------------------------
    # the kill switch (an admin command, or the configuration)

    def kill_switches(self) -> dict[str, str]:
        """Engaged scopes (a session id, or ``*`` for every session) -> why."""
        return self.cancels.kill_switches()

    async def kill_switch(self, scope: str, engaged: bool, reason: str = "") -> int:
        """See :meth:`Cancellations.kill_switch`."""
        return await self.cancels.kill_switch(scope, engaged, reason)

    # ---------------------------------------------------------------------------------------
    # the acceptor's application

    def on_logon(self, session: Session, now: float) -> None:
        sid = str(session.sid)
        st = self._sessions.get(sid)
        if st is None:
            self.copies.on_logon(session)
            return
        st.session = session
        self.cancels.disarm(sid)
        logon = session.logon_message
        flag = logon.get(8013) if logon is not None else None
        st.cod_override = {b"Y": "both", b"N": "off"}.get(flag) if flag else None
        self._store_cod_override(sid, st.cod_override)
        self.recorder.replay(st, session, now)

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
        sid = str(session.sid)
        st = self._sessions.get(sid)
        if st is None:
            self.copies.on_logout(session)
            return
        st.session = None
        mode = st.cod_override or st.policy.cancel_on_disconnect
        clean = session.logout_initiator in ("counterparty", "local")
        if mode == "both" or (mode == "logout" and clean) or (mode == "disconnect" and not clean):
            self.cancels.arm(sid, st.policy.cod_grace)

    def serves(self, session: Session) -> bool:
        """Whether ``session`` has order routing here (a configured policy)."""
        return str(session.sid) in self._sessions

    def on_message(
        self, session: Session, message: Message, now: float
    ) -> Awaitable[bool] | None:
        """Handle one application message; what is answered after a store read is returned
        (the session stores the message as received once it is done)."""
        if str(session.sid) not in self._sessions:
            if self.copies.serves(str(session.sid)):
                self.copies.on_message(session, message, now)
                return None
            session.business_reject(message, 4, now, text="No order routing for this session")
            return None
        mt = message.msg_type
        h = message.header
        maybe_seen = h.get(97) == b"Y" or h.get(43) == b"Y"
        if mt == b"D":
            if maybe_seen:
                return self.tasks.spawn(self.new_orders.possible_resend(session, message, now))
            self.new_orders.on_new_order(session, message, now)
        elif mt == b"F" or mt == b"G":
            if maybe_seen:
                return self.tasks.spawn(self.requests.possible_resend(session, message, now))
            return self.requests.on_request(session, message, now)
        elif mt == b"E":
            return self.tasks.spawn(self.lists.on_new_order_list(session, message, now,
                                                                 maybe_seen))
        elif mt == b"M":
            return self.tasks.spawn(self.lists.on_status_request(session, message))
        elif mt == b"K":
            return self.tasks.spawn(self.lists.on_cancel_request(session, message))
        elif mt == b"H":
            return self.tasks.spawn(self.mass.on_status(session, message))
        elif mt == b"AF":
            self.mass.on_mass_status(session, message, now)
        elif mt == b"q":
            self.mass.on_mass_cancel(session, message, now)
        else:
            session.business_reject(message, BR_UNSUPPORTED_MESSAGE_TYPE, now)
        return None


def _log_cod_failure(sid: str, future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("%s: storing the cancel-on-disconnect override failed", sid,
                  exc_info=future.exception())
