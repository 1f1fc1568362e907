"""Schemas of ccxt's *unified* structures, the payloads this connector reads.

ccxt turns every venue's JSON into the same dictionaries (the "unified API", documented in the
ccxt Manual: https://docs.ccxt.com/#/README?id=unified-api — sections "Market structure",
"Order structure", "Trade structure", "Balance structure", "Position structure", "Ticker
structure", "fetchLastPrices"). These frozen
structs keep ccxt's own field names; one converter is built per structure, and each has a
``to_<ours>()``. ccxt gives numbers as Python floats (or None): they become Decimal through their
shortest repr, never through binary arithmetic, and never reach our types as floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

from connectors.base import (
    Balance,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderFilled,
    OrderState,
    Position,
    Side,
    VenueStatus,
)
from connectors.common.venue import ms_to_ns

# ccxt.base.decimal_to_precision: how a market's precision numbers are meant
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4

T = TypeVar("T")


class Schema(Generic[T]):
    """One structure's decoders, built once: from a ccxt dict (``convert``) or from recorded
    JSON (``decode``)."""

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self._json = msgspec.json.Decoder(type_, float_hook=Decimal)

    def convert(self, obj: Any) -> T:
        return msgspec.convert(obj, self.type, strict=False)

    def decode(self, data: bytes | str) -> T:
        return self._json.decode(data)


# ---- markets ----------------------------------------------------------------------------------


class CcxtMinMax(msgspec.Struct, frozen=True):
    min: Decimal | None = None
    max: Decimal | None = None


class CcxtLimits(msgspec.Struct, frozen=True):
    amount: CcxtMinMax = CcxtMinMax()
    price: CcxtMinMax = CcxtMinMax()
    cost: CcxtMinMax = CcxtMinMax()


class CcxtPrecision(msgspec.Struct, frozen=True):
    amount: Decimal | None = None
    price: Decimal | None = None


def precision_step(value: Decimal | None, mode: int) -> Decimal | None:
    """The increment a ccxt precision number stands for: TICK_SIZE gives the increment itself,
    DECIMAL_PLACES a count of decimals (2 -> 0.01). SIGNIFICANT_DIGITS has no fixed increment
    (it depends on the price): None."""
    if value is None:
        return None
    if mode == TICK_SIZE:
        return value
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    return None


class CcxtMarket(msgspec.Struct, frozen=True):
    """ccxt Manual, "Market structure"."""

    id: str
    symbol: str
    base: str
    quote: str
    settle: str | None = None
    type: str | None = None
    spot: bool = False
    swap: bool = False
    linear: bool | None = None
    active: bool | None = None
    contractSize: Decimal | None = None
    precision: CcxtPrecision = CcxtPrecision()
    limits: CcxtLimits = CcxtLimits()

    @property
    def is_linear_perpetual(self) -> bool:
        return self.swap and bool(self.linear)

    def to_instrument(self, precision_mode: int) -> Instrument:
        tick = precision_step(self.precision.price, precision_mode)
        lot = precision_step(self.precision.amount, precision_mode)
        if tick is None:  # significant digits: the finest price step the limits allow
            tick = self.limits.price.min or Decimal("1e-8")
        if lot is None:
            lot = self.limits.amount.min or Decimal("1e-8")
        return Instrument(
            symbol=self.symbol,
            venue_symbol=self.id,
            base=self.base,
            quote=self.quote,
            kind=InstrumentKind.PERPETUAL if self.swap else InstrumentKind.SPOT,
            settle=self.settle if self.swap else None,
            tick_size=tick.normalize(),
            lot_size=lot.normalize(),
            min_qty=self.limits.amount.min or Decimal(0),
            min_notional=self.limits.cost.min or Decimal(0),
            max_qty=self.limits.amount.max,
        )


# ---- orders -----------------------------------------------------------------------------------

_STATUS = {
    "open": VenueStatus.NEW,
    "closed": VenueStatus.FILLED,
    "canceled": VenueStatus.CANCELED,
    "cancelled": VenueStatus.CANCELED,
    "expired": VenueStatus.EXPIRED,
    "rejected": VenueStatus.REJECTED,
}


class CcxtOrder(msgspec.Struct, frozen=True):
    """ccxt Manual, "Order structure". ``status`` is one of open/closed/canceled/expired/
    rejected (closed = filled); a partial fill is ``open`` with ``filled`` > 0."""

    id: str | None = None
    clientOrderId: str | None = None
    symbol: str | None = None
    side: str | None = None
    type: str | None = None
    status: str | None = None
    timestamp: int | None = None
    lastTradeTimestamp: int | None = None
    lastUpdateTimestamp: int | None = None
    price: Decimal | None = None
    triggerPrice: Decimal | None = None
    average: Decimal | None = None
    amount: Decimal | None = None
    filled: Decimal | None = None
    remaining: Decimal | None = None

    @property
    def venue_status(self) -> VenueStatus:
        st = _STATUS.get(self.status or "", VenueStatus.NEW)
        if st is VenueStatus.NEW:
            if self.filled:
                return VenueStatus.PARTIALLY_FILLED
            if self.triggerPrice is not None and self.status is None:
                return VenueStatus.PENDING
        return st

    @property
    def updated_ns(self) -> int:
        ts = self.lastUpdateTimestamp or self.lastTradeTimestamp or self.timestamp
        return ms_to_ns(ts)

    def to_state(self, client_order_id: str | None = None,
                 symbol: str | None = None) -> OrderState:
        """Our OrderState (``client_order_id`` and ``symbol`` stand in where ccxt gives none)."""
        filled = self.filled
        if filled is None and self.amount is not None and self.remaining is not None:
            filled = self.amount - self.remaining
        return OrderState(
            client_order_id=self.clientOrderId or client_order_id or "",
            venue_order_id=self.id or "",
            symbol=self.symbol or symbol or "",
            side=Side.SELL if self.side == "sell" else Side.BUY,
            status=self.venue_status,
            quantity=self.amount if self.amount is not None else Decimal(0),
            filled_quantity=filled or Decimal(0),
            average_price=self.average,
            price=self.price,
            updated_ns=self.updated_ns,
        )


# ---- trades -----------------------------------------------------------------------------------


class CcxtFee(msgspec.Struct, frozen=True):
    cost: Decimal | None = None
    currency: str | None = None


class CcxtTrade(msgspec.Struct, frozen=True):
    """ccxt Manual, "Trade structure" (from fetchMyTrades / watchMyTrades): ``order`` is the
    venue's order id; ``takerOrMaker`` and ``fee`` are None where the venue does not say."""

    id: str | None = None
    symbol: str | None = None
    order: str | None = None
    side: str | None = None
    timestamp: int | None = None
    price: Decimal | None = None
    amount: Decimal | None = None
    takerOrMaker: str | None = None
    fee: CcxtFee | None = None

    def negated_fee(self) -> CcxtTrade:
        """The same trade with the fee's sign flipped (see KnownVenue.watch_fee_negated)."""
        fee = self.fee
        if fee is None or fee.cost is None:
            return self
        return msgspec.structs.replace(self, fee=msgspec.structs.replace(fee, cost=-fee.cost))

    def to_fill(self, client_order_id: str) -> OrderFilled:
        fee = self.fee
        return OrderFilled(
            client_order_id=client_order_id,
            venue_order_id=self.order or "",
            trade_id=self.id or "",
            quantity=self.amount if self.amount is not None else Decimal(0),
            price=self.price if self.price is not None else Decimal(0),
            fee=fee.cost if fee is not None else None,
            fee_currency=fee.currency if fee is not None else None,
            liquidity=(Liquidity.MAKER if self.takerOrMaker == "maker"
                       else Liquidity.TAKER if self.takerOrMaker == "taker" else None),
            ts_ns=ms_to_ns(self.timestamp),
        )


