"""TWAP: a parent order (TargetStrategy 847 = 1000, :data:`gateway.fix.custom.TWAP`) worked in
slices spread evenly over time, each a child order (:mod:`.children`).

Parameters, checked when the order arrives (a TWAP that does not fit is Rejected, saying why):

* start: EffectiveTime (168), else when the order was received; end: ExpireTime (126),
  required, after the start and in the future.
* slices: StrategyParametersGrp (957) entry ``Slices`` (FIX 5.0SP2), an integer from 1 to
  :data:`MAX_SLICES`; by default (and on FIX 4.4, which has no such group) one per
  :data:`DEFAULT_SLICE_SECONDS` of the window (rounded), at least 1, at most :data:`MAX_SLICES`. Any
  other StrategyParameterName (958) is refused.
* OrdType market or limit; a limit price caps every child. TimeInForce IOC and FOK are
  refused (the end is the ExpireTime).

The schedule (:class:`Plan`): slice ``i`` of ``n`` is due at ``start + i * (end - start) / n``
plus a random delay of up to :data:`JITTER` of a slice interval, drawn from a generator seeded
with the parent's OrderID and ``i`` -- the same schedule after a restart. When a slice is due
it takes what is left (the parent's quantity less what is filled and what open children may
still fill) divided by the slices left, rounded down to the instrument's lot; a quantity under
the venue's minimum quantity or minimum notional (at the limit price, else the last price)
sends nothing and is merged into the later slices (the last slice takes all that is left). A
child that ends unfilled (canceled, expired, rejected) so gives its quantity back to the
later slices; :meth:`Children.open` keeps the children within the parent (Invariant 10).

Children are limit orders GTC at the parent's price (market orders IOC). At the end time every
open child is cancelled; once none is open the parent is Expired, its Text saying that the TWAP
ended and how much was filled. A cancel of the parent cancels its children, then the parent. A
replace (OrderQty, Price, ExpireTime) cancels the open children, then Replaces the parent and
goes on from the new terms: the schedule recomputed for the new end, what is left spread over
the slices left (:meth:`Children.replace`).

The parent's ``strategy_step`` (a stored ``step`` event before each slice's child) is how many
slices were gone through: after a restart the schedule is recomputed from the stored fields,
the live children (reconciled with their venues) are adopted, and slicing goes on after the
last slice gone through -- a slice is never sent twice. Slices whose time passed while the
gateway was down are not caught up one by one: the next slice due takes what is left over the
slices left.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from connectors.base import Instrument, OrderType, TimeInForce

from . import fixmap
from .children import Children, cancelling
from .model import ZERO, Order, OrderEvent

log = logging.getLogger("fixgw.orders")

DEFAULT_SLICE_SECONDS = 10
"""Without a ``Slices`` parameter (FIX 4.4), one slice per this many seconds of the window."""
MAX_SLICES = 100
JITTER = 0.2
"""A slice is sent up to this fraction of a slice interval after its even time (never before,
so the first slice is never early and the last has most of an interval to fill)."""
SLICES = "Slices"
"""The StrategyParameterName (958) of the number of slices."""

_NS = 1_000_000_000


class BadTwap(ValueError):  # noqa: N818 - read as "the TWAP is bad"
    """The order's TWAP parameters do not fit: the text says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """When the ``slices`` slices of a TWAP over [start, end] are due."""

    order_id: str
    start_ns: int
    end_ns: int
    slices: int

    @property
    def interval_ns(self) -> int:
        return (self.end_ns - self.start_ns) // self.slices

    def due_ns(self, i: int) -> int:
        """When slice ``i`` (from 0) is due: its even time plus its random delay."""
        rng = random.Random(f"{self.order_id}:{i}")  # noqa: S311 - a schedule, not a secret
        return self.start_ns + i * self.interval_ns + int(rng.random() * JITTER *
                                                           self.interval_ns)

    def due_by(self, now_ns: int, first: int) -> int:
        """The last slice from ``first`` due by ``now_ns`` (``first`` when none is)."""
        i = first
        while i + 1 < self.slices and self.due_ns(i + 1) <= now_ns:
            i += 1
        return i


