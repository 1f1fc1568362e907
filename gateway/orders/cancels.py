"""The cancels the gateway decides itself: cancel-on-disconnect (Invariant 5), an
OrderMassCancelRequest, the kill switch. Each records an unsolicited cancel request on the
order (its ``pending`` says why: the Text of the Canceled report), hands it to the order's
executor, and stores the requests of a batch in one append after the venues heard of them (a
cancel needs no write-ahead: were the process to die first, reconciliation finds the order
canceled). An order whose client's cancel or replace is in flight is cancelled once that is
resolved."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.risk.checks import RiskEngine

from .book import OrderBook
from .executor import Executor
from .model import Order
from .ports import OrderStorePort
from .recorder import Recorder, SessionState
from .tasks import Tasks
from .venue import VenueSide

log = logging.getLogger("fixgw.orders")


def kill_text(reason: str) -> str:
    """The Text (58) of an order cancelled by the kill switch: with the reason it was engaged
    for (the operator's ``--reason``)."""
    return f"kill switch: {reason}" if reason else "kill switch"


class Cancellations:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        venue: VenueSide,
        executor: Callable[[Order], Executor],
        sessions: dict[str, SessionState],
        risk: RiskEngine,
        store: OrderStorePort,
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.venue = venue
        self.executor = executor
        self.sessions = sessions
        self.risk = risk
        self.store = store
        self.tasks = tasks
        self.configured_kills = dict(risk.killed)
        """Kill switches engaged by the configuration (they hold whatever the store says)."""

    def cancel(self, targets: list[Order], reason: str) -> None:
        """Cancel ``targets``; ``reason`` is the Text (58) of their Canceled reports."""
        by_venue: dict[str, list[Order]] = {}
        with self.recorder.batch():
            for o in targets:
                p = o.pending
                if p is not None:
                    # a cancel or replace of the client's (or ours) is in flight: cancel once
                    # it is resolved (a replaced order is live again); the first reason stands
                    if o.cancel_next is None:
                        o.cancel_next = p.why or reason
                    continue
                data = {"cl_ord_id": o.cl_ord_id, "orig_cl_ord_id": o.cl_ord_id, "why": reason}
                if self.recorder.record(o, "cancel_requested", data) is None:
                    continue
                if o.strategy is None:
                    by_venue.setdefault(o.venue, []).append(o)
                else:
                    self.tasks.spawn(self.executor(o).cancel(o))
            # the venues hear first (these tasks start before the batch's append)
            for venue, orders in by_venue.items():
                self.tasks.spawn(self.venue.cancel_all(venue, orders))

    def resolved(self, o: Order) -> None:
        """``o``'s pending request is resolved and it is open: a cancel that waited is done."""
        if o.cancel_next is not None:
            reason, o.cancel_next = o.cancel_next, None
            self.cancel([o], reason)

    # ---------------------------------------------------------------------------------------
    # cancel-on-disconnect

    def arm(self, sid: str, grace: float) -> None:
        st = self.sessions[sid]
        st.cod_task = self.tasks.spawn(self.on_disconnect(sid, grace))

    def disarm(self, sid: str) -> None:
        st = self.sessions.get(sid)
        if st is not None and st.cod_task is not None:
            st.cod_task.cancel()
            st.cod_task = None

    async def on_disconnect(self, sid: str, grace: float) -> None:
        if grace > 0:
            await asyncio.sleep(grace)
        st = self.sessions.get(sid)
        if st is not None:
            st.cod_task = None
            if st.session is not None and st.session.is_logged_on:
                return  # back before it fired
        targets = [o for o in self.book.client_orders(sid) if o.is_open]
        log.info("%s: cancel-on-disconnect: %d open orders", sid, len(targets))
        self.cancel(targets, reason="cancel on disconnect")

    # ---------------------------------------------------------------------------------------
    # the kill switch (an admin command, or the configuration)

    def kill_switches(self) -> dict[str, str]:
        """Engaged scopes (a session id, or ``*`` for every session) -> why."""
        return dict(sorted(self.risk.killed.items()))

    async def kill_switch(self, scope: str, engaged: bool, reason: str = "") -> int:
        """Engage or release the kill switch of ``scope``: a session id, or ``*`` for the whole
        gateway. Engaged, new orders and replaces of the scope are refused at once and every
        open order of it is cancelled at its venue (bulk cancel where the venue has one; an
        order not yet acknowledged as soon as it is). The clients learn the outcomes from
        ExecutionReports, now or at their next Logon. The state is stored, so it survives a
        restart; returns once stored, with the number of orders being cancelled.

        Raises KeyError for a scope that is neither ``*`` nor a session with order routing.
        """
        if scope != "*" and scope not in self.sessions and not (
            not engaged and scope in self.risk.killed  # stored for a session since removed
        ):
            raise KeyError(scope)
        if not engaged:
            self.risk.killed.pop(scope, None)
            log.warning("kill switch of %s released (%s)", scope, reason or "no reason given")
            await self.store.save_kill_switch(scope, False, reason)
            return 0
        self.risk.killed[scope] = reason
        targets = self.killed_orders()
        log.warning("kill switch of %s engaged (%s): cancelling %d open orders", scope,
                    reason or "no reason given", len(targets))
        self.cancel(targets, reason=kill_text(reason))
        await self.store.save_kill_switch(scope, True, reason)
        return len(targets)

    def killed_orders(self) -> list[Order]:
        """Open client orders of every session whose kill switch is engaged."""
        is_killed = self.risk.is_killed
        return [o for o in self.book.client_orders() if o.is_open and is_killed(o.session_id)]

    async def after_restart(self, sessions: set[str]) -> None:
        """What holds across a restart for ``sessions``: the kill switch (engaged by the
        configuration or an admin command) cancels what is still open of its scope; a promise
        to cancel on disconnect is kept (a restart is a disconnect, not a logout)."""
        stored_kills = await self.store.load_kill_switches()
        unknown = sorted(k for k in stored_kills if k != "*" and k not in self.sessions)
        if unknown:
            log.warning("kill switch engaged for sessions no longer configured: %s (release "
                        "with fixgw kill-switch --session ID --release)", ", ".join(unknown))
        for scope in sessions | {"*"} | set(unknown):
            # as stored (an admin command on another node may have released it), or as
            # configured
            if scope in stored_kills:
                self.risk.killed[scope] = stored_kills[scope]
            elif scope in self.configured_kills:
                self.risk.killed[scope] = self.configured_kills[scope]
            else:
                self.risk.killed.pop(scope, None)
        killed = [o for o in self.killed_orders() if o.session_id in sessions]
        if killed:
            log.warning("kill switch engaged (%s): cancelling %d open orders",
                        ", ".join(sorted(self.risk.killed)), len(killed))
            for scope, why in sorted(self.risk.killed.items()):
                # each order with the reason of its scope (its session's before the "*")
                mine = [o for o in killed if o.session_id == scope
                        or (scope == "*" and o.session_id not in self.risk.killed)]
                self.cancel(mine, reason=kill_text(why))
        overrides = await self.store.load_cod_overrides()
        for sid in sorted(sessions):
            st = self.sessions[sid]
            st.cod_override = overrides.get(sid)
            mode = st.cod_override or st.policy.cancel_on_disconnect
            if st.session is not None:
                continue  # logged on again already: nothing to keep
            if mode in ("disconnect", "both") and self.book.client_orders(sid):
                self.arm(sid, st.policy.cod_grace)