# ---- balances and positions -------------------------------------------------------------------


class CcxtBalance(msgspec.Struct, frozen=True):
    """ccxt Manual, "Balance structure": per-currency ``free``, ``used`` and ``total`` maps."""

    free: dict[str, Decimal | None] = {}
    used: dict[str, Decimal | None] = {}
    total: dict[str, Decimal | None] = {}

    def to_balances(self) -> list[Balance]:
        out = []
        for asset in sorted(set(self.free) | set(self.used) | set(self.total)):
            free = self.free.get(asset)
            used = self.used.get(asset)
            total = self.total.get(asset)
            if free is None and total is not None:
                free = total - (used or 0)
            if used is None and total is not None:
                used = total - (free or 0)
            free, used = free or Decimal(0), used or Decimal(0)
            if free or used:
                out.append(Balance(asset, free, used))
        return out


class CcxtPosition(msgspec.Struct, frozen=True):
    """ccxt Manual, "Position structure": ``contracts`` unsigned with ``side`` long/short."""

    symbol: str
    contracts: Decimal | None = None
    contractSize: Decimal | None = None
    side: str | None = None
    entryPrice: Decimal | None = None

    def to_position(self) -> Position:
        qty = (self.contracts or Decimal(0)) * (self.contractSize or Decimal(1))
        return Position(self.symbol, -qty if self.side == "short" else qty, self.entryPrice)


# ---- prices -----------------------------------------------------------------------------------


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


class CcxtLastPrice(msgspec.Struct, frozen=True):
    """One value of ``fetchLastPrices``' dict (ccxt 4.5 ``parse_last_price``: ``symbol``,
    ``timestamp``, ``price``, ``side``; binance: GET /api/v3/ticker/price)."""

    symbol: str | None = None
    timestamp: int | None = None
    price: Decimal | None = None

    def to_price(self) -> Decimal | None:
        return _positive(self.price)


class CcxtTicker(msgspec.Struct, frozen=True):
    """ccxt Manual, "Ticker structure" (fetchTicker, or a value of fetchTickers' dict):
    ``last`` is the last trade's price; ``close`` is the same where ccxt fills both."""

    symbol: str | None = None
    timestamp: int | None = None
    last: Decimal | None = None
    close: Decimal | None = None

    def to_price(self) -> Decimal | None:
        return _positive(self.last if self.last is not None else self.close)


MARKET = Schema(CcxtMarket)
ORDER = Schema(CcxtOrder)
TRADE = Schema(CcxtTrade)
BALANCE = Schema(CcxtBalance)
POSITION = Schema(CcxtPosition)
LAST_PRICE = Schema(CcxtLastPrice)
TICKER = Schema(CcxtTicker)
