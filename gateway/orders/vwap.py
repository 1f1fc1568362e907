"""VWAP: a parent order (TargetStrategy 847 = 1, the FIX standard's VWAP) worked in buckets
whose sizes follow the market's expected volume over the window, each a child order
(:mod:`.scheduled` has the window, the bucket times, the end, cancel, restart; this module how
much each bucket sends).

Parameters, checked when the order arrives (a VWAP that does not fit is Rejected, saying why):
start: EffectiveTime (168), else when the order was received; end: ExpireTime (126), required,
after the start and in the future; OrdType market or limit (a limit price caps every child);
TimeInForce IOC and FOK are refused. A VWAP takes no StrategyParameters (957): any
StrategyParameterName (958), ParticipationRate (849) included, is refused.

The volume profile (:class:`VolumeProfile`): a curve of the market's volume over a period that
repeats (a UTC day by default), in equal bins of relative weights -- 24 bins are weights per
UTC hour; the default is one bin, a flat curve. It is configured (``[vwap] profile``), or
computed from recorded market data (``[vwap] recorded``: ``timestamp,volume`` lines, summed per
bin of the period, :meth:`VolumeProfile.from_volumes`). Within a bin the volume is spread
evenly. The fraction of the window's volume expected by time ``t`` is the curve's integral from
the start to ``t`` over its integral over the whole window (a window where the curve is zero
throughout is worked flat).

The buckets: one per ``bucket_seconds`` of the window (:data:`DEFAULT_BUCKET_SECONDS`, rounded,
at least 1, at most :data:`~.scheduled.MAX_SLICES`), due at their even time plus a seeded
random delay (:class:`~.scheduled.Plan`). The target cumulative quantity at time ``t`` is the
quantity x the profile's fraction by ``t``. When bucket ``i`` is due, its children bring the
parent to the target at the end of bucket ``i``: they take what the schedule is behind by
(the target less what is filled and what open children may still fill), on the lot grid,
within the venue's maximum, never under its minimum quantity or minimum notional -- what is
under it is merged into later buckets (the target is cumulative, so nothing is lost), and a
child that would leave less than the minimum to the later buckets leaves the minimum instead.
The last bucket takes all that is left. A child that ends unfilled gives its quantity back
(the schedule is behind again by as much).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from connectors.base import Instrument

from .children import Children
from .model import Order
from .scheduled import NS, Plan, Sliced, no_parameters, slice_count, window
from .slicing import minimum_quantity, pieces

VWAP = "1"
"""TargetStrategy (847) 1: VWAP (FIX standard)."""
DEFAULT_BUCKET_SECONDS = 10
"""One bucket per this many seconds of the window."""
DAY_NS = 86_400 * NS
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class VolumeProfile:
    """The market's expected volume over a period that repeats (module docstring): ``weights``
    of its equal bins, the first starting at a multiple of ``period_ns`` since the epoch (UTC
    midnight for a day)."""

    weights: tuple[Decimal, ...] = (ONE,)
    period_ns: int = DAY_NS

    def __post_init__(self) -> None:
        if not self.weights or any(not w.is_finite() or w < 0 for w in self.weights):
            raise ValueError("a volume profile needs weights, none negative")
        if sum(self.weights) <= 0:
            raise ValueError("a volume profile needs a weight above zero")
        if self.period_ns < len(self.weights):
            raise ValueError("a volume profile's period must be at least a nanosecond a bin")

    @classmethod
    def from_volumes(cls, points: Iterable[tuple[int, Decimal]], bins: int = 24,
                     period_ns: int = DAY_NS) -> VolumeProfile:
        """The profile of recorded ``(ts_ns, volume)`` points: the volume of each bin of the
        period (24: each UTC hour of the day), summed over every period recorded."""
        if bins < 1:
            raise ValueError("a volume profile needs at least one bin")
        sums = [Decimal(0)] * bins
        for ts, volume in points:
            sums[(ts % period_ns) * bins // period_ns] += volume
        if sum(sums) <= 0:
            raise ValueError("the recorded volumes add up to nothing")
        return cls(tuple(sums), period_ns)

    def _bin_start(self, k: int) -> int:
        return k * self.period_ns // len(self.weights)

    def cumulative(self, t_ns: int | Fraction) -> Fraction:
        """The curve's integral from the epoch to ``t_ns`` (in weight x bins), exact."""
        n = len(self.weights)
        periods, r = divmod(t_ns, self.period_ns)
        k = r * n // self.period_ns
        while k + 1 < n and self._bin_start(k + 1) <= r:
            k += 1
        while k > 0 and self._bin_start(k) > r:
            k -= 1
        start, end = self._bin_start(k), self._bin_start(k + 1)
        done = sum(self.weights[:k], Decimal(0))
        whole = sum(self.weights, Decimal(0))
        return (periods * Fraction(whole) + Fraction(done)
                + Fraction(self.weights[k]) * (r - start) / (end - start))

    def fraction(self, start_ns: int, end_ns: int, t_ns: int | Fraction) -> Decimal:
        """The fraction of [start, end]'s volume expected by ``t_ns`` (0 to 1, rounded to
        Decimal's precision once)."""
        if t_ns <= start_ns:
            return Decimal(0)
        if t_ns >= end_ns:
            return ONE
        whole = self.cumulative(end_ns) - self.cumulative(start_ns)
        if whole <= 0:  # nothing expected in the window: flat
            part = Fraction(t_ns - start_ns) / (end_ns - start_ns)
        else:
            part = min(Fraction(1), (self.cumulative(t_ns) - self.cumulative(start_ns)) / whole)
        return Decimal(part.numerator) / Decimal(part.denominator)


FLAT = VolumeProfile()


def plan(o: Order, bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> Plan:
    """The buckets of VWAP ``o`` from its stored fields; BadParameters says what does not
    fit."""
    no_parameters(o, "VWAP")
    start, end = window(o, "VWAP")
    assert end is not None  # (required)
    return Plan(o.order_id, start, end, slice_count(start, end, bucket_seconds))


class VwapSchedule:
    """Buckets sized by a volume profile (module docstring)."""

    name = "VWAP"

    def __init__(self, profile: VolumeProfile = FLAT,
                 bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> None:
        self.profile = profile
        self.bucket_seconds = bucket_seconds

    def plan(self, o: Order) -> Plan:
        return plan(o, self.bucket_seconds)

    def quantities(self, o: Order, p: Plan, i: int, left: Decimal, inst: Instrument | None,
                   price: Decimal | None) -> list[Decimal]:
        if i + 1 >= p.slices:
            return pieces(left, inst, price)  # the last bucket: all that is left
        if inst is None:
            return []  # no lot known: one child, at the end
        # the end of bucket i, exactly where (i + 1) / n of the window is
        end = p.start_ns + Fraction((i + 1) * (p.end_ns - p.start_ns), p.slices)
        target = o.quantity * self.profile.fraction(p.start_ns, p.end_ns, end)
        behind = target - (o.quantity - left)
        sizes = pieces(min(behind, left), inst, price)
        rest = left - sum(sizes, Decimal(0))
        least = minimum_quantity(inst, price)
        if 0 < rest < least:  # what it leaves could never be sent: leave the minimum
            sizes = pieces(left - least, inst, price)
        return sizes


class Vwap(Sliced):
    """The VWAP strategy: :class:`~.scheduled.Sliced` with buckets sized by ``profile``, one
    per ``bucket_seconds`` of the window."""

    def __init__(self, children: Children, *, profile: VolumeProfile = FLAT,
                 bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> None:
        super().__init__(children, VwapSchedule(profile, bucket_seconds))

