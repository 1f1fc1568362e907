"""A parent worked in slices over a window of time, each slice a child order (:mod:`.children`):
what the TWAP (:mod:`.twap`) and the VWAP (:mod:`.vwap`) have in common. They differ only in
how much each slice sends (a :class:`Schedule`); this module owns the rest.

The window (:func:`window`): from EffectiveTime (168), else from when the order was received,
to ExpireTime (126). The order is market or limit (a limit price caps every child), not IOC or
FOK (it works until its end). What does not fit is Rejected, saying why.

The slices (:class:`Plan`): slice ``i`` of ``n`` is due at ``start + i * (end - start) / n``
plus a random delay of up to :data:`JITTER` of a slice interval, drawn from a generator seeded
with the parent's OrderID and ``i`` -- the same schedule after a restart. When a slice is due
the schedule says what it sends, from what is left (the parent's quantity less what is filled
and what open children may still fill): a child that ends unfilled (canceled, expired,
rejected) so gives its quantity back to the later slices, and :meth:`Children.open` keeps the
children within the parent (Invariant 10).

Children are limit orders GTC at the parent's price (market orders IOC). At the end time every
open child is cancelled; once none is open the parent is Expired, its Text saying that the
strategy ended and how much was filled. A cancel of the parent cancels its children, then the
parent. A replace (OrderQty, Price, ExpireTime) cancels the open children, then Replaces the
parent and goes on from the new terms: the schedule recomputed for the new end, what is left
spread over the slices left (:meth:`Children.replace`).

The parent's ``strategy_step`` (a stored ``step`` event before each slice's child) is how many
slices were gone through: after a restart the schedule is recomputed from the stored fields,
the live children (reconciled with their venues) are adopted, and slicing goes on after the
last slice gone through -- a slice is never sent twice. Slices whose time passed while the
gateway was down are not caught up one by one: the next slice due takes what the schedule
says is due by then.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from connectors.base import Instrument, OrderType, TimeInForce

from . import fixmap
from .children import Children, cancelling
from .model import Order, OrderEvent

log = logging.getLogger("fixgw.orders")

MAX_SLICES = 100
JITTER = 0.2
"""A slice is sent up to this fraction of a slice interval after its even time (never before,
so the first slice is never early and the last has most of an interval to fill)."""

NS = 1_000_000_000


class BadParameters(ValueError):  # noqa: N818 - read as "the parameters are bad"
    """The order's strategy parameters do not fit: the text says why (the client is told)."""


def window(o: Order, name: str, *, end_required: bool = True) -> tuple[int, int | None]:
    """(start, end) of ``o`` worked by strategy ``name``: from EffectiveTime (168), else when
    it was received, to ExpireTime (126) -- None when it has none and ``end_required`` is
    false. Checks the OrdType (market or limit) and TimeInForce (not IOC or FOK) too;
    BadParameters says what does not fit."""
    if o.type not in (OrderType.MARKET, OrderType.LIMIT):
        raise BadParameters(f"a {name} is a market or limit order, not OrdType {o.type.value}")
    if o.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        until = "its ExpireTime" if end_required else "filled, canceled or its ExpireTime"
        raise BadParameters(f"a {name} cannot be TimeInForce {o.time_in_force.value} (it works "
                            f"until {until})")
    start = o.effective_time_ns if o.effective_time_ns is not None else o.created_ns
    end = o.expire_time_ns
    if end is None:
        if end_required:
            raise BadParameters(f"a {name} needs its end time in ExpireTime (126)")
        return start, None
    if end <= start and o.effective_time_ns is None:
        raise BadParameters(f"ExpireTime (126) of a {name} is in the past")
    if end <= start:
        raise BadParameters(f"ExpireTime (126) of a {name} must be after its start "
                            "(EffectiveTime (168), or when it is received)")
    return start, end


def no_parameters(o: Order, name: str, known: frozenset[str] = frozenset()) -> None:
    """BadParameters when ``o`` has a StrategyParameterName (958) not in ``known``."""
    unknown = sorted(set(o.strategy_parameters) - known)
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise BadParameters(f"StrategyParameterName (958) {', '.join(unknown)} is not a {name} "
                            f"parameter ({takes})")


