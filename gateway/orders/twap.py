"""TWAP: a parent order (TargetStrategy 847 = 1000, :data:`gateway.fix.custom.TWAP`) worked in
slices spread evenly over time, each a child order (:mod:`.scheduled` has the window, the slice
times, the end, cancel, restart; this module how much each slice sends).

Parameters, checked when the order arrives (a TWAP that does not fit is Rejected, saying why):

* start: EffectiveTime (168), else when the order was received; end: ExpireTime (126),
  required, after the start and in the future.
* slices: StrategyParametersGrp (957) entry ``Slices`` (FIX 5.0SP2), an integer from 1 to
  :data:`MAX_SLICES`; by default (and on FIX 4.4, which has no such group) one per
  :data:`DEFAULT_SLICE_SECONDS` of the window (rounded), at least 1, at most :data:`MAX_SLICES`. Any
  other StrategyParameterName (958) is refused.
* OrdType market or limit; a limit price caps every child. TimeInForce IOC and FOK are
  refused (the end is the ExpireTime).

When a slice is due (:class:`~.scheduled.Plan`: its even time plus a seeded random delay) it
takes what is left (the parent's quantity less what is filled and what open children may still
fill) divided by the slices left, rounded down to the instrument's lot; a quantity under the
venue's minimum quantity or minimum notional (at the limit price, else the last price) sends
nothing and is merged into the later slices (the last slice takes all that is left, in children
within the venue's maximum). A child that ends unfilled (canceled, expired, rejected) so gives
its quantity back to the later slices.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.base import Instrument

from .children import Children
from .model import Order
from .scheduled import MAX_SLICES, BadParameters, Plan, Sliced, no_parameters, slice_count, window
from .slicing import pieces, slice_quantity

DEFAULT_SLICE_SECONDS = 10
"""Without a ``Slices`` parameter (FIX 4.4), one slice per this many seconds of the window."""
SLICES = "Slices"
"""The StrategyParameterName (958) of the number of slices."""


def plan(o: Order, slice_seconds: float = DEFAULT_SLICE_SECONDS) -> Plan:
    """The schedule of TWAP ``o`` from its stored fields (one slice per ``slice_seconds``
    without a Slices parameter); BadParameters says what does not fit."""
    no_parameters(o, "TWAP", frozenset({SLICES}))
    start, end = window(o, "TWAP")
    assert end is not None  # (required)
    raw = o.strategy_parameters.get(SLICES)
    if raw is None:
        slices = slice_count(start, end, slice_seconds)
    else:
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_SLICES:
            raise BadParameters(f"StrategyParameter {SLICES} must be an integer from 1 to "
                                f"{MAX_SLICES}, not {raw!r}")
        slices = int(raw)
    return Plan(o.order_id, start, end, slices)


class TwapSchedule:
    """Even slices (module docstring)."""

    name = "TWAP"

    def __init__(self, slice_seconds: float = DEFAULT_SLICE_SECONDS) -> None:
        self.slice_seconds = slice_seconds

    def plan(self, o: Order) -> Plan:
        return plan(o, self.slice_seconds)

    def quantities(self, o: Order, p: Plan, i: int, left: Decimal, inst: Instrument | None,
                   price: Decimal | None) -> list[Decimal]:
        if i + 1 >= p.slices:
            return pieces(left, inst, price)  # the last slice: all that is left
        qty = slice_quantity(left, p.slices - i, inst, price)
        return [qty] if qty > 0 else []


class Twap(Sliced):
    """The TWAP strategy: :class:`~.scheduled.Sliced` with even slices; ``slice_seconds``: the
    slice interval when the order does not say how many slices."""

    def __init__(self, children: Children, *,
                 slice_seconds: float = DEFAULT_SLICE_SECONDS) -> None:
        super().__init__(children, TwapSchedule(slice_seconds))
