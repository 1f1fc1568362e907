"""The values that cross the connector contract (:mod:`connectors.base`): the enums, the venue's
order events, the requests, balances and the public feed's book and trades.

Compiled by mypyc (:data:`connectors.native.EVENTS`, installed by the ``connectors`` package):
every order builds several of them (its request, the venue's acknowledgement and fill, the
balances they move), and a frozen dataclass's generated ``__init__`` runs interpreted, setting
each field through ``object.__setattr__`` (about 2 us for a request's twelve fields). The ones
made on every order write their ``__init__`` (compiled: native stores;
:func:`connectors.native.dataclass_init_when_interpreted` gives them back the generated one when
they run as Python). :mod:`connectors.base` imports every name of this module: import them from
there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from connectors.native import dataclass_init_when_interpreted


class IdentityEnum(Enum):
    """An Enum hashed by identity (its members are singletons, and equal only to themselves):
    CPython 3.11's ``Enum.__hash__`` is a Python function, called on every dict or set lookup
    of a member -- dozens per order on the order path."""

    __hash__ = object.__hash__


class Side(IdentityEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(IdentityEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(IdentityEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"


class Liquidity(IdentityEnum):
    MAKER = "maker"
    TAKER = "taker"


class VenueStatus(IdentityEnum):
    """An order's state as the venue reports it."""

    PENDING = "pending"  # accepted for processing, not yet resting (e.g. stop not triggered)
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in _OPEN_STATUSES


_OPEN_STATUSES = frozenset((VenueStatus.PENDING, VenueStatus.NEW, VenueStatus.PARTIALLY_FILLED))
"""(a module constant: an Enum class's members read through its metaclass are slow)"""


class InstrumentKind(IdentityEnum):
    SPOT = "spot"
    PERPETUAL = "perpetual"


class _Value:
    """The base of the contract's dataclasses: copied, deep-copied and pickled by rebuilding
    them from their fields (compiled, an instance has no ``__dict__`` to restore and its
    ``__init__`` takes every field)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Instrument(_Value):
    symbol: str
    """Canonical: BASE/QUOTE or BASE/QUOTE:SETTLE."""
    venue_symbol: str
    base: str
    quote: str
    kind: InstrumentKind = InstrumentKind.SPOT
    settle: str | None = None
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0")
    min_notional: Decimal = Decimal("0")
    max_qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest(_Value):
    """A new order as the venue should receive it (already within the instrument rules)."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    account: str | None = None

    # (written, to be compiled: connectors.native.dataclass_init_when_interpreted)
    def __init__(
        self, client_order_id: str, symbol: str, side: Side, type: OrderType,
        quantity: Decimal, price: Decimal | None = None, stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC, expire_time_ns: int | None = None,
        post_only: bool = False, reduce_only: bool = False, account: str | None = None,
    ) -> None:
        self.client_order_id = client_order_id  # type: ignore[misc]
        self.symbol = symbol  # type: ignore[misc]
        self.side = side  # type: ignore[misc]
        self.type = type  # type: ignore[misc]
        self.quantity = quantity  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.stop_price = stop_price  # type: ignore[misc]
        self.time_in_force = time_in_force  # type: ignore[misc]
        self.expire_time_ns = expire_time_ns  # type: ignore[misc]
        self.post_only = post_only  # type: ignore[misc]
        self.reduce_only = reduce_only  # type: ignore[misc]
        self.account = account  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class AmendRequest(_Value):
    """A native amend: new quantity (total, not remaining) and/or price."""

    client_order_id: str
    symbol: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    new_client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderState(_Value):
    """An order as the venue knows it (answer to queries and reconciliation)."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    status: VenueStatus
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Decimal | None
    price: Decimal | None = None
    updated_ns: int = 0


# ---- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderAccepted(_Value):
    client_order_id: str
    venue_order_id: str
    ts_ns: int

    # (written, to be compiled)
    def __init__(self, client_order_id: str, venue_order_id: str, ts_ns: int) -> None:
        self.client_order_id = client_order_id  # type: ignore[misc]
        self.venue_order_id = venue_order_id  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OrderRejected(_Value):
    client_order_id: str
    reason: RejectReason
    text: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderFilled(_Value):
    client_order_id: str
    venue_order_id: str
    trade_id: str
    """The venue's own trade id: unique per venue, the key for exactly-once delivery."""
    quantity: Decimal
    price: Decimal
    fee: Decimal | None
    fee_currency: str | None
    liquidity: Liquidity | None
    ts_ns: int

    # (written, to be compiled)
    def __init__(
        self, client_order_id: str, venue_order_id: str, trade_id: str, quantity: Decimal,
        price: Decimal, fee: Decimal | None, fee_currency: str | None,
        liquidity: Liquidity | None, ts_ns: int,
    ) -> None:
        self.client_order_id = client_order_id  # type: ignore[misc]
        self.venue_order_id = venue_order_id  # type: ignore[misc]
        self.trade_id = trade_id  # type: ignore[misc]
        self.quantity = quantity  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.fee = fee  # type: ignore[misc]
        self.fee_currency = fee_currency  # type: ignore[misc]
        self.liquidity = liquidity  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OrderCanceled(_Value):
    client_order_id: str
    venue_order_id: str
    ts_ns: int
    reason: str = ""
    filled_quantity: Decimal | None = None
    """What the venue order had filled when it ended (venues report it: Binance ``z``, OKX
    ``accFillSz``, Bybit ``cumExecQty``); None when unknown. Lets the gateway see that a fill
    is still on its way without asking."""


