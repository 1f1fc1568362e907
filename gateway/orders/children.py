"""Parent and child orders: a client order worked by a strategy (TargetStrategy, 847) is a
parent, and the strategy works it through child orders, each a venue order of its own.

A child is an :class:`~gateway.orders.model.Order` like any other (``parent_id`` set): stored
event by event, placed, cancelled and reconciled by the venue side, never reported to the
client. Its events go to its parent's strategy (:meth:`Strategy.child_event`), which tells the
client through the parent's own events: a fill of a child is a fill of the parent (its
venue trade is stored once, with the child). :class:`Children` is what a strategy works with.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from connectors.base import Connector, venue_client_order_id

from .book import OrderBook
from .fixmap import (
    EXEC_CANCELED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_TRADE,
    Execution,
)
from .model import ZERO, Order, OrderEvent
from .recorder import Recorder
from .tasks import Tasks
from .venue import VenueSide


class Children:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        venue: VenueSide,
        connectors: dict[str, Connector],
        tasks: Tasks,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.venue = venue
        self.connectors = connectors
        self.tasks = tasks

    def of(self, parent: Order) -> list[Order]:
        return self.book.children(parent)

    def open(self, parent: Order, quantity: Decimal, venue: str | None = None,
             price: Decimal | None = None) -> Order:
        """A new child order of ``parent`` for ``quantity`` (at ``venue`` and ``price``, by
        default the parent's), stored and then placed. Raises ValueError when the parent's
        open children and fills would come to more than its quantity (Invariant 10)."""
        working = sum((c.quantity - c.cum_qty for c in self.of(parent) if c.is_open), ZERO)
        if quantity <= 0 or parent.cum_qty + working + quantity > parent.quantity:
            raise ValueError(f"{parent.order_id}: a child of {quantity} would take its venue "
                             f"orders past its quantity {parent.quantity} (filled "
                             f"{parent.cum_qty}, working {working})")
        venue = venue or parent.venue
        conn = self.connectors[venue]
        order_id = str(self.recorder.take_id("order"))
        terms: dict[str, Any] = parent.terms()
        terms.update(cl_ord_id="", quantity=quantity)
        if price is not None:
            terms["price"] = price
        child = Order(order_id=order_id, session_id=parent.session_id, venue=venue,
                      symbol=parent.symbol, created_ns=time.time_ns(),
                      parent_id=parent.order_id, **terms)
        child.venue_client_order_id = venue_client_order_id(
            order_id, 0, conn.info.client_order_id_rules)
        child.updated_ns = child.created_ns
        self.book.add(child)
        persisted = self.recorder.created(child)
        self.tasks.spawn(self.venue.place(child, persisted))
        return child

    def cancel(self, child: Order, why: str) -> None:
        """Cancel ``child`` at its venue (its parent hears of the outcome)."""
        if child.pending is not None or not child.is_open:
            return
        data = {"cl_ord_id": child.cl_ord_id, "orig_cl_ord_id": child.cl_ord_id, "why": why}
        if self.recorder.record(child, "cancel_requested", data) is not None:
            self.tasks.spawn(self.venue.cancel(child))

    # ---- the parent's events, told to the client --------------------------------------------

    def acknowledge(self, parent: Order) -> None:
        """The strategy took the parent on (ExecutionReport New)."""
        self.recorder.record(parent, "accepted", {},
                             Execution(self.recorder.exec_id(parent), EXEC_NEW))

    def fill(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        """``ev`` (a child's fill) fills the parent as much."""
        d = ev.data
        qty, px = Decimal(d["quantity"]), Decimal(d["price"])
        trade = f"{child.order_id}.{d['trade_id']}"
        self.recorder.record(parent, "fill", {"trade_id": trade, "quantity": d["quantity"],
                                              "price": d["price"]},
                             Execution(f"{parent.order_id}.T{trade}", EXEC_TRADE,
                                       last_qty=qty, last_px=px, last_mkt=child.venue))

    def cancel_done(self, parent: Order, text: str) -> None:
        """The parent is over without being filled (its pending cancel, if any, done)."""
        p = parent.pending
        if p is not None and p.why is not None:
            text = f"{p.why}: {text}"
        self.recorder.record(parent, "canceled", {"text": text}, Execution(
            self.recorder.exec_id(parent), EXEC_CANCELED, text=text,
            cl_ord_id=p.cl_ord_id if p is not None else None,
            orig_cl_ord_id=p.orig_cl_ord_id if p is not None and not p.unsolicited else None))

    def reject(self, parent: Order, text: str) -> None:
        """The parent could not be worked at all."""
        self.recorder.record(parent, "rejected", {"text": text, "by": "strategy"},
                             Execution(self.recorder.exec_id(parent), EXEC_REJECTED, text=text))

    def refuse(self, parent: Order, text: str, reason: bytes) -> None:
        """The parent's pending cancel or replace is refused (OrderCancelReject)."""
        self.venue.refuse_pending(parent, text, reason)
