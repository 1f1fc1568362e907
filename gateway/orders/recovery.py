"""Recovery: reconciliation with the venue on start and on request (Invariant 4), and asking
again what was in flight when the last process stopped."""

from __future__ import annotations

import logging

from connectors.base import Connector, VenueError, VenueStatus
from gateway.logs import printable

from .book import OrderBook
from .lifecycle import OrdStatus
from .tasks import Tasks
from .venue import VenueSide

log = logging.getLogger("fixgw.orders")


class Recovery:
    def __init__(
        self,
        book: OrderBook,
        venue: VenueSide,
        connectors: dict[str, Connector],
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.venue = venue
        self.connectors = connectors
        self.tasks = tasks

    async def reconcile(self, venue: str) -> None:
        """Invariant 4: compare our open orders at ``venue`` with the venue's and apply what we
        missed."""
        conn = self.connectors[venue]
        ours = self.book.venue_orders(venue)
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
            self.venue.on_event(venue, f)
        side = self.venue
        for o in ours:
            if not o.is_open:
                continue
            new_coid = side.amend_coid(conn, o) if (
                o.pending is not None and o.pending.kind == "replace" and side.amends(conn, o)
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
                    self.book.map_coid(o, new_coid)
                    side.amended(o, st.venue_order_id, new_coid)
            state = at_venue.get(o.venue_client_order_id)
            if state is None:
                try:
                    state = await conn.query_order(o.symbol, o.venue_client_order_id,
                                                   venue_order_id=o.venue_order_id)
                except VenueError:
                    continue
            if state is None:
                if o.status is OrdStatus.PENDING_NEW:
                    self.tasks.spawn(side.resolve_ambiguous(o, conn))
                else:
                    log.warning("%s: order %s (ClOrdID %s) is not found at %s on "
                                "reconciliation: Canceled", o.session_id, o.order_id,
                                printable(o.cl_ord_id), venue)
                    side.canceled(o, o.venue_client_order_id, "not found at the venue")
                continue
            await side.apply_state(o, conn, state)

    def reissue_pending(self, venue: str | None, only: set[str] | None = None) -> None:
        """Ask again what was in flight when the last process stopped (both idempotent): the
        pending cancels and replaces of the venue orders at ``venue`` (all when None), of
        ``only`` when given. (A parent's are its strategy's, when it resumes.)"""
        for o in list(self.book):
            if (only is not None and o.order_id not in only) or o.strategy is not None:
                continue
            if (venue is None or o.venue == venue) and o.is_open and o.pending is not None:
                if o.pending.kind == "cancel":
                    self.tasks.spawn(self.venue.cancel(o))
                else:
                    self.tasks.spawn(self.venue.replace(o, None))
