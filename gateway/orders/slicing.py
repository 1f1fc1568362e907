"""How much a strategy's child order may be: on the instrument's lot grid, within the venue's
maximum, never under its minimum quantity nor its minimum notional. Shared by the strategies
(:mod:`.twap`, :mod:`.vwap`, :mod:`.pov`, :mod:`.iceberg`): a quantity under the minimum is not
sent (it is merged into a later child), never rounded up past what the client asked for."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from connectors.base import Instrument

from .model import ZERO


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


def pieces(quantity: Decimal, inst: Instrument | None, price: Decimal | None
           ) -> list[Decimal]:
    """``quantity`` as children of at most the venue's maximum quantity, each on the lot grid
    and none under its minimum (what would be under it is not sent: empty when all of it
    is)."""
    out: list[Decimal] = []
    while quantity > 0:
        piece = slice_quantity(quantity, 1, inst, price)
        if piece <= 0:
            break
        out.append(piece)
        quantity -= piece
    return out
