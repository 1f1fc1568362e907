"""Pre-trade checks per session and account, and the kill switch.

Each limit is optional. A refused order gets ExecutionReport(Rejected) with OrdRejReason (103)
3 "Order exceeds limit" (or 2 "Exchange closed" for the kill switch) and a text that names the
limit, e.g. ``risk: notional 150000 exceeds max_notional 100000``.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from connectors.base import OrderType, Side

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_LIMIT: Final = OrderType.LIMIT
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
_BUY: Final = Side.BUY


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_order_qty: Decimal | None = None
    max_notional: Decimal | None = None
    """Quantity x price (limit price, else the last price) in the quote currency."""
    price_band: Decimal | None = None
    """Largest allowed distance of a limit price from the last price, as a fraction (0.05)."""
    max_open_orders: int | None = None
    max_orders_per_second: float | None = None
    max_position: Decimal | None = None
    """Largest net position in one base asset across the venues (in that asset), counting
    the open orders on the order's side as if they filled."""
    max_gross_notional: Decimal | None = None
    """Largest gross exposure across venues and assets: the positions at their venues' last
    prices and the open orders at their prices (in the quote currency), the new order
    included."""
    max_daily_loss: Decimal | None = None
    """A loss (realized today + unrealized) beyond this engages the kill switch."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """What a session (or one of its accounts) holds and has working, across venues."""

    net: Decimal
    """The signed position in the order's base asset."""
    open_buys: Decimal
    open_sells: Decimal
    """What open orders in that asset may still buy / sell."""
    gross_notional: Decimal
    """Every position at its venue's last price and every open order at its price."""


@dataclass(frozen=True, slots=True)
class Refused:
    reason: bytes  # OrdRejReason (103)
    text: str


@dataclass(slots=True)
class _Book:
    open_orders: int = 0
    recent: deque[float] = field(default_factory=deque)


_ALL = "\x00all"
"""The book key of all a session's orders (no Account (1) can be this)."""


