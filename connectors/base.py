"""The connector contract: what every venue (native, ccxt-based or simulated) implements.

The gateway speaks to venues only through :class:`Connector`. Quantities and prices are
``Decimal``; times are UTC nanoseconds since the epoch; symbols are canonical (``BTC/USDT`` for
spot, ``BTC/USDT:USDT`` for linear perpetuals) and each connector maps them to its venue's form.

Orders are identified at the venue by a *venue client order id* derived from the gateway's
OrderID (:func:`venue_client_order_id`): unique, within each venue's length and charset rules,
and the same on every retry, so a place request that timed out can be found by query and never
creates a second order (Invariant 3).

Every change of an order's state at the venue reaches the gateway as a :data:`VenueEvent` on
:meth:`Connector.events`. Events may arrive twice or out of order (WebSocket reconnects,
reconciliation): the gateway deduplicates them by trade id and status (Invariant 2).

What the account holds reaches the gateway apart from the orders, as :class:`BalanceUpdate` on
:meth:`Connector.balance_events` (only where ``capabilities.balance_stream``): each update is
what the venue's private stream says one asset's balance *is* now, not a change, so a
duplicate is harmless and a lost one is made good by the next, or by :meth:`Connector.balances`
(REST) after a reconnect.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum


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


@dataclass(frozen=True, slots=True)
class Instrument:
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
class OrderRequest:
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


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """A native amend: new quantity (total, not remaining) and/or price."""

    client_order_id: str
    symbol: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    new_client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderState:
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
class OrderAccepted:
    client_order_id: str
    venue_order_id: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    client_order_id: str
    reason: RejectReason
    text: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderFilled:
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


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    client_order_id: str
    venue_order_id: str
    ts_ns: int
    reason: str = ""
    filled_quantity: Decimal | None = None
    """What the venue order had filled when it ended (venues report it: Binance ``z``, OKX
    ``accFillSz``, Bybit ``cumExecQty``); None when unknown. Lets the gateway see that a fill
    is still on its way without asking."""


@dataclass(frozen=True, slots=True)
class OrderExpired:
    client_order_id: str
    venue_order_id: str
    ts_ns: int
    filled_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderAmended:
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
class BalanceUpdate:
    """One asset of the venue account as the venue's private stream reports it now: absolute
    figures that replace what was known of that asset (Binance ``outboundAccountPosition``,
    OKX ``account`` channel, Bybit ``wallet`` topic). Not an order event: it travels on
    :meth:`Connector.balance_events`, never on :meth:`Connector.events`."""

    asset: str
    free: Decimal
    locked: Decimal
    ts_ns: int
    """The venue's time of the account update (0 when it gives none)."""

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


# ---- errors -----------------------------------------------------------------------------------


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


class VenueError(Exception):
    """Base class of what a connector raises."""


class VenueRejected(VenueError):  # noqa: N818 - the venue's answer, not our failure
    """The venue definitely refused the request (nothing happened there)."""

    def __init__(self, reason: RejectReason, text: str) -> None:
        super().__init__(f"{reason.value}: {text}")
        self.reason = reason
        self.text = text


class VenueAmbiguous(VenueError):  # noqa: N818
    """Timeout or dropped connection: the request may or may not have reached the venue.
    Never turn this into a reject: query the venue by client order id (Invariant 3)."""


class VenueUnavailable(VenueError):  # noqa: N818
    """The request was definitely not sent (venue down, banned, circuit open)."""


# ---- capabilities and the contract ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    order_types: frozenset[OrderType] = frozenset({OrderType.MARKET, OrderType.LIMIT})
    time_in_force: frozenset[TimeInForce] = frozenset(
        {TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}
    )
    post_only: bool = True
    reduce_only: bool = False
    amend: bool = False
    """A native amend exists (otherwise the gateway cancels, then places)."""
    amend_keeps_priority_on_qty_down: bool = False
    amend_new_client_order_id: bool = False
    """The native amend replaces the venue order with a new one that needs a client order id of
    its own (Binance cancelReplace): the gateway passes ``AmendRequest.new_client_order_id``,
    derived from its OrderID like every other, so it survives a restart."""
    bulk_cancel: bool = True
    batch_place: bool = False
    """A native batch-place endpoint exists (:meth:`Connector.place_batch` sends several
    orders per request; otherwise the gateway places them one by one)."""
    market_data: bool = False
    """The venue's public book and trades are available (:meth:`Connector.market_data`)."""
    balance_stream: bool = False
    """The account's balances are pushed as they change (:meth:`Connector.balance_events`), so
    the gateway may keep them instead of asking :meth:`Connector.balances` every time."""


@dataclass(frozen=True, slots=True)
class ClientOrderIdRules:
    max_length: int = 36
    pattern: str = r"^[A-Za-z0-9]+$"


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: Decimal
    """Signed: positive long, negative short."""
    entry_price: Decimal | None


@dataclass(frozen=True, slots=True)
class Health:
    connected: bool
    detail: str = ""
    latency_ms: float | None = None


Level = tuple[Decimal, Decimal]
"""One price level of a book: (price, total size)."""


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The whole book of one instrument as the venue's public feed says it is now (down to the
    depth the connector keeps): it replaces whatever was known. Levels best first."""

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Levels that changed since the last snapshot or update, in the feed's order: a size of
    zero removes the level (removing a level that is not there is not an error)."""

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class PublicTrade:
    symbol: str
    price: Decimal
    size: Decimal
    aggressor: Side | None
    trade_id: str
    ts_ns: int


MarketEvent = BookSnapshot | BookUpdate | PublicTrade


@dataclass(slots=True)
class VenueInfo:
    name: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    client_order_id_rules: ClientOrderIdRules = field(default_factory=ClientOrderIdRules)


