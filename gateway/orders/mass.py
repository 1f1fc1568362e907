"""Requests about many orders, and cancel-on-disconnect: OrderStatusRequest (H),
OrderMassStatusRequest (AF), OrderMassCancelRequest (q), and the cancellation of a session's
orders when it drops (Invariant 5).

Part of :class:`~gateway.orders.manager.OrderManager` (a base class of it, over the state in
:mod:`.core`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from connectors.base import VenueError
from gateway.fix.message import Message
from gateway.fix.session import Session

from . import fixmap
from .core import OrderCore
from .fixmap import EXEC_STATUS, Execution
from .model import Order

log = logging.getLogger("fixgw.orders")


class MassRequests(OrderCore):
    async def _on_status(self, session: Session, msg: Message) -> bool:
        """OrderStatusRequest (H); whether the answer could be sent."""
        sid = str(session.sid)
        cl = msg.get_str(11)
        o = self._find(sid, cl, msg.get_str(37))
        if o is None:
            o = await self._stored_order(sid, cl, msg.get_str(37))
        if o is None:
            body: list[tuple[int, bytes]] = [
                (6, b"0"), (11, msg.get(11) or b"NONE"), (14, b"0"),
                (17, f"S{time.time_ns()}".encode()), (37, msg.get(37) or b"NONE"), (39, b"8"),
                (54, msg.get(54) or b"1"), (55, msg.get(55) or b"NONE"),
                (58, b"unknown order"), (150, EXEC_STATUS), (151, b"0"),
            ]
            return self._send_now(session, b"8", body)
        ex = Execution(f"{o.order_id}.S{time.time_ns()}", EXEC_STATUS)
        return self._send_now(session, b"8",
                              fixmap.execution_report(o, ex, time.time_ns(), self._ts))

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
        """Cancel ``targets`` at their venues; ``reason`` is the Text (58) of their Canceled
        reports."""
        by_venue: dict[str, list[Order]] = {}
        for o in targets:
            self._cancel_why.setdefault(o.order_id, reason)  # the first reason stands
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
        everything_ours = not self.venues_shared() and all(
            o.order_id in ids for o in self.orders.values() if o.venue == venue and o.is_open)
        live = [o for o in orders if o.venue_order_id is not None]
        for o in orders:
            if o.venue_order_id is None:
                self._cancel_when_acked.add(o.order_id)
        if everything_ours and conn.capabilities.bulk_cancel and len(live) > 1:
            try:
                await self.venue_gate()
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
            if st.session is not None and st.session.is_logged_on:
                return  # back before it fired
        targets = [o for o in self.orders.values() if o.session_id == sid and o.is_open]
        log.info("%s: cancel-on-disconnect: %d open orders", sid, len(targets))
        self._cancel_orders(targets, reason="cancel on disconnect")

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
        if scope != "*" and scope not in self._sessions and not (
            not engaged and scope in self.risk.killed  # stored for a session since removed
        ):
            raise KeyError(scope)
        if not engaged:
            self.risk.killed.pop(scope, None)
            log.warning("kill switch of %s released (%s)", scope, reason or "no reason given")
            await self.store.save_kill_switch(scope, False, reason)
            return 0
        self.risk.killed[scope] = reason
        targets = self._killed_orders()
        log.warning("kill switch of %s engaged (%s): cancelling %d open orders", scope,
                    reason or "no reason given", len(targets))
        self._cancel_orders(targets, reason="kill switch")
        await self.store.save_kill_switch(scope, True, reason)
        return len(targets)

    def _killed_orders(self) -> list[Order]:
        """Open orders of every session whose kill switch is engaged."""
        is_killed = self.risk.is_killed
        return [o for o in self.orders.values() if o.is_open and is_killed(o.session_id)]