class RiskEngine:
    """Stateful checks: open orders and the order rate are counted per session (all its orders,
    against the session's limits) and per account that has limits of its own (its orders,
    against those).

    ``limits`` maps a session id (and optionally ``session_id/account``) to its limits; for
    the limits of one order (quantity, notional, price band) the most specific entry wins.
    ``killed`` maps session ids (or ``*`` for everything) whose new orders are refused to why.
    """

    def __init__(self, limits: dict[str, RiskLimits] | None = None) -> None:
        self.limits = limits or {}
        self.killed: dict[str, str] = {}
        self._books: dict[tuple[str, str], _Book] = defaultdict(_Book)
        self.exposure: Callable[[str, str | None, str], Exposure] | None = None
        """(session id, account, base asset) -> what is held and working across venues;
        set where positions are kept (the limits across venues need it)."""

    def limits_for(self, session_id: str, account: str | None) -> RiskLimits | None:
        if account is not None:
            lim = self.limits.get(f"{session_id}/{account}")
            if lim is not None:
                return lim
        return self.limits.get(session_id) or self.limits.get("*")

    def is_killed(self, session_id: str) -> bool:
        return "*" in self.killed or session_id in self.killed

    def check(
        self,
        *,
        session_id: str,
        account: str | None,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        last_price: Decimal | None,
        now: float,
        side: Side | None = None,
        asset: str | None = None,
    ) -> Refused | None:
        """A new order: every limit (those across venues when ``side`` and ``asset``, its
        base asset, are given)."""
        if self.is_killed(session_id):
            return Refused(b"2", "risk: kill switch is on: new orders are refused")
        lim = self.limits_for(session_id, account)
        if lim is None:
            return None
        refused = self._order_limits(lim, order_type, quantity, price, last_price)
        if refused is None and side is not None and asset is not None:
            refused = self._across_venues(lim, session_id, account, side, asset, quantity,
                                          price if price is not None else last_price)
        if refused is not None:
            return refused
        # the session's limits count all its orders; an account's own limits, its orders
        counted = [(self.limits.get(session_id) or self.limits.get("*"),
                    self._books[(session_id, _ALL)], "")]
        if account is not None and f"{session_id}/{account}" in self.limits:
            counted.append((lim, self._books[(session_id, account)], f" of account {account}"))
        for limits, book, whose in counted:
            refused = _count_limits(limits, book, whose, now)
            if refused is not None:
                return refused
        for limits, book, _ in counted:
            if limits is not None and limits.max_orders_per_second is not None:
                book.recent.append(now)
        return None

    def check_replace(
        self,
        *,
        session_id: str,
        account: str | None,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        last_price: Decimal | None,
    ) -> Refused | None:
        """A replace: the size and price limits (it opens no order and is not a new order for
        the rate). The kill switch refuses replaces too."""
        if self.is_killed(session_id):
            return Refused(b"2", "risk: kill switch is on: replaces are refused")
        lim = self.limits_for(session_id, account)
        if lim is None:
            return None
        return self._order_limits(lim, order_type, quantity, price, last_price)

    def _order_limits(
        self,
        lim: RiskLimits,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        last_price: Decimal | None,
    ) -> Refused | None:
        if lim.max_order_qty is not None and quantity > lim.max_order_qty:
            return Refused(b"3", f"risk: quantity {quantity} exceeds max_order_qty "
                                 f"{lim.max_order_qty}")
        ref_price = price if price is not None else last_price
        if lim.max_notional is not None:
            if ref_price is None:
                return Refused(b"3", "risk: no price to check max_notional against")
            notional = quantity * ref_price
            if notional > lim.max_notional:
                return Refused(b"3", f"risk: notional {notional.normalize():f} exceeds "
                                     f"max_notional {lim.max_notional}")
        if (
            lim.price_band is not None
            and price is not None
            and order_type in (_LIMIT, _STOP_LIMIT)
        ):
            if last_price is None:
                # fail safe, as for max_notional: a band that cannot be checked refuses
                return Refused(b"3", "risk: the venue's last price is unknown, so price_band "
                                     "cannot be checked")
            distance = abs(price - last_price) / last_price
            if distance > lim.price_band:
                return Refused(b"3", f"risk: price {price} is {distance:.2%} from the last price "
                                     f"{last_price}, beyond price_band {lim.price_band}")
        return None

    def _across_venues(self, lim: RiskLimits, session_id: str, account: str | None,
                       side: Side, asset: str, quantity: Decimal,
                       ref_price: Decimal | None) -> Refused | None:
        if (lim.max_position is None and lim.max_gross_notional is None) or (
                self.exposure is None):
            return None
        # an account with limits of its own is counted alone; the session's limits count
        # every account of the session
        if account is not None and f"{session_id}/{account}" not in self.limits:
            account = None
        e = self.exposure(session_id, account, asset)
        whose = f" of account {account}" if account is not None else ""
        # an order that does not take the position further from flat adds no exposure
        signed = quantity if side is _BUY else -quantity
        reduces = e.net != 0 and abs(e.net + signed) <= abs(e.net)
        if lim.max_position is not None and not reduces:
            if side is _BUY:
                after = e.net + e.open_buys + quantity
                working = e.open_buys
            else:
                after = e.net - e.open_sells - quantity
                working = e.open_sells
            if abs(after) > lim.max_position:
                return Refused(b"3", f"risk: the position{whose} in {asset} across venues "
                                     f"would reach {_n(after)} (held {_n(e.net)}, open "
                                     f"{_n(working)}, this order {_n(quantity)}), beyond "
                                     f"max_position {lim.max_position}")
        if lim.max_gross_notional is not None and not reduces:
            if ref_price is None:
                return Refused(b"3", "risk: no price to check max_gross_notional against")
            after = e.gross_notional + quantity * ref_price
            if after > lim.max_gross_notional:
                return Refused(b"3", f"risk: gross exposure{whose} across venues would reach "
                                     f"{_n(after)} (now {_n(e.gross_notional)}), beyond "
                                     f"max_gross_notional {lim.max_gross_notional}")
        return None

    def opened(self, session_id: str, account: str | None) -> None:
        self._books[(session_id, _ALL)].open_orders += 1
        if account is not None:
            self._books[(session_id, account)].open_orders += 1

    def closed(self, session_id: str, account: str | None) -> None:
        for key in ((session_id, _ALL), (session_id, account)) if account is not None else (
            (session_id, _ALL),
        ):
            b = self._books[key]
            b.open_orders = max(0, b.open_orders - 1)


def _n(v: Decimal) -> str:
    return f"{v.normalize():f}"


def _count_limits(lim: RiskLimits | None, book: _Book, whose: str, now: float) -> Refused | None:
    """max_open_orders and max_orders_per_second of ``lim`` against ``book``'s orders."""
    if lim is None:
        return None
    if lim.max_open_orders is not None and book.open_orders >= lim.max_open_orders:
        return Refused(b"3", f"risk: {book.open_orders} open orders{whose}, max_open_orders is "
                             f"{lim.max_open_orders}")
    if lim.max_orders_per_second is not None:
        window = book.recent
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= lim.max_orders_per_second:
            return Refused(b"3", f"risk: order rate{whose} over max_orders_per_second "
                                 f"{lim.max_orders_per_second}")
    return None