class Connector(abc.ABC):
    """One venue account. Methods are coroutines; none may block the event loop."""

    info: VenueInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def capabilities(self) -> Capabilities:
        return self.info.capabilities

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect streams, load instruments."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abc.abstractmethod
    async def instruments(self) -> Sequence[Instrument]: ...

    @abc.abstractmethod
    async def place(self, request: OrderRequest) -> OrderAccepted:
        """Place an order. Raises VenueRejected, VenueAmbiguous or VenueUnavailable. The venue's
        acknowledgement and what follows also arrive on :meth:`events`."""

    async def place_batch(
        self, requests: Sequence[OrderRequest]
    ) -> list[OrderAccepted | VenueError]:
        """Place several orders: one outcome per request, in order, never raised. Where
        ``capabilities.batch_place`` the venue's batch endpoint is used, as many requests per
        call as it takes; the default places them one by one with :meth:`place`.

        An outcome is what :meth:`place` would return or raise for that order alone: an
        :class:`OrderAccepted`, or a :class:`VenueRejected`, :class:`VenueUnavailable` (not
        sent) or :class:`VenueAmbiguous`. A request of the batch that times out or loses its
        connection makes every order it carried ambiguous (Invariant 3: query each by client
        order id, never take it for refused); an order the venue's answer leaves out is
        ambiguous too."""
        out: list[OrderAccepted | VenueError] = []
        for request in requests:
            try:
                out.append(await self.place(request))
            except VenueError as exc:
                out.append(exc)
        return out

    @abc.abstractmethod
    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """Request a cancel; the outcome arrives as OrderCanceled (or VenueRejected here)."""

    async def amend(self, request: AmendRequest) -> None:
        """Native amend; only where ``capabilities.amend``."""
        raise VenueRejected(RejectReason.UNSUPPORTED, f"{self.name} has no native amend")

    @abc.abstractmethod
    async def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order (of ``symbol``); returns how many were cancelled."""

    @abc.abstractmethod
    async def query_order(
        self, symbol: str, client_order_id: str, *, venue_order_id: str | None = None
    ) -> OrderState | None:
        """The order with this client order id, or None when the venue never saw it.

        ``venue_order_id``: the venue's id of that same order, when the caller knows it (the
        gateway stores it). A connector then asks by it where the venue can: the client order
        id alone may no longer find the order (Binance: a cancel replaces the order's
        clientOrderId) or the connector may have forgotten the venue's id (a restart). The
        state names ``client_order_id`` whatever the venue shows."""

    @abc.abstractmethod
    async def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]: ...

    @abc.abstractmethod
    async def fills_since(self, since_ns: int) -> Sequence[OrderFilled]: ...

    @abc.abstractmethod
    async def balances(self) -> Sequence[Balance]: ...

    async def positions(self) -> Sequence[Position]:
        return ()

    @abc.abstractmethod
    def events(self) -> AsyncIterator[VenueEvent]:
        """The stream of normalized order events (one consumer)."""

    async def balance_events(self) -> AsyncIterator[BalanceUpdate]:
        """The account's balances as the venue's private stream pushes them (one consumer;
        only where ``capabilities.balance_stream``). A consumer that reads late gets the
        latest figures of each asset, not every step. The default pushes nothing and ends at
        once: the venue is then asked over REST (:meth:`balances`)."""
        return
        yield  # an async generator that yields nothing

    @abc.abstractmethod
    async def health(self) -> Health: ...

    def last_price(self, symbol: str) -> Decimal | None:
        """The venue's last traded (or mid) price as last seen, for pre-trade price checks;
        None when unknown. Must not do I/O."""
        return None

    def market_data(self, symbol: str) -> AsyncIterator[MarketEvent]:
        """The venue's public feed of one instrument, its integrity checked by the connector
        with the venue's own rules: a :class:`BookSnapshot` first and again after every
        resynchronisation, then :class:`BookUpdate` in order, and the trades. One consumer
        per call; it ends when the connector closes. Only when ``capabilities.market_data``."""
        raise NotImplementedError(f"{self.name}: no market data feed")


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


_RULE_PATTERNS: dict[str, re.Pattern[str]] = {}
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def venue_client_order_id(order_id: str, version: int, rules: ClientOrderIdRules) -> str:
    """The venue client order id of the ``version``-th venue order of a gateway order.

    Deterministic (a retry reuses it), unique across orders and versions, and within the venue's
    rules: ``fgw`` + the OrderID's characters the pattern allows (+ ``v<version>``); when that
    is too long, a 128-bit digest of OrderID and version in base 36 stands instead.
    """
    suffix = f"v{version}" if version else ""
    allowed = _RULE_PATTERNS.get(rules.pattern)
    if allowed is None:  # (a venue's rules: a handful of patterns in a process)
        allowed = _RULE_PATTERNS[rules.pattern] = re.compile(rules.pattern)
    # (an OrderID of letters and digits, fixgw's own, is kept whole: nothing to take out)
    kept = order_id if order_id.isascii() and order_id.isalnum() else _NOT_ALNUM.sub("", order_id)
    plain = "fgw" + kept + suffix
    fits = len(plain) <= rules.max_length and allowed.match(plain) is not None
    if fits and kept == order_id:
        return plain
    digest = int.from_bytes(hashlib.sha256(f"{order_id}/{version}".encode()).digest()[:16], "big")
    out = ""
    while digest:
        digest, r = divmod(digest, 36)
        out = _B36[r] + out
    cid = ("fgw" + out)[: rules.max_length]
    if not allowed.match(cid):
        raise ValueError(f"no client order id fits the rules {rules}")
    return cid