def plan(o: Order, slice_seconds: float = DEFAULT_SLICE_SECONDS) -> Plan:
    """The schedule of TWAP ``o`` from its stored fields (one slice per ``slice_seconds``
    without a Slices parameter); BadTwap says what does not fit."""
    unknown = sorted(set(o.strategy_parameters) - {SLICES})
    if unknown:
        raise BadTwap(f"StrategyParameterName (958) {', '.join(unknown)} is not a TWAP "
                      f"parameter (it takes {SLICES})")
    if o.type not in (OrderType.MARKET, OrderType.LIMIT):
        raise BadTwap(f"a TWAP is a market or limit order, not OrdType {o.type.value}")
    if o.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        raise BadTwap(f"a TWAP cannot be TimeInForce {o.time_in_force.value} (it works until "
                      "its ExpireTime)")
    if o.expire_time_ns is None:
        raise BadTwap("a TWAP needs its end time in ExpireTime (126)")
    start = o.effective_time_ns if o.effective_time_ns is not None else o.created_ns
    end = o.expire_time_ns
    if end <= start and o.effective_time_ns is None:
        raise BadTwap("ExpireTime (126) of a TWAP is in the past")
    if end <= start:
        raise BadTwap("ExpireTime (126) of a TWAP must be after its start (EffectiveTime "
                      "(168), or when it is received)")
    raw = o.strategy_parameters.get(SLICES)
    if raw is None:
        per = int(slice_seconds * _NS)
        slices = min(MAX_SLICES, max(1, (end - start + per // 2) // per))  # (rounded)
    else:
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_SLICES:
            raise BadTwap(f"StrategyParameter {SLICES} must be an integer from 1 to "
                          f"{MAX_SLICES}, not {raw!r}")
        slices = int(raw)
    return Plan(o.order_id, start, end, slices)


def last_pieces(left: Decimal, inst: Instrument | None, price: Decimal | None
                ) -> list[Decimal]:
    """The last slice takes all that is left: in children of at most the venue's maximum
    quantity (each on the lot grid, none under its minimum)."""
    pieces: list[Decimal] = []
    while left > 0:
        piece = slice_quantity(left, 1, inst, price)
        if piece <= 0:
            break
        pieces.append(piece)
        left -= piece
    return pieces


def minimum_quantity(inst: Instrument, price: Decimal | None) -> Decimal:
    """The smallest order the venue takes: its minimum quantity, and its minimum notional at
    ``price`` (when known), on the lot grid."""
    least = inst.min_qty
    if price is not None and price > 0 and inst.min_notional > 0:
        need = inst.min_notional / price
        if inst.lot_size > 0:
            need = (need / inst.lot_size).to_integral_value(ROUND_CEILING) * inst.lot_size
        least = max(least, need)
    return least


def slice_quantity(left: Decimal, slices_left: int, inst: Instrument | None,
                   price: Decimal | None) -> Decimal:
    """The quantity of a slice: ``left`` over ``slices_left``, on the lot grid, within the
    venue's limits; zero when it would be below its minimum (merged into later slices)."""
    if left <= 0:
        return ZERO
    q = left if slices_left <= 1 else left / slices_left
    if inst is None:
        return q if slices_left <= 1 else ZERO  # no rules known: one child, at the end
    if inst.lot_size > 0:
        q = (q / inst.lot_size).to_integral_value(ROUND_FLOOR) * inst.lot_size
    if inst.max_qty is not None:
        q = min(q, inst.max_qty)
    if q <= 0 or q < minimum_quantity(inst, price):
        return ZERO
    return q


class Twap:
    """The TWAP strategy (module docstring): one for every TWAP parent of the gateway;
    ``slice_seconds``: the slice interval when the order does not say how many slices."""

    def __init__(self, children: Children, *,
                 slice_seconds: float = DEFAULT_SLICE_SECONDS) -> None:
        self.children = children
        self.slice_seconds = slice_seconds
        self._slice_timer: dict[str, asyncio.TimerHandle] = {}
        self._end_timer: dict[str, asyncio.TimerHandle] = {}
        self._plans: dict[str, Plan] = {}
        self._ended: set[str] = set()
        """Parents past their end time, waiting for their children's cancels."""

    # ---- the Strategy protocol ---------------------------------------------------------------

    def start(self, parent: Order) -> None:
        try:
            p = plan(parent, self.slice_seconds)
            if p.end_ns <= time.time_ns():
                raise BadTwap("ExpireTime (126) of a TWAP is in the past")
        except BadTwap as exc:
            self.children.reject(parent, str(exc), fixmap.ORD_REJ_OTHER)
            return
        self.children.acknowledge(parent)
        if self._working(parent):  # (a cancel may have come while it was being stored)
            self._work(parent, p)

    def cancel(self, parent: Order) -> None:
        self._stop(parent)
        self.children.cancel_all(parent, "TWAP canceled")
        self.children.keep_cancelling(parent, "TWAP canceled", lambda: cancelling(parent))

    def replace(self, parent: Order) -> None:
        self._stop(parent)  # (its timers are armed again from the new terms)
        self.children.replace(parent, self)

    def resume(self, parent: Order) -> None:
        if self.children.resume_pending(parent, self):
            return
        try:
            p = plan(parent, self.slice_seconds)
        except BadTwap as exc:  # (the rules changed since it was accepted)
            log.error("%s: cannot resume: %s", parent.order_id, exc)
            self._stop(parent)
            self.children.cancel_all(parent, f"TWAP not resumed: {exc}")
            return
        log.info("%s: TWAP resumed after slice %d of %d, %d children live", parent.order_id,
                 parent.strategy_step, p.slices,
                 sum(1 for c in self.children.of(parent) if c.is_open))
        self._work(parent, p)

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if ev.kind == "fill":
            self.children.fill(parent, child, ev)
        if not parent.is_open:
            self._stop(parent)
            return
        if child.is_open or any(c.is_open for c in self.children.of(parent)):
            return
        # no child open: what they did not fill goes back to the later slices, unless the
        # parent is being cancelled or its time is up
        p = parent.pending
        if p is not None and p.kind == "cancel":
            self.children.cancel_done(parent, "TWAP canceled")
        elif parent.order_id in self._ended:
            self._finish(parent)

    # ---- the schedule ------------------------------------------------------------------------

    def _work(self, parent: Order, p: Plan) -> None:
        """Arm the timers of ``parent``: its next slice and its end."""
        self._stop(parent)
        self._plans[parent.order_id] = p
        now = time.time_ns()
        self._end_timer[parent.order_id] = self.children.tasks.later(
            (p.end_ns - now) / _NS, lambda: self._end(parent))
        self._arm_slice(parent, p, now)

    def _arm_slice(self, parent: Order, p: Plan, now: int) -> None:
        step = parent.strategy_step
        if step >= p.slices:
            return
        self._slice_timer[parent.order_id] = self.children.tasks.later(
            (p.due_ns(step) - now) / _NS, lambda: self._slice(parent))

    def _stop(self, parent: Order) -> None:
        for timers in (self._slice_timer, self._end_timer):
            handle = timers.pop(parent.order_id, None)
            if handle is not None:
                self.children.tasks.cancel_timer(handle)
        self._plans.pop(parent.order_id, None)
        self._ended.discard(parent.order_id)

    def _working(self, parent: Order) -> bool:
        """Whether ``parent`` is still this strategy's to work (open, held here, no cancel or
        replace in flight)."""
        return parent.is_open and self.children.book.holds(parent) and parent.pending is None

    def _slice(self, parent: Order) -> None:
        self._slice_timer.pop(parent.order_id, None)
        p = self._plans.get(parent.order_id)
        if p is None or not self._working(parent):
            return
        now = time.time_ns()
        i = p.due_by(now, parent.strategy_step)
        left = parent.quantity - parent.cum_qty - self.children.working(parent)
        inst = self.children.instrument(parent)
        price = parent.price if parent.price is not None else self.children.last_price(parent)
        qty = slice_quantity(left, p.slices - i, inst, price)
        self.children.step(parent, i + 1)
        if qty > 0:
            tif = TimeInForce.IOC if parent.type is OrderType.MARKET else TimeInForce.GTC
            pieces = last_pieces(left, inst, price) if i + 1 >= p.slices else [qty]
            try:
                for piece in pieces:
                    self.children.open(parent, piece, time_in_force=tif)
            except ValueError as exc:
                log.warning("%s: slice %d not sent: %s", parent.order_id, i + 1, exc)
        else:
            log.info("%s: slice %d of %d merged into the next (%s left)", parent.order_id,
                     i + 1, p.slices, left)
        self._arm_slice(parent, p, now)

    def _end(self, parent: Order) -> None:
        """The end time: cancel what is open; the parent ends once nothing is."""
        self._end_timer.pop(parent.order_id, None)
        slice_timer = self._slice_timer.pop(parent.order_id, None)
        if slice_timer is not None:
            self.children.tasks.cancel_timer(slice_timer)
        if not self._working(parent):
            return
        self._ended.add(parent.order_id)
        live = [c for c in self.children.of(parent) if c.is_open]
        for child in live:
            self.children.cancel(child, "TWAP ended")
        if not live:
            self._finish(parent)
        else:
            self.children.keep_cancelling(parent, "TWAP ended",
                                          lambda: parent.order_id in self._ended)

    def _finish(self, parent: Order) -> None:
        self._stop(parent)
        self.children.expire(parent, f"TWAP ended at its ExpireTime: {parent.cum_qty} of "
                                     f"{parent.quantity} filled")