def slice_count(start_ns: int, end_ns: int, slice_seconds: float) -> int:
    """One slice per ``slice_seconds`` of the window (rounded), at least 1, at most
    :data:`MAX_SLICES`."""
    per = int(slice_seconds * NS)
    return min(MAX_SLICES, max(1, (end_ns - start_ns + per // 2) // per))


@dataclass(frozen=True, slots=True)
class Plan:
    """When the ``slices`` slices of a parent over [start, end] are due."""

    order_id: str
    start_ns: int
    end_ns: int
    slices: int

    @property
    def interval_ns(self) -> int:
        return (self.end_ns - self.start_ns) // self.slices

    def boundary_ns(self, i: int) -> int:
        """Where slice ``i`` starts (``i == slices``: the end)."""
        return self.end_ns if i >= self.slices else self.start_ns + i * self.interval_ns

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


class Schedule(Protocol):
    """What a strategy worked in slices decides itself (:class:`Sliced` does the rest)."""

    name: str
    """The strategy's name in the texts the client reads ("TWAP")."""

    def plan(self, o: Order) -> Plan:
        """The slices of ``o`` from its stored fields; BadParameters says what does not fit."""

    def quantities(self, o: Order, p: Plan, i: int, left: Decimal, inst: Instrument | None,
                   price: Decimal | None) -> list[Decimal]:
        """The children slice ``i`` sends (none: merged into later slices), ``left`` being
        what is not filled nor working; each on the lot grid and within the venue's limits
        (:mod:`.slicing`)."""


class Sliced:
    """A strategy (:class:`~gateway.orders.executor.Strategy`) working its parents in slices
    over their window (module docstring), as ``schedule`` sizes them; one for every parent of
    its TargetStrategy."""

    def __init__(self, children: Children, schedule: Schedule) -> None:
        self.children = children
        self.schedule = schedule
        self.name = schedule.name
        self._slice_timer: dict[str, asyncio.TimerHandle] = {}
        self._end_timer: dict[str, asyncio.TimerHandle] = {}
        self._plans: dict[str, Plan] = {}
        self._ended: set[str] = set()
        """Parents past their end time, waiting for their children's cancels."""
        self._closing: dict[str, str] = {}
        """Parents that cannot be worked any more, waiting for their children's cancels ->
        the Text of their Canceled report."""

    # ---- the Strategy protocol ---------------------------------------------------------------

    def start(self, parent: Order) -> None:
        try:
            p = self.schedule.plan(parent)
            if p.end_ns <= time.time_ns():
                raise BadParameters(f"ExpireTime (126) of a {self.name} is in the past")
        except BadParameters as exc:
            self.children.reject(parent, str(exc), fixmap.ORD_REJ_OTHER)
            return
        self.children.acknowledge(parent)
        if self._working(parent):  # (a cancel may have come while it was being stored)
            self._work(parent, p)

    def cancel(self, parent: Order) -> None:
        self._stop(parent)
        why = f"{self.name} canceled"
        self.children.cancel_all(parent, why)
        self.children.keep_cancelling(parent, why, lambda: cancelling(parent))

    def replace(self, parent: Order) -> None:
        self._stop(parent)  # (its timers are armed again from the new terms)
        self.children.replace(parent, self)

    def resume(self, parent: Order) -> None:
        if self.children.resume_pending(parent, self):
            return
        try:
            p = self.schedule.plan(parent)
        except BadParameters as exc:  # (the rules changed since it was accepted)
            log.error("%s: cannot resume: %s", parent.order_id, exc)
            self._stop(parent)
            why = f"{self.name} not resumed: {exc}"
            self._closing[parent.order_id] = why
            self.children.cancel_all(parent, why)  # (the parent too, when none is open)
            self.children.keep_cancelling(parent, why,
                                          lambda: parent.order_id in self._closing)
            return
        log.info("%s: %s resumed after slice %d of %d, %d children live", parent.order_id,
                 self.name, parent.strategy_step, p.slices,
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
            self.children.cancel_done(parent, f"{self.name} canceled")
        elif parent.order_id in self._ended:
            self._finish(parent)
        elif parent.order_id in self._closing:
            self.children.cancel_done(parent, self._closing.pop(parent.order_id))

    # ---- the schedule ------------------------------------------------------------------------

    def _work(self, parent: Order, p: Plan) -> None:
        """Arm the timers of ``parent``: its next slice and its end."""
        self._stop(parent)
        self._plans[parent.order_id] = p
        now = time.time_ns()
        self._end_timer[parent.order_id] = self.children.tasks.later(
            (p.end_ns - now) / NS, lambda: self._end(parent))
        self._arm_slice(parent, p, now)

    def _arm_slice(self, parent: Order, p: Plan, now: int) -> None:
        step = parent.strategy_step
        if step >= p.slices:
            return
        self._slice_timer[parent.order_id] = self.children.tasks.later(
            (p.due_ns(step) - now) / NS, lambda: self._slice(parent))

    def _stop(self, parent: Order) -> None:
        for timers in (self._slice_timer, self._end_timer):
            handle = timers.pop(parent.order_id, None)
            if handle is not None:
                self.children.tasks.cancel_timer(handle)
        self._plans.pop(parent.order_id, None)
        self._ended.discard(parent.order_id)
        if not parent.is_open:
            self._closing.pop(parent.order_id, None)

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
        sizes = self.schedule.quantities(parent, p, i, left, inst, price)
        self.children.step(parent, i + 1)
        if sizes:
            tif = TimeInForce.IOC if parent.type is OrderType.MARKET else TimeInForce.GTC
            try:
                for size in sizes:
                    self.children.open(parent, size, time_in_force=tif)
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
        why = f"{self.name} ended"
        live = [c for c in self.children.of(parent) if c.is_open]
        for child in live:
            self.children.cancel(child, why)
        if not live:
            self._finish(parent)
        else:
            self.children.keep_cancelling(parent, why, lambda: parent.order_id in self._ended)

    def _finish(self, parent: Order) -> None:
        self._stop(parent)
        self.children.expire(parent, f"{self.name} ended at its ExpireTime: {parent.cum_qty} "
                                     f"of {parent.quantity} filled")
