"""Recovery: reconciliation with the venue on start and on request (Invariant 4), resolving an
ambiguous placement by asking the venue (Invariant 3), and asking again what was in flight when
the last process stopped.

Part of :class:`~gateway.orders.manager.OrderManager` (a base class of it, over the state in
:mod:`.core`).
"""

from __future__ import annotations

import asyncio
import logging

from connectors.base import Connector, OrderState, RejectReason, VenueError, VenueStatus

from .core import OrderCore
from .fixmap import EXEC_EXPIRED, Execution
from .lifecycle import OrdStatus
from .model import Order
from .replace import shows_amend

log = logging.getLogger("fixgw.orders")


class Recovery(OrderCore):
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

    async def _apply_state(self, o: Order, conn: Connector, state: OrderState) -> None:
        """Bring ``o`` in line with the venue's view of it (reconciliation, ambiguity)."""
        if state.venue_order_id and o.unacknowledged and (
            state.status is not VenueStatus.REJECTED
        ):
            self._on_accepted(o, state.venue_order_id)
        if state.filled_quantity > 0:
            await self._catch_up_fills(o, conn, state.client_order_id)
        p = o.pending
        if (p is not None and p.kind == "replace" and state.status.is_open
                and self._amends(conn, o) and shows_amend(state, p)):
            self._amended(o, state.venue_order_id)  # the amend's event was lost
        if state.status is VenueStatus.REJECTED and o.unacknowledged:
            self._venue_rejected(o, RejectReason.OTHER, "rejected by the venue")
        elif state.status is VenueStatus.CANCELED and o.is_open:
            self._on_canceled(o, o.venue_client_order_id, "canceled at the venue")
        elif state.status is VenueStatus.EXPIRED and o.is_open:
            self._record(o, "expired", {}, Execution(self._exec_id(o), EXEC_EXPIRED))

    async def _resolve_ambiguous(self, o: Order, conn: Connector) -> None:
        """Invariant 3: ask the venue by client order id until it answers."""
        waited = 0.0
        while o.unacknowledged:
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

    async def _catch_up_fills(self, o: Order, conn: Connector, coid: str) -> None:
        """Apply the venue's fills of ``coid`` that ``o`` has not seen (dropped or late)."""
        for f in await conn.fills_since(o.created_ns - 1):
            if f.client_order_id == coid:
                self._on_fill(o, f)

    def _reissue_pending(self, venue: str | None, only: set[str] | None = None) -> None:
        for o in list(self.orders.values()):
            # what was in flight when the last process stopped is asked again (both idempotent)
            if only is not None and o.order_id not in only:
                continue
            if (venue is None or o.venue == venue) and o.is_open and o.pending is not None:
                if o.pending.kind == "cancel":
                    self._spawn(self._venue_cancel(o))
                else:
                    self._spawn(self._venue_replace(o, None))
