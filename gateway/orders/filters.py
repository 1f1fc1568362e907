"""The venue's instrument filters (lot size, minimum and maximum quantity, tick size, minimum
notional), checked for a new order and for a replace before the venue sees either."""

from __future__ import annotations

from decimal import Decimal

from connectors.base import Instrument

from . import fixmap
from .fixmap import Refusal


def instrument_rules(
    inst: Instrument, quantity: Decimal, price: Decimal | None, stop_price: Decimal | None
) -> Refusal | None:
    """The venue's filters, checked before sending so the venue never sees a malformed order."""
    if inst.lot_size > 0 and quantity % inst.lot_size != 0:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is not a multiple of the lot size "
                       f"{inst.lot_size} of {inst.symbol}")
    if quantity < inst.min_qty:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is below the minimum {inst.min_qty} of "
                       f"{inst.symbol}")
    if inst.max_qty is not None and quantity > inst.max_qty:
        return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                       f"OrderQty {quantity} is above the maximum {inst.max_qty}")
    for name, px in (("Price", price), ("StopPx", stop_price)):
        if px is not None and inst.tick_size > 0 and px % inst.tick_size != 0:
            return Refusal(fixmap.ORD_REJ_OTHER,
                           f"{name} {px} is not a multiple of the tick size {inst.tick_size} "
                           f"of {inst.symbol}")
    if price is not None and inst.min_notional > 0:
        notional = price * quantity
        if notional < inst.min_notional:
            return Refusal(fixmap.ORD_REJ_INCORRECT_QTY,
                           f"notional {notional} is below the minimum {inst.min_notional} of "
                           f"{inst.symbol}")
    return None
