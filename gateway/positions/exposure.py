"""What a session (or one of its accounts) holds and has working across venues, for the risk
limits that look across venues (``gateway.risk.checks``: max_position, max_gross_notional,
max_daily_loss)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from connectors.base import Side
from gateway.risk.checks import Exposure

from .book import NS_PER_DAY, ZERO, Positions

Mark = Callable[[str, str], Decimal | None]
"""(venue, symbol) -> the venue's last price, None when unknown."""


class WorkingOrder(Protocol):
    """An open order as the exposure sees it (``gateway.orders.model.Order`` is one)."""

    @property
    def session_id(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def venue(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def leaves_qty(self) -> Decimal: ...


def base_asset(symbol: str) -> str:
    """``BTC`` of ``BTC/USDT`` and of ``BTC/USDT:USDT``."""
    return symbol.split("/", 1)[0]


def exposure(positions: Positions, working: Iterable[WorkingOrder], mark: Mark,
             session_id: str, account: str | None, asset: str) -> Exposure:
    """The session's (``account``'s when given) exposure: its net position in ``asset`` and
    the open orders in it, and the gross notional of everything."""
    net = open_buys = open_sells = gross = ZERO
    for p in positions.of_session(session_id, account=account):
        if base_asset(p.symbol) == asset:
            net += p.quantity
        price = mark(p.venue, p.symbol)
        gross += abs(p.quantity) * (price if price is not None else p.avg_price)
    for o in working:
        if o.session_id != session_id or (account is not None and o.account != account):
            continue
        leaves = o.leaves_qty
        if base_asset(o.symbol) == asset:
            if o.side is Side.BUY:
                open_buys += leaves
            else:
                open_sells += leaves
        price = o.price if o.price is not None else mark(o.venue, o.symbol)
        if price is not None:
            gross += leaves * price
    return Exposure(net, open_buys, open_sells, gross)


def daily_loss(positions: Positions, mark: Mark, session_id: str, today: int) -> Decimal:
    """The session's loss of the UTC day ``today`` (positive when it lost): realized by that
    day's fills, and unrealized at the venues' last prices."""
    pnl = ZERO
    for p in positions.of_session(session_id):
        if p.day == today:
            pnl += p.realized_today
        unrealized = p.unrealized(mark(p.venue, p.symbol))
        if unrealized is not None:
            pnl += unrealized
    return -pnl


class LossGuard:
    """Engages a session's kill switch once its loss of the day passes its max_daily_loss
    (checked after each of its fills)."""

    def __init__(self, positions: Positions, mark: Mark,
                 limit_for: Callable[[str], Decimal | None],
                 engage: Callable[[str, str], None],
                 clock_ns: Callable[[], int]) -> None:
        self.positions = positions
        self.mark = mark
        self.limit_for = limit_for
        self.engage = engage
        self.clock_ns = clock_ns
        self.engaged: dict[str, int] = {}
        """Session id -> the day its kill switch was engaged for its loss (once a day)."""

    def after_fill(self, session_id: str) -> None:
        limit = self.limit_for(session_id)
        if limit is None:
            return
        today = self.clock_ns() // NS_PER_DAY
        if self.engaged.get(session_id) == today:
            return
        loss = daily_loss(self.positions, self.mark, session_id, today)
        if loss > limit:
            self.engaged[session_id] = today
            self.engage(session_id, f"risk: the loss of the day {loss.normalize():f} (realized "
                                    f"and unrealized) is beyond max_daily_loss {limit}")