@dataclass(frozen=True, slots=True)
class OrderExpired(_Value):
    client_order_id: str
    venue_order_id: str
    ts_ns: int
    filled_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderAmended(_Value):
    client_order_id: str
    venue_order_id: str
    quantity: Decimal
    price: Decimal | None
    ts_ns: int
    new_client_order_id: str | None = None


VenueEvent = (
    OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderExpired | OrderAmended
)


@dataclass(frozen=True, slots=True)
class BalanceUpdate(_Value):
    """One asset of the venue account as the venue's private stream reports it now: absolute
    figures that replace what was known of that asset (Binance ``outboundAccountPosition``,
    OKX ``account`` channel, Bybit ``wallet`` topic). Not an order event: it travels on
    :meth:`Connector.balance_events`, never on :meth:`Connector.events`."""

    asset: str
    free: Decimal
    locked: Decimal
    ts_ns: int
    """The venue's time of the account update (0 when it gives none)."""

    # (written, to be compiled)
    def __init__(self, asset: str, free: Decimal, locked: Decimal, ts_ns: int) -> None:
        self.asset = asset  # type: ignore[misc]
        self.free = free  # type: ignore[misc]
        self.locked = locked  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class RejectReason(IdentityEnum):
    """Why a venue refused a request; mapped to OrdRejReason (103) / CxlRejReason (102)."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNKNOWN_SYMBOL = "unknown_symbol"
    PRICE_FILTER = "price_filter"
    LOT_FILTER = "lot_filter"
    MIN_NOTIONAL = "min_notional"
    UNSUPPORTED = "unsupported"
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    UNKNOWN_ORDER = "unknown_order"
    TOO_LATE = "too_late"
    DUPLICATE_ORDER = "duplicate_order"
    RATE_LIMIT = "rate_limit"
    VENUE_UNAVAILABLE = "venue_unavailable"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Balance(_Value):
    asset: str
    free: Decimal
    locked: Decimal

    # (written, to be compiled)
    def __init__(self, asset: str, free: Decimal, locked: Decimal) -> None:
        self.asset = asset  # type: ignore[misc]
        self.free = free  # type: ignore[misc]
        self.locked = locked  # type: ignore[misc]

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Position(_Value):
    symbol: str
    quantity: Decimal
    """Signed: positive long, negative short."""
    entry_price: Decimal | None


Level = tuple[Decimal, Decimal]
"""One price level of a book: (price, total size)."""


@dataclass(frozen=True, slots=True)
class BookSnapshot(_Value):
    """The whole book of one instrument as the venue's public feed says it is now (down to the
    depth the connector keeps): it replaces whatever was known. Levels best first."""

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class BookUpdate(_Value):
    """Levels that changed since the last snapshot or update, in the feed's order: a size of
    zero removes the level (removing a level that is not there is not an error)."""

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class PublicTrade(_Value):
    symbol: str
    price: Decimal
    size: Decimal
    aggressor: Side | None
    trade_id: str
    ts_ns: int

    # (written, to be compiled)
    def __init__(self, symbol: str, price: Decimal, size: Decimal, aggressor: Side | None,
                 trade_id: str, ts_ns: int) -> None:
        self.symbol = symbol  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.size = size  # type: ignore[misc]
        self.aggressor = aggressor  # type: ignore[misc]
        self.trade_id = trade_id  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]


MarketEvent = BookSnapshot | BookUpdate | PublicTrade


dataclass_init_when_interpreted(OrderRequest, OrderAccepted, OrderFilled, BalanceUpdate, Balance,
                                PublicTrade)
