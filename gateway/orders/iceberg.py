"""Iceberg: a limit NewOrderSingle with MaxFloor (111) -- more than zero and less than its
OrderQty, without TargetStrategy (847) -- is a parent (internal strategy name
:data:`gateway.fix.custom.ICEBERG`) that shows at most MaxFloor at its venue at a time.

It is worked through one child order at a time (:mod:`.children`), at the parent's price, side
and TimeInForce, of :func:`child_quantity`: MaxFloor or what is left if less, rounded down to the
instrument's lot, never under its minimum quantity (nor its minimum notional at the price); when
what would be left after it is under that minimum, the child takes it all (the last child). When
a child is filled completely the next one is opened, until the parent is filled.

A child that ends unfilled, or partly filled (canceled, expired or rejected by its venue), ends
the parent's work: the parent is Canceled, its Text saying which child ended and how, and how
much was filled. Nothing is sent again in a loop. A cancel of the parent cancels its child, then
the parent. A replace (OrderQty, Price) cancels the live child, Replaces the parent and opens
the next child on the new terms (:meth:`Children.replace`).

What is checked (``fixmap.parse_new_order``; a NewOrderSingle that does not fit is Rejected,
saying why): MaxFloor must be positive, on a limit order (not a market or stop order), without
TargetStrategy (847). A MaxFloor of OrderQty or more shows the whole order at once: the order is
a plain order, not an iceberg (MaxFloor is not kept). Here: a TimeInForce IOC or FOK is refused
(a child that does not fill at once would end the iceberg).

After a restart the live child (reconciled with its venue) is adopted; when none is live and
quantity is left, the next child is opened.
"""

from __future__ import annotations

import logging
from decimal import ROUND_FLOOR, Decimal

from connectors.base import Instrument, OrderType, TimeInForce

from . import fixmap
from .children import Children, cancelling
from .lifecycle import OrdStatus
from .model import ZERO, Order, OrderEvent
from .slicing import minimum_quantity

log = logging.getLogger("fixgw.orders")

CANCELED = "iceberg canceled"


def child_quantity(left: Decimal, max_floor: Decimal, inst: Instrument | None,
                   price: Decimal | None) -> Decimal:
    """The quantity of the next child when ``left`` is still to be worked: ``max_floor`` or
    ``left`` if less, on the lot grid, within the venue's maximum, at least its minimum; all
    of ``left`` when what would remain after it is under that minimum."""
    if left <= 0:
        return ZERO
    q = min(max_floor, left)
    if inst is None:
        return q
    if inst.lot_size > 0:
        q = (q / inst.lot_size).to_integral_value(ROUND_FLOOR) * inst.lot_size
    if inst.max_qty is not None:
        q = min(q, inst.max_qty)
    least = minimum_quantity(inst, price)
    q = max(q, least)
    if left - q < least and (inst.max_qty is None or left <= inst.max_qty):
        q = left  # the rest would be under the minimum: the last child takes it
    return min(q, left)


def unfit(o: Order) -> str | None:
    """Why ``o`` cannot be worked as an iceberg (None: it can)."""
    if o.max_floor is None or o.max_floor <= 0 or o.max_floor >= o.quantity:
        return "an iceberg needs a MaxFloor (111) above zero and under its OrderQty (38)"
    if o.type is not OrderType.LIMIT or o.price is None:
        return f"an iceberg is a limit order, not OrdType {o.type.value}"
    if o.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        return (f"an iceberg cannot be TimeInForce {o.time_in_force.value} (its children rest "
                "one after the other)")
    return None


class Iceberg:
    """The iceberg strategy (module docstring): one for every iceberg parent of the gateway."""

    def __init__(self, children: Children) -> None:
        self.children = children

    # ---- the Strategy protocol ---------------------------------------------------------------

    def start(self, parent: Order) -> None:
        why = unfit(parent)
        if why is not None:
            self.children.reject(parent, why, fixmap.ORD_REJ_OTHER)
            return
        self.children.acknowledge(parent)
        if self._working(parent):  # (a cancel may have come while it was being stored)
            self._next(parent)

    def cancel(self, parent: Order) -> None:
        self.children.cancel_all(parent, CANCELED)
        self.children.keep_cancelling(parent, CANCELED, lambda: cancelling(parent))

    def replace(self, parent: Order) -> None:
        self.children.replace(parent, self)

    def resume(self, parent: Order) -> None:
        if self.children.resume_pending(parent, self):
            return
        live = [c for c in self.children.of(parent) if c.is_open]
        if live:
            log.info("%s: iceberg resumed with its live child %s (%s filled of %s)",
                     parent.order_id, ", ".join(c.order_id for c in live), parent.cum_qty,
                     parent.quantity)
            return
        log.info("%s: iceberg resumed with no live child (%s filled of %s)", parent.order_id,
                 parent.cum_qty, parent.quantity)
        if self._working(parent):
            self._next(parent)

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if ev.kind == "fill":
            self.children.fill(parent, child, ev)
        if not parent.is_open or child.is_open or any(
            c.is_open for c in self.children.of(parent)
        ):
            return
        p = parent.pending
        if p is not None and p.kind == "cancel":
            self.children.cancel_done(parent, CANCELED)
        elif child.cum_qty < child.quantity:
            how = {OrdStatus.CANCELED: "canceled", OrdStatus.EXPIRED: "expired",
                   OrdStatus.REJECTED: "rejected"}.get(child.status, child.status.name)
            said = f" ({child.text})" if child.text else ""
            self.children.cancel_done(
                parent, f"iceberg ended: its child {child.order_id} was {how} at "
                        f"{child.venue}{said} with {child.cum_qty} of {child.quantity} filled; "
                        f"{parent.cum_qty} of {parent.quantity} filled")
        elif self._working(parent):
            self._next(parent)

    # ---- the children --------------------------------------------------------------------------

    def _working(self, parent: Order) -> bool:
        """Whether ``parent`` is still this strategy's to work (open, held here, no cancel or
        replace in flight)."""
        return parent.is_open and self.children.book.holds(parent) and parent.pending is None

    def _next(self, parent: Order) -> None:
        """Open the next child, if quantity is left."""
        left = parent.quantity - parent.cum_qty - self.children.working(parent)
        if left <= 0 or parent.max_floor is None:
            return
        qty = child_quantity(left, parent.max_floor, self.children.instrument(parent),
                             parent.price)
        try:
            self.children.open(parent, qty)
        except ValueError as exc:
            log.warning("%s: next child not sent: %s", parent.order_id, exc)
            if self._working(parent) and not any(c.is_open for c in self.children.of(parent)):
                self.children.cancel_done(parent, f"iceberg ended: {exc}")
