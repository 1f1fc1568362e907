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

from connectors.events import (  # the values of the contract (compiled: connectors/events.py)
    AmendRequest,
    Balance,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    IdentityEnum,
    Instrument,
    InstrumentKind,
    Level,
    Liquidity,
    MarketEvent,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderType,
    Position,
    PublicTrade,
    RejectReason,
    Side,
    TimeInForce,
    VenueEvent,
    VenueStatus,
)

__all__ = [
    "AmendRequest",
    "Balance",
    "BalanceUpdate",
    "BookSnapshot",
    "BookUpdate",
    "Capabilities",
    "ClientOrderIdRules",
    "Connector",
    "Health",
    "IdentityEnum",
    "Instrument",
    "InstrumentKind",
    "Level",
    "Liquidity",
    "MarketEvent",
    "OrderAccepted",
    "OrderAmended",
    "OrderCanceled",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderRequest",
    "OrderState",
    "OrderType",
    "Position",
    "PublicTrade",
    "RejectReason",
    "Side",
    "TimeInForce",
    "VenueAmbiguous",
    "VenueError",
    "VenueEvent",
    "VenueInfo",
    "VenueRejected",
    "VenueStatus",
    "VenueUnavailable",
    "venue_client_order_id",
]


# ---- errors -----------------------------------------------------------------------------------


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
class Health:
    connected: bool
    detail: str = ""
    latency_ms: float | None = None


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
