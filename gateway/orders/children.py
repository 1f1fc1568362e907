"""Parent and child orders: a client order worked by a strategy (TargetStrategy, 847) is a
parent, and the strategy works it through child orders, each a venue order of its own.

A child is an :class:`~gateway.orders.model.Order` like any other (``parent_id`` set): stored
event by event, placed, cancelled and reconciled by the venue side, never reported to the
client. Its events go to its parent's strategy (:meth:`Strategy.child_event`), which tells the
client through the parent's own events: a fill of a child is a fill of the parent (its
venue trade is stored once, with the child). :class:`Children` is what a strategy works with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from connectors.base import Connector, Instrument, TimeInForce, venue_client_order_id
from gateway.fix.custom import SOR
from gateway.risk.checks import RiskEngine
from gateway.routing.router import RoutingError, SymbolMap
from gateway.routing.sor import Share

from . import fixmap
from .book import OrderBook
from .executor import Strategy
from .fixmap import (
    EXEC_CANCELED,
    EXEC_EXPIRED,
    EXEC_NEW,
    EXEC_REJECTED,
    EXEC_REPLACED,
    EXEC_TRADE,
    Execution,
)
from .lifecycle import OrdStatus
from .model import ZERO, Order, OrderEvent
from .ports import MarketView, NoMarket
from .recorder import Recorder
from .tasks import Tasks
from .venue import VenueSide, not_stored

log = logging.getLogger("fixgw.orders")

Split = Callable[[Order, Decimal, "Decimal | None", TimeInForce], Sequence[Share]]
"""(parent, quantity, limit price or None for the parent's, the children's TimeInForce) ->
the shares the smart order router sends to each venue."""

def cancelling(o: Order) -> bool:
    """Whether ``o`` has a cancel in flight."""
    p = o.pending
    return p is not None and p.kind == "cancel"


SWEEP_SECONDS = 2.0
"""How often the children still open while their parent ends (a refused cancel) are asked
again to cancel (:meth:`Children.keep_cancelling`)."""


class Children:
    def __init__(
        self,
        book: OrderBook,
        recorder: Recorder,
        venue: VenueSide,
        connectors: dict[str, Connector],
        risk: RiskEngine,
        tasks: Tasks,
        symbols: SymbolMap | None = None,
    ) -> None:
        self.book = book
        self.recorder = recorder
        self.venue = venue
        self.connectors = connectors
        self.risk = risk
        self.tasks = tasks
        self.symbols = symbols or SymbolMap()
        self.market: MarketView = NoMarket()
        """The books, public trades, balances and fees (set by the composition root)."""
        self._replacing: dict[str, Strategy] = {}
        """Parents whose replace waits for their children's cancels -> their strategy."""
        self.routes: Callable[[Order], list[str]] = lambda parent: []
        """The venues a routed parent may use now (set by the order manager)."""
        self.split: Split | None = None
        """How the smart order router splits a child of a routed parent across venues (set
        when it is offered)."""

    def of(self, parent: Order) -> list[Order]:
        return self.book.children(parent)

    def working(self, parent: Order) -> Decimal:
        """What ``parent``'s open children may still fill (those being cancelled included:
        until the venue says, their quantity is theirs)."""
        return sum((c.quantity - c.cum_qty for c in self.of(parent) if c.is_open), ZERO)

    def routed(self, parent: Order) -> bool:
        """Whether ``parent``'s children go through the smart order router (it names no
        venue of its own)."""
        return parent.venue == SOR

    def _venues(self, parent: Order, venue: str | None) -> list[str]:
        if venue is not None:
            return [venue]
        return self.routes(parent) if self.routed(parent) else [parent.venue]

    def instrument(self, parent: Order, venue: str | None = None) -> Instrument | None:
        """The instrument ``parent`` trades at ``venue`` (by default its own; for a routed
        parent, at the first of its venues that lists it): its lot, minimum quantity and
        notional. None when no venue lists it (any more)."""
        for name in self._venues(parent, venue):
            try:
                return self.symbols.instrument(name, parent.symbol, None, None)
            except RoutingError:
                continue
        return None

    def last_price(self, parent: Order, venue: str | None = None) -> Decimal | None:
        """The last price at ``venue`` (by default ``parent``'s; for a routed parent, the
        first of its venues that has one)."""
        for name in self._venues(parent, venue):
            conn = self.connectors.get(name)
            price = None if conn is None else conn.last_price(parent.symbol)
            if price is not None:
                return price
        return None

    def open(self, parent: Order, quantity: Decimal, venue: str | None = None,
             price: Decimal | None = None,
             time_in_force: TimeInForce | None = None) -> Order:
        """A new child order of ``parent`` for ``quantity`` (at ``venue``, ``price`` and
        ``time_in_force``, by default the parent's; an ExpireTime only with GTD), stored and
        then placed. Raises ValueError when the parent is
        not being worked (closed, being cancelled, its session's kill switch engaged) or when
        its open children and fills would come to more than its quantity (Invariant 10)."""
        p = parent.pending
        if not (self.book.holds(parent) and parent.is_open) or p is not None:
            raise ValueError(f"{parent.order_id}: not being worked ({parent.status.name}"
                             f"{', ' + p.kind + ' pending' if p is not None else ''})")
        if self.risk.is_killed(parent.session_id):
            raise ValueError(f"{parent.order_id}: the kill switch of its session is engaged")
        working = self.working(parent)
        if quantity <= 0 or parent.cum_qty + working + quantity > parent.quantity:
            raise ValueError(f"{parent.order_id}: a child of {quantity} would take its venue "
                             f"orders past its quantity {parent.quantity} (filled "
                             f"{parent.cum_qty}, working {working})")
        if venue is None and self.routed(parent):
            return self._open_routed(parent, quantity, price, time_in_force)
        venue = venue or parent.venue
        conn = self.connectors[venue]
        order_id = str(self.recorder.take_id("order"))
        terms: dict[str, Any] = parent.terms()
        terms.update(cl_ord_id="", quantity=quantity)
        if price is not None:
            terms["price"] = price
        if time_in_force is not None:
            terms["time_in_force"] = time_in_force
        if terms["time_in_force"] is not TimeInForce.GTD:
            terms["expire_time_ns"] = None
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

    def _open_routed(self, parent: Order, quantity: Decimal, price: Decimal | None,
                     time_in_force: TimeInForce | None) -> Order:
        """A child of a routed parent: split by the router across venues, one child per
        share; the first is returned. ValueError when nothing can be routed."""
        if self.split is None:
            raise ValueError(f"{parent.order_id}: the smart order router is not offered here")
        tif = time_in_force or parent.time_in_force
        opened = [self.open(parent, share.quantity, share.venue, share.price, tif)
                  for share in self.split(parent, quantity, price, tif)]
        if not opened:
            raise ValueError(f"{parent.order_id}: no venue can take {quantity} now")
        return opened[0]

    def cancel(self, child: Order, why: str) -> None:
        """Cancel ``child`` at its venue (its parent hears of the outcome)."""
        if child.pending is not None or not child.is_open:
            return
        data = {"cl_ord_id": child.cl_ord_id, "orig_cl_ord_id": child.cl_ord_id, "why": why}
        if self.recorder.record(child, "cancel_requested", data) is not None:
            self.tasks.spawn(self.venue.cancel(child))

    # ---- the parent's events, told to the client --------------------------------------------

    def acknowledge(self, parent: Order, text: str | None = None) -> None:
        """The strategy took the parent on (ExecutionReport New, saying ``text``)."""
        self.recorder.record(parent, "accepted", {},
                             Execution(self.recorder.exec_id(parent), EXEC_NEW, text=text))

    def fill(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        """``ev`` (a child's fill) fills the parent as much."""
        d = ev.data
        qty, px = Decimal(d["quantity"]), Decimal(d["price"])
        trade = f"{child.order_id}.{d['trade_id']}"
        done = self.recorder.record(parent, "fill", {"trade_id": trade, "quantity": d["quantity"],
                                                     "price": d["price"]},
                                    Execution(f"{parent.order_id}.T{trade}", EXEC_TRADE,
                                              last_qty=qty, last_px=px, last_mkt=child.venue))
        if done is None and trade not in parent.trade_ids:
            # the parent cannot take it (closed, or it would go past its quantity): never
            # silently (Invariant 10 says the children never add up to more)
            log.error("%s: the fill %s of its child %s does not fit the parent (%s, filled %s "
                      "of %s)", parent.order_id, d["trade_id"], child.order_id,
                      parent.status.name, parent.cum_qty, parent.quantity)

    def settle(self, parent: Order, child: Order, ev: OrderEvent, text: str) -> None:
        """What most strategies do with a child's event: a fill fills the parent; once no
        child is open the parent, still open, is canceled with ``text``."""
        if ev.kind == "fill":
            self.fill(parent, child, ev)
        if not child.is_open and parent.is_open and not any(
            c.is_open for c in self.of(parent)
        ):
            self.cancel_done(parent, text)

    def cancel_all(self, parent: Order, why: str) -> None:
        """Cancel every open child; the parent is canceled now when none is open."""
        live = [c for c in self.of(parent) if c.is_open]
        for child in live:
            self.cancel(child, why)
        if not live and parent.is_open:
            self.cancel_done(parent, why)

    def resume_pending(self, parent: Order, strategy: Strategy) -> bool:
        """What a strategy's ``resume`` does first: a pending cancel is carried out, a pending
        replace too (it resumes the parent once done), a parent never acknowledged is started.
        True when that was all (the parent is not to be worked on now)."""
        pending = parent.pending
        if pending is not None and pending.kind == "cancel":
            strategy.cancel(parent)
            return True
        if pending is not None and pending.kind == "replace":
            strategy.replace(parent)  # (once carried out, the strategy resumes the parent)
            return True
        if parent.status is OrdStatus.PENDING_NEW and not self.of(parent):
            strategy.start(parent)
            return True
        return False

    def keep_cancelling(self, parent: Order, why: str, ending: Callable[[], bool]) -> None:
        """While ``ending()`` (the parent is being cancelled, or its time is up), the children
        whose cancel the venue refused are asked again every :data:`SWEEP_SECONDS`, until
        none is open: one refusal never leaves the parent open nor its cancel unanswered."""
        def sweep() -> None:
            if not (parent.is_open and self.book.holds(parent) and ending()):
                return
            live = [c for c in self.of(parent) if c.is_open]
            for child in live:
                if not cancelling(child):
                    log.warning("%s: child %s is still open: its cancel is asked again",
                                parent.order_id, child.order_id)
                    self.cancel(child, why)
            if live:
                self.tasks.later(SWEEP_SECONDS, sweep)

        if any(c.is_open for c in self.of(parent)):
            self.tasks.later(SWEEP_SECONDS, sweep)

    # ---- a parent's replace ------------------------------------------------------------------

    def replacing(self, parent: Order) -> bool:
        """Whether ``parent`` has a replace in flight: from the client's request on (also
        before its strategy is told, and after a restart until it is told again) its
        children's events are only accounted (:meth:`replace_event`), never acted on."""
        p = parent.pending
        return p is not None and p.kind == "replace"

    def replace(self, parent: Order, strategy: Strategy) -> None:
        """Carry out ``parent``'s pending replace (quantity, limit price, end time): its open
        children are cancelled; once none is open the parent is Replaced with its new terms
        -- or the replace refused when what filled meanwhile leaves nothing under the new
        quantity -- and ``strategy`` works it again from them (``resume``). Until then the
        strategy opens no child (:meth:`open` refuses)."""
        self._replacing[parent.order_id] = strategy
        live = [c for c in self.of(parent) if c.is_open]
        for child in live:
            self.cancel(child, "its parent is being replaced")
        if live:
            self.keep_cancelling(parent, "its parent is being replaced",
                                 lambda: self.replacing(parent))
        else:
            self._replaced(parent)

    def replace_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        """A child's event while ``parent``'s replace is in flight: a fill fills the parent;
        once the replace is being carried out and no child is open, it is done."""
        if ev.kind == "fill":
            self.fill(parent, child, ev)
        if not parent.is_open:
            self._replacing.pop(parent.order_id, None)
        elif parent.order_id in self._replacing and not any(c.is_open for c in self.of(parent)):
            self._replaced(parent)

    def _replaced(self, parent: Order) -> None:
        strategy = self._replacing.pop(parent.order_id)
        p = parent.pending
        if p is None or p.kind != "replace":
            return
        quantity = p.quantity if p.quantity is not None else parent.quantity
        if parent.cum_qty >= quantity:
            self.refuse(parent, f"too late: {parent.cum_qty} filled while the replace was "
                        f"being carried out", fixmap.CXL_REJ_TOO_LATE)
            # (refuse_pending carried out a cancel that waited for the replace, if any)
        else:
            self.recorder.record(parent, "replaced", {}, Execution(
                self.recorder.exec_id(parent), EXEC_REPLACED, cl_ord_id=p.cl_ord_id,
                orig_cl_ord_id=p.orig_cl_ord_id))
            if parent.is_open and parent.cancel_next is not None:
                # a cancel-on-disconnect or kill switch waited for the replace: now
                self.venue.resolved(parent)
        if parent.is_open and self.book.holds(parent) and parent.pending is None:
            strategy.resume(parent)

    def cancel_done(self, parent: Order, text: str) -> None:
        """The parent is over without being filled (its pending cancel, if any, done)."""
        p = parent.pending
        if p is not None and p.why is not None:
            text = f"{p.why}: {text}"
        self.recorder.record(parent, "canceled", {"text": text}, Execution(
            self.recorder.exec_id(parent), EXEC_CANCELED, text=text,
            cl_ord_id=p.cl_ord_id if p is not None else None,
            orig_cl_ord_id=p.orig_cl_ord_id if p is not None and not p.unsolicited else None))

    def step(self, parent: Order, step: int) -> None:
        """The strategy has worked ``parent`` this far (``Order.strategy_step``: stored, not
        told to the client)."""
        self.recorder.record(parent, "step", {"step": step})

    def expire(self, parent: Order, text: str) -> None:
        """The parent reached its end time (ExpireTime, 126) with no open child: Expired, with
        what was filled."""
        self.recorder.record(parent, "expired", {"text": text}, Execution(
            self.recorder.exec_id(parent), EXEC_EXPIRED, text=text))

    def reject(self, parent: Order, text: str, reason: bytes | None = None) -> None:
        """The parent could not be worked at all (OrdRejReason 103 ``reason``, if given)."""
        data = {"text": text, "by": "strategy"}
        if reason is not None:
            data["ord_rej_reason"] = reason.decode()
        self.recorder.record(parent, "rejected", data,
                             Execution(self.recorder.exec_id(parent), EXEC_REJECTED, text=text,
                                       ord_rej_reason=reason))

    def refuse(self, parent: Order, text: str, reason: bytes) -> None:
        """The parent's pending cancel or replace is refused (OrderCancelReject)."""
        self.venue.refuse_pending(parent, text, reason)


class StrategyExecutor:
    """A strategy as an executor: it hears of a request once it is stored; one that could not
    be is refused, as the venue side refuses it (the venue is never called for what the
    store does not have)."""

    def __init__(self, strategy: Strategy, children: Children) -> None:
        self.strategy = strategy
        self.children = children

    async def place(self, o: Order, persisted: Awaitable[None]) -> None:
        try:
            await persisted
        except Exception as exc:
            log.warning("%s: not worked: %s", o.order_id, exc)
            self.children.reject(o, f"not placed: {not_stored(exc, 'the order')}")
            return
        self.strategy.start(o)

    async def cancel(self, o: Order) -> None:
        self.strategy.cancel(o)

    async def replace(self, o: Order, persisted: Awaitable[None] | None) -> None:
        if persisted is not None:
            try:
                await persisted
            except Exception as exc:
                self.children.refuse(o, f"replace not sent: {not_stored(exc, 'the request')}",
                                     fixmap.CXL_REJ_OTHER)
                if o.is_open and self.children.book.holds(o) and o.pending is None:
                    self.strategy.resume(o)  # (it paused for the replace)
                return
        self.strategy.replace(o)


class Orphaned:
    """The strategy of a parent whose own strategy is not configured (any more): its children
    are cancelled and the parent with them, saying why; nothing new is worked."""

    def __init__(self, children: Children) -> None:
        self.children = children

    def _why(self, parent: Order) -> str:
        return f"TargetStrategy {parent.strategy} is not configured here"

    def start(self, parent: Order) -> None:
        self.children.reject(parent, self._why(parent))

    def cancel(self, parent: Order) -> None:
        self.children.cancel_all(parent, self._why(parent))

    def replace(self, parent: Order) -> None:
        self.children.refuse(parent, self._why(parent), fixmap.CXL_REJ_BROKER)

    def resume(self, parent: Order) -> None:
        log.error("%s: %s: its venue orders are cancelled", parent.order_id, self._why(parent))
        if parent.status is OrdStatus.PENDING_NEW and not self.children.of(parent):
            self.start(parent)
        else:
            self.cancel(parent)

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        self.children.settle(parent, child, ev, self._why(parent))
