"""Positions computed from the gateway's own fills: per session, account, venue and
instrument, the signed quantity, the average entry price of what is open, the realized PnL
(in the quote currency) and the fees paid per currency. A fill is counted once (by venue and
trade id), whether it comes from the store at start or from the order path as it happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from connectors.base import Side

ZERO = Decimal(0)
NS_PER_DAY = 86_400 * 1_000_000_000


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a canonical symbol: ``BTC/USDT`` and ``BTC/USDT:USDT`` -> BTC, USDT."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


@dataclass(slots=True)
class Position:
    session_id: str
    account: str
    venue: str
    symbol: str
    quantity: Decimal = ZERO
    """Signed: positive long, negative short."""
    avg_price: Decimal = ZERO
    """Average entry price of the open quantity (0 when flat)."""
    realized: Decimal = ZERO
    """Profit and loss of what was closed, in the quote currency, before fees."""
    fees: dict[str, Decimal] = field(default_factory=dict)
    fills: int = 0
    day: int = -1
    """The UTC day (days since the epoch) of the last fill."""
    realized_today: Decimal = ZERO
    """Realized PnL of the fills of ``day``."""
    fees_today: Decimal = ZERO
    """The fees of the fills of ``day``, in the quote currency (a fee in the base asset at
    its fill's price)."""

    def apply(self, side: Side, qty: Decimal, price: Decimal, fee: Decimal | None,
              fee_currency: str | None, ts_ns: int = 0) -> None:
        day = ts_ns // NS_PER_DAY
        if day > self.day:
            self.day, self.realized_today, self.fees_today = day, ZERO, ZERO
        before = self.realized
        signed = qty if side is Side.BUY else -qty
        q = self.quantity
        if q == ZERO or (q > ZERO) == (signed > ZERO):
            total = abs(q) + qty
            self.avg_price = (abs(q) * self.avg_price + qty * price) / total
            self.quantity = q + signed
        else:
            closing = min(qty, abs(q))
            direction = Decimal(1) if q > ZERO else Decimal(-1)
            self.realized += closing * (price - self.avg_price) * direction
            self.quantity = q + signed
            if self.quantity == ZERO:
                self.avg_price = ZERO
            elif (self.quantity > ZERO) != (q > ZERO):  # crossed zero: the rest opens anew
                self.avg_price = price
        base, quote = split_symbol(self.symbol)
        cost = ZERO
        if fee and fee_currency:
            self.fees[fee_currency] = self.fees.get(fee_currency, ZERO) + fee
            if fee_currency == base:
                # paid out of the asset itself (a spot buy): the account holds that much less
                self.quantity -= fee
                if self.quantity == ZERO:
                    self.avg_price = ZERO
                cost = fee * price
            elif fee_currency == quote:
                cost = fee
        self.fills += 1
        if day == self.day:  # a late fill of an earlier day is not today's
            self.realized_today += self.realized - before
            self.fees_today += cost

    def unrealized(self, mark: Decimal | None) -> Decimal | None:
        """Profit and loss of the open quantity marked at ``mark`` (None: no mark)."""
        if mark is None:
            return None
        return self.quantity * (mark - self.avg_price)


Key = tuple[str, str, str, str]
"""(session id, account, venue, symbol)."""


class Positions:
    def __init__(self) -> None:
        self._positions: dict[Key, Position] = {}
        self._seen: set[tuple[str, str]] = set()
        self.adjustments: dict[tuple[str, str], Decimal] = {}
        """(venue, symbol) -> the sum of the adjustments made where the venue's own position
        differed from the computed one (belongs to no session: it is the venue account's)."""

    def adjust(self, venue: str, symbol: str, delta: Decimal) -> None:
        key = (venue, symbol)
        self.adjustments[key] = self.adjustments.get(key, ZERO) + delta

    def venue_totals(self, venue: str) -> dict[str, Decimal]:
        """Symbol -> the position of the venue account: every session's, plus the
        adjustments."""
        out: dict[str, Decimal] = {}
        for (_, _, v, symbol), p in self._positions.items():
            if v == venue:
                out[symbol] = out.get(symbol, ZERO) + p.quantity
        for (v, symbol), delta in self.adjustments.items():
            if v == venue:
                out[symbol] = out.get(symbol, ZERO) + delta
        return out

    def fill(self, session_id: str, account: str, venue: str, symbol: str, side: Side,
             trade_id: str, qty: Decimal, price: Decimal, fee: Decimal | None,
             fee_currency: str | None, ts_ns: int = 0) -> Position | None:
        """Count one fill; the position it changed (None when it was counted before)."""
        seen = (venue, trade_id)
        if seen in self._seen:
            return None
        self._seen.add(seen)
        key = (session_id, account, venue, symbol)
        p = self._positions.get(key)
        if p is None:
            p = self._positions[key] = Position(session_id, account, venue, symbol)
        p.apply(side, qty, price, fee, fee_currency, ts_ns)
        return p

    def of_session(self, session_id: str, *, account: str | None = None,
                   symbol: str | None = None, venue: str | None = None) -> list[Position]:
        """The session's positions (never another's), filtered, in a stable order."""
        return sorted(
            (p for k, p in self._positions.items() if k[0] == session_id
             and account in (None, p.account) and symbol in (None, p.symbol)
             and venue in (None, p.venue)),
            key=lambda p: (p.account, p.venue, p.symbol))

    def all(self) -> Iterable[Position]:
        return self._positions.values()
