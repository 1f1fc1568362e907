"""Smart order routing: how much of an order to send to which venue (a pure function of what
is known of the venues now; :mod:`gateway.orders.sor` works the order by it).

For each candidate venue the router knows (:class:`VenueQuote`): its book on the side the order
takes from (best first, when its public feed is watched), its last price, its taker fee, what
the account can afford there and its instrument rules. :func:`plan`:

1. walks the venues' levels together, cheapest first after fees (a buy pays ``price x (1 +
   fee)``, a sell receives ``price x (1 - fee)``), within the order's limit price, taking at
   each venue no more than the account's free balance there pays for;
2. rounds each venue's share down to its lot and drops a share under the venue's minimum
   quantity or notional;
3. gives what the visible books do not cover (and what rounding left) to the *home* venue --
   the one whose best price after fees is best, else whose last price is, else the first --
   or, when that venue cannot take it (balance, lot grid, minimum), to the next one that can;
4. says why: each share names its reason, and what could go nowhere is ``unrouted``.

Ties keep the configuration order. Money is Decimal throughout.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from connectors.base import Instrument, Level, Side

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """What the router knows of one candidate venue."""

    venue: str
    instrument: Instrument
    levels: Sequence[Level] | None
    """The side the order takes from (a buy: the asks), best first; None: not known."""
    last_price: Decimal | None
    taker_fee: Decimal
    available: Decimal | None
    """The account's free balance there in the asset the order spends (a buy: the quote
    currency, a sell: the base); None: not known (not limited)."""


@dataclass(frozen=True, slots=True)
class Share:
    """One child order of the plan."""

    venue: str
    quantity: Decimal
    price: Decimal | None
    """The child's limit price (the order's limit on the venue's tick grid); None: market."""
    expected_px: Decimal | None
    """The average price the venue's book says the share fills at (None: not known)."""
    why: str


@dataclass(frozen=True, slots=True)
class Plan:
    shares: tuple[Share, ...]
    unrouted: Decimal
    """What no venue can take now (balance, lot grid, minimum)."""
    home: str | None
    """The venue that takes what the books do not show."""

    def summary(self) -> str:
        parts = [f"{s.quantity} at {s.venue}" for s in self.shares]
        if self.unrouted > 0:
            parts.append(f"{self.unrouted} not routed")
        return ", ".join(parts) if parts else "nothing routed"


def child_price(limit: Decimal | None, side: Side, tick: Decimal) -> Decimal | None:
    """``limit`` on the venue's tick grid, never beyond it (a buy rounds down, a sell up)."""
    if limit is None or tick <= 0:
        return limit
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    return (limit / tick).to_integral_value(rounding) * tick


def _on_lot(q: Decimal, inst: Instrument) -> Decimal:
    if inst.lot_size > 0:
        q = (q / inst.lot_size).to_integral_value(ROUND_FLOOR) * inst.lot_size
    if inst.max_qty is not None:
        q = min(q, inst.max_qty)
    return q


def _fits(q: Decimal, inst: Instrument, px: Decimal | None) -> bool:
    """Whether the venue takes an order of ``q`` (its lot grid and minimums, at ``px``)."""
    if q <= 0 or q < inst.min_qty:
        return False
    if inst.lot_size > 0 and q % inst.lot_size != 0:
        return False
    if inst.max_qty is not None and q > inst.max_qty:
        return False
    return not (px is not None and inst.min_notional > 0 and q * px < inst.min_notional)


