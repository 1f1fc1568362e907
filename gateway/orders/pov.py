"""POV (percentage of volume): a parent order (TargetStrategy 847 = 2, the FIX standard's
"Participate") that keeps its filled quantity at a rate of the volume the market trades, each
child order (:mod:`.children`) taking what it is behind by.

Parameters, checked when the order arrives (a POV that does not fit is Rejected, saying why):

* the rate: ParticipationRate (849), or the StrategyParametersGrp (957) entry
  ``ParticipationRate`` (FIX 5.0SP2; not both), required: a fraction above 0 and at most
  :data:`MAX_RATE` (0.1 is 10%; above one half the order would be most of the market, and the
  target would chase its own prints). Any other StrategyParameterName (958) is refused.
* start: EffectiveTime (168), else when the order was received; end: ExpireTime (126),
  optional -- without it the POV works until it is filled or canceled (TimeInForce Day or GTC
  does not end it; IOC and FOK are refused). An ExpireTime must be after the start and in the
  future.
* OrdType market or limit.

The market: the venue's public trades of the instrument (a routed POV, ExDestination SOR: the
trades of every venue it may be routed to, its children routed), watched through
:class:`~gateway.orders.ports.MarketView` from when the POV is received until it ends (filled,
canceled, expired) -- a POV whose venue cannot give them (no public feed, not listed, no
snapshot in time) is Rejected, saying so, never worked blind. Trades received from the start
on count; for a limit order only those at or within its limit (a buy's at or under its price,
a sell's at or over), the volume it could have taken part in. **Our own fills count**: they are
part of what the venue trades and its public feed shows them (the simulated venue's included),
so a rate ``r`` means our fills are ``r`` of all the volume printed since the start, ours
included (``r / (1 - r)`` of the others').

The children: the target is ``rate x the market volume counted``, at most the parent's
quantity; when no child is open and it is more than what is filled by at least the venue's
minimum (quantity, and notional at the limit, else the last price), children of the difference
are sent at once (on the lot grid, within the venue's maximum), marketable: a market order IOC,
or a limit order IOC at the parent's price -- what does not fill at once is canceled by the
venue and its quantity given back (the POV is behind again by as much). A child is sent at most
every :data:`DEFAULT_INTERVAL` seconds (``interval``), after the trades that put the POV behind;
what is under the minimum waits for more volume. One child at a time (all pieces of one
decision at once when the venue's maximum splits them).

At its ExpireTime an open child is cancelled and the parent Expired, its Text saying that the
POV ended and how much was filled. A cancel of the parent cancels its children, then the
parent. A replace (OrderQty, Price, ExpireTime) cancels its child, Replaces the parent and
goes on from the new terms with the volume counted so far (stored first). The kill switch and
cancel-on-disconnect cancel it as any order.

After a restart: the market volume counted is stored in the parent's ``strategy_step`` (in
units of :data:`VOLUME_UNIT`, a ``step`` event before each child), so the target goes on from
it; the trades while the gateway was down, and after the last child before it went down, are
not counted. The live children (reconciled with their venues) are adopted, and the public
trades watched again (if they cannot be, the POV is canceled, saying why).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from connectors.base import OrderType, PublicTrade, Side, TimeInForce

from . import fixmap
from .children import Children, cancelling
from .fixmap import PARTICIPATION_RATE
from .lifecycle import OrdStatus
from .model import Order, OrderEvent
from .ports import TradesListener
from .scheduled import NS, BadParameters, no_parameters, window
from .slicing import pieces

log = logging.getLogger("fixgw.orders")

POV = "2"
"""TargetStrategy (847) 2: Participate (FIX standard), a POV."""
MAX_RATE = Decimal("0.5")
DEFAULT_INTERVAL = 1.0
"""Seconds between two children at least."""
VOLUME_UNIT = Decimal("1e-12")
"""The market volume counted is stored in ``strategy_step`` in these units (quantities have at
most 12 decimals: ``fixmap.MAX_DECIMALS``)."""


def participation(o: Order) -> tuple[Decimal, int, int | None]:
    """(rate, start, end) of POV ``o`` from its stored fields; BadParameters says what does
    not fit."""
    no_parameters(o, "POV", frozenset({PARTICIPATION_RATE}))
    start, end = window(o, "POV", end_required=False)
    raw = o.strategy_parameters.get(PARTICIPATION_RATE)
    if raw is None:
        raise BadParameters("a POV needs its rate in ParticipationRate (849) (or the "
                            f"StrategyParameter {PARTICIPATION_RATE})")
    try:
        rate = Decimal(raw.strip())
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or not 0 < rate <= MAX_RATE:
        raise BadParameters(f"ParticipationRate must be above 0 and at most {MAX_RATE} (a "
                            f"fraction: 0.1 is 10%), not {raw!r}")
    return rate, start, end


@dataclass(eq=False)
class _Working:
    """A POV parent being worked."""

    parent: Order
    rate: Decimal
    start_ns: int
    end_ns: int | None
    volume: Decimal
    """The market volume counted since the start."""
    listener: TradesListener
    watching: bool = False
    venues: tuple[str, ...] = ()
    """The venues whose public trades are watched (a routed POV: all of its venues')."""
    decide: asyncio.TimerHandle | None = None
    end: asyncio.TimerHandle | None = None
    last_child_ns: int = 0
    ending: str | None = None
    """Why the parent is ending (its time is up, or it cannot be worked): it ends once no
    child is open."""
    expired: bool = False
    """It ends Expired (its ExpireTime), not Canceled."""


class Pov:
    """The POV strategy (module docstring): one for every POV parent of the gateway;
    ``interval``: the seconds between two children at least."""

    name = "POV"

    def __init__(self, children: Children, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.children = children
        self.interval_ns = int(interval * NS)
        self._working: dict[str, _Working] = {}

    # ---- the Strategy protocol ---------------------------------------------------------------

    def start(self, parent: Order) -> None:
        try:
            rate, start, end = participation(parent)
            if end is not None and end <= time.time_ns():
                raise BadParameters("ExpireTime (126) of a POV is in the past")
        except BadParameters as exc:
            self.children.reject(parent, str(exc), fixmap.ORD_REJ_OTHER)
            return
        w = self._begin(parent, rate, start, end, Decimal(0))
        self.children.tasks.spawn(self._watch(w, first=True))

    def cancel(self, parent: Order) -> None:
        self._stop(parent)
        self.children.cancel_all(parent, "POV canceled")
        self.children.keep_cancelling(parent, "POV canceled", lambda: cancelling(parent))

    def replace(self, parent: Order) -> None:
        w = self._working.get(parent.order_id)
        if w is not None:  # (the volume counted so far is kept for the resume)
            step = int((w.volume / VOLUME_UNIT).to_integral_value(ROUND_FLOOR))
            if step != parent.strategy_step:
                self.children.step(parent, step)
        self._stop(parent)
        self.children.replace(parent, self)

    def resume(self, parent: Order) -> None:
        if self.children.resume_pending(parent, self):
            return
        try:
            rate, start, end = participation(parent)
        except BadParameters as exc:  # (the rules changed since it was accepted)
            log.error("%s: cannot resume: %s", parent.order_id, exc)
            w = self._begin(parent, Decimal(0), parent.created_ns, None, Decimal(0))
            self._closing(w, f"POV not resumed: {exc}")
            return
        volume = parent.strategy_step * VOLUME_UNIT
        w = self._begin(parent, rate, start, end, volume)
        log.info("%s: POV resumed at %s of %s market volume counted, %s of %s filled, %d "
                 "children live", parent.order_id, rate, volume, parent.cum_qty,
                 parent.quantity, sum(1 for c in self.children.of(parent) if c.is_open))
        if end is not None and end <= time.time_ns():
            self._end(w)
            return
        self.children.tasks.spawn(self._watch(w, first=False))

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if ev.kind == "fill":
            self.children.fill(parent, child, ev)
        if not parent.is_open:
            self._stop(parent)
            return
        if child.is_open or any(c.is_open for c in self.children.of(parent)):
            return
        p = parent.pending
        w = self._working.get(parent.order_id)
        if p is not None and p.kind == "cancel":
            self.children.cancel_done(parent, "POV canceled")
        elif w is not None and w.ending is not None:
            self._finish(w)
        elif w is not None:
            self._nudge(w)  # (what a child did not fill is behind again)

    # ---- the market ----------------------------------------------------------------------------

    def _begin(self, parent: Order, rate: Decimal, start: int, end: int | None,
               volume: Decimal) -> _Working:
        self._stop(parent)
        order_id = parent.order_id

        def on_trades(venue: str, trades: Sequence[PublicTrade]) -> None:
            self._on_trades(order_id, trades)

        w = _Working(parent, rate, start, end, volume, on_trades)
        self._working[order_id] = w
        return w

    async def _watch(self, w: _Working, *, first: bool) -> None:
        """Watch the venue's public trades for ``w``; then acknowledge the parent (``first``)
        or go on. A feed that cannot be had rejects a new POV, cancels a resumed one."""
        parent = w.parent
        market = self.children.market
        venues = (self.children.routes(parent) if self.children.routed(parent)
                  else [parent.venue])
        watched = []
        for venue in venues:
            try:
                if await market.watch(venue, parent.symbol, w.listener):
                    watched.append(venue)
            except Exception as exc:  # (the venue's instrument list could not be had, ...)
                log.warning("%s: no public trades of %s at %s: %s", parent.order_id,
                            parent.symbol, venue, exc)
        ok = bool(watched)
        w.venues = tuple(watched)
        w.watching = ok
        if self._working.get(parent.order_id) is not w or not self._held(parent):
            # (canceled or ended meanwhile)
            for venue in watched:
                market.unwatch(venue, parent.symbol, w.listener)
            w.watching = False
            return
        if not ok:
            why = (f"a POV needs the public trades of {parent.symbol} at "
                   f"{', '.join(venues) or parent.venue}, which cannot be had")
            self._stop(parent)
            if first and parent.status is OrdStatus.PENDING_NEW:
                self.children.reject(parent, why, fixmap.ORD_REJ_OTHER)
            else:
                log.error("%s: %s: the POV is canceled", parent.order_id, why)
                self._closing(w, f"POV canceled: {why}")
            return
        if first and parent.status is OrdStatus.PENDING_NEW:
            self.children.acknowledge(parent)
        if not self._workable(parent):  # (a cancel came while it was being acknowledged)
            return
        if w.end_ns is not None:
            w.end = self.children.tasks.later((w.end_ns - time.time_ns()) / NS,
                                              lambda: self._end(w))
        self._nudge(w)

    def _on_trades(self, order_id: str, trades: Sequence[PublicTrade]) -> None:
        w = self._working.get(order_id)
        if w is None:
            return
        parent = w.parent
        if not self._workable(parent):
            if not parent.is_open or not self.children.book.holds(parent):
                self._stop(parent)
            return
        if w.ending is not None or time.time_ns() < w.start_ns:
            return
        limit = parent.price if parent.type is OrderType.LIMIT else None
        for t in trades:
            if limit is None or (t.price <= limit if parent.side is Side.BUY
                                 else t.price >= limit):
                w.volume += t.size
        self._nudge(w)

    # ---- the children --------------------------------------------------------------------------

    def _nudge(self, w: _Working) -> None:
        """Decide about a child now, or once the interval since the last one has passed."""
        if w.decide is not None or w.ending is not None:
            return
        wait = (w.last_child_ns + self.interval_ns - time.time_ns()) / NS
        w.decide = self.children.tasks.later(wait, lambda: self._decide(w))

    def _decide(self, w: _Working) -> None:
        w.decide = None
        parent = w.parent
        if (self._working.get(parent.order_id) is not w or w.ending is not None
                or not self._workable(parent)):
            return
        if any(c.is_open for c in self.children.of(parent)):
            return  # (its end brings the next decision)
        target = min(parent.quantity, w.rate * w.volume)
        behind = target - parent.cum_qty
        if behind <= 0:
            return
        inst = self.children.instrument(parent)
        if inst is None:  # (no lot, no minimum: nothing can be sized)
            self._closing(w, f"POV canceled: {parent.venue} does not list {parent.symbol} any "
                             "more")
            return
        price = parent.price if parent.price is not None else self.children.last_price(parent)
        sizes = pieces(behind, inst, price)
        if not sizes:
            return  # under the venue's minimum: wait for more volume
        step = int((w.volume / VOLUME_UNIT).to_integral_value(ROUND_FLOOR))
        if step != parent.strategy_step:
            self.children.step(parent, step)
        w.last_child_ns = time.time_ns()
        try:
            for size in sizes:
                self.children.open(parent, size, time_in_force=TimeInForce.IOC)
        except ValueError as exc:
            log.warning("%s: POV child not sent: %s", parent.order_id, exc)

    # ---- the end -------------------------------------------------------------------------------

    def _end(self, w: _Working) -> None:
        """The ExpireTime: cancel what is open; the parent ends once nothing is."""
        w.end = None
        if self._working.get(w.parent.order_id) is w and self._workable(w.parent):
            w.expired = True
            self._closing(w, "POV ended")

    def _closing(self, w: _Working, why: str) -> None:
        """End ``w``'s parent (Expired when its time is up, else Canceled with ``why``) once
        its open children are cancelled."""
        parent = w.parent
        w.ending = why
        if w.decide is not None:
            self.children.tasks.cancel_timer(w.decide)
            w.decide = None
        live = [c for c in self.children.of(parent) if c.is_open]
        for child in live:
            self.children.cancel(child, why)
        if not live:
            self._finish(w)
        else:
            self.children.keep_cancelling(parent, why, lambda: w.ending is not None
                                          and self._working.get(parent.order_id) is w)

    def _finish(self, w: _Working) -> None:
        parent = w.parent
        why = w.ending or "POV ended"
        self._stop(parent)
        if w.expired:
            self.children.expire(parent, f"POV ended at its ExpireTime: {parent.cum_qty} of "
                                         f"{parent.quantity} filled")
        else:
            self.children.cancel_done(parent, f"{why}: {parent.cum_qty} of {parent.quantity} "
                                              "filled")

    def _stop(self, parent: Order) -> None:
        """Forget ``parent``: its timers, its watch of the market."""
        w = self._working.pop(parent.order_id, None)
        if w is None:
            return
        for handle in (w.decide, w.end):
            if handle is not None:
                self.children.tasks.cancel_timer(handle)
        w.decide = w.end = None
        if w.watching:
            w.watching = False
            for venue in w.venues:
                self.children.market.unwatch(venue, parent.symbol, w.listener)

    def _held(self, parent: Order) -> bool:
        return parent.is_open and self.children.book.holds(parent)

    def _workable(self, parent: Order) -> bool:
        """Whether ``parent`` is still this strategy's to work (open, held here, no cancel or
        replace in flight)."""
        return self._held(parent) and parent.pending is None
