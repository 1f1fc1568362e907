"""What a session (or one of its accounts) holds and has working across venues, for the risk
limits that look across venues (``gateway.risk.checks``: max_position, max_gross_notional,
max_daily_loss)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from connectors.base import Side
from gateway.risk.checks import Exposure

from .book import NS_PER_DAY, ZERO, Positions, split_symbol

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
    return split_symbol(symbol)[0]


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


def daily_loss(positions: Positions, mark: Mark, session_id: str, today: int,
               account: str | None = None) -> Decimal:
    """The session's (``account``'s) loss of the UTC day ``today`` (positive when it lost):
    realized by that day's fills less their fees, and unrealized at the venues' last
    prices."""
    pnl = ZERO
    for p in positions.of_session(session_id, account=account):
        if p.day == today:
            pnl += p.realized_today - p.fees_today
        unrealized = p.unrealized(mark(p.venue, p.symbol))
        if unrealized is not None:
            pnl += unrealized
    return -pnl


class LossGuard:
    """Engages a session's kill switch once its loss of the day passes its max_daily_loss,
    or one of its accounts' loss passes the account's own (checked after each fill)."""

    def __init__(self, positions: Positions, mark: Mark,
                 limit_for: Callable[[str, str | None], Decimal | None],
                 engage: Callable[[str, str], None],
                 clock_ns: Callable[[], int]) -> None:
        self.positions = positions
        self.mark = mark
        self.limit_for = limit_for
        self.engage = engage
        self.clock_ns = clock_ns
        self.engaged: dict[str, int] = {}
        """Session id -> the day its kill switch was engaged for a loss (once a day)."""

    def after_fill(self, session_id: str, account: str | None = None) -> None:
        today = self.clock_ns() // NS_PER_DAY
        if self.engaged.get(session_id) == today:
            return
        for scope in (None, account) if account else (None,):
            limit = self.limit_for(session_id, scope)
            if limit is None:
                continue
            loss = daily_loss(self.positions, self.mark, session_id, today, scope)
            if loss > limit:
                self.engaged[session_id] = today
                whose = f" of account {scope}" if scope else ""
                self.engage(session_id, f"risk: the loss of the day{whose} "
                                        f"{loss.normalize():f} (realized, fees and unrealized) "
                                        f"is beyond max_daily_loss {limit}")
                return