class _Venue:
    """One venue's state while planning."""

    __slots__ = ("budget", "child_px", "cost", "index", "quote", "sign", "taken")

    def __init__(self, quote: VenueQuote, index: int, side: Side, limit: Decimal | None) -> None:
        self.quote = quote
        self.index = index
        self.child_px = child_price(limit, side, quote.instrument.tick_size)
        """The price its children are sent at (None: market): what a buy's balance is locked
        at there, and what its minimum notional is checked at."""
        self.sign = ONE + quote.taker_fee if side is Side.BUY else ONE - quote.taker_fee
        self.taken = ZERO
        self.cost = ZERO
        """The venue price of what is taken (quantity x price, fees excluded)."""
        self.budget = quote.available
        """What is left to spend (a buy: quote currency with fees; a sell: base)."""

    def locks(self, px: Decimal) -> Decimal:
        """The price a buy of it at ``px`` locks the balance at: its child's limit price (a
        limit order holds quantity x limit at the venue), else ``px``."""
        return self.child_px if self.child_px is not None else px

    def room(self, side: Side, px: Decimal) -> Decimal | None:
        """How much more the budget lets it take at ``px`` (None: not limited)."""
        if self.budget is None:
            return None
        if side is Side.SELL:
            return max(self.budget, ZERO)
        return max(self.budget / (self.locks(px) * self.sign), ZERO)

    def spend(self, side: Side, q: Decimal, px: Decimal) -> None:
        self.taken += q
        self.cost += q * px
        if self.budget is not None:
            self.budget -= q if side is Side.SELL else q * self.locks(px) * self.sign

    def ref_price(self, side: Side) -> Decimal | None:
        """The price the venue is ranked by: its best level, else its last price."""
        levels = self.quote.levels
        if levels:
            return levels[0][0]
        return self.quote.last_price


def _walk(v: _Venue, side: Side, limit: Decimal | None) -> Iterator[tuple[Decimal, int, Level]]:
    """``v``'s levels within ``limit`` as (sort key after fees, venue index, level)."""
    for level in v.quote.levels or ():
        px = level[0]
        if limit is not None and (px > limit if side is Side.BUY else px < limit):
            return
        eff = px * v.sign
        yield (eff if side is Side.BUY else -eff), v.index, level


def plan(side: Side, quantity: Decimal, limit: Decimal | None,
         quotes: Sequence[VenueQuote]) -> Plan:
    """How to send ``quantity`` (``limit``: the order's limit price, None for a market order)
    to the venues of ``quotes`` (module docstring)."""
    venues = [v for v in (_Venue(q, i, side, limit) for i, q in enumerate(quotes))
              if v.child_px is None or v.child_px > 0]  # (a tick coarser than the limit)
    left = quantity
    # 1. the visible books, cheapest after fees first
    by_index = {v.index: v for v in venues}
    for _key, index, (px, size) in heapq.merge(*(_walk(v, side, limit) for v in venues)):
        if left <= 0:
            break
        v = by_index[index]
        q = min(size, left)
        room = v.room(side, px)
        if room is not None:
            q = min(q, room)
        if q > 0:
            v.spend(side, q, px)
            left -= q
    # 2. each venue's share on its grid
    shares: dict[int, tuple[Decimal, str]] = {}
    for v in venues:
        if v.taken <= 0:
            continue
        q = _on_lot(v.taken, v.quote.instrument)
        if _fits(q, v.quote.instrument, v.child_px or v.cost / v.taken):
            shares[v.index] = (q, "best price after fees on its book")
    left = quantity - sum((q for q, _ in shares.values()), ZERO)
    # 3. the rest to the home venue, else the next that can take it
    ranked = sorted(venues, key=lambda v: _rank(v, side))
    home = ranked[0].quote.venue if ranked else None
    for v in ranked:
        if left <= 0:
            break
        inst = v.quote.instrument
        have = shares.get(v.index, (ZERO, ""))[0]
        ref = v.child_px if v.child_px is not None else v.ref_price(side)
        extra = left
        room = v.room(side, ref) if ref is not None else None
        if room is not None:
            extra = min(extra, room + v.taken - have)  # (what rounding gave back is paid for)
        total = _on_lot(have + extra, inst)
        if total > have and _fits(total, inst, ref):
            why = ("the rest, beyond the visible books" if v.quote.venue == home
                   else f"the rest, {home} cannot take it")
            shares[v.index] = (total, shares[v.index][1] + "; " + why
                               if v.index in shares else why)
            left -= total - have
    out = []
    for v in venues:  # (configuration order)
        if v.index not in shares:
            continue
        q, why = shares[v.index]
        expected = v.cost / v.taken if v.taken > 0 else None
        out.append(Share(v.quote.venue, q, v.child_px, expected, why))
    return Plan(tuple(out), left, home)


def _rank(v: _Venue, side: Side) -> tuple[int, Decimal, int]:
    px = v.ref_price(side)
    if px is None:
        return (1, ZERO, v.index)
    eff = px * v.sign
    return (0, eff if side is Side.BUY else -eff, v.index)
