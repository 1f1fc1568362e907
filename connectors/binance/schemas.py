"""Binance Spot payloads as msgspec schemas: frozen structs with Binance's own field names, one
decoder per message type, and ``to_<ours>()`` conversions.

REST shapes follow the Spot REST API ("Exchange information", "New order (TRADE)", "Cancel order
(TRADE)", "Cancel an Existing Order and Send a New Order (TRADE)", "Query order (USER_DATA)",
"Current open orders (USER_DATA)", "Account trade list (USER_DATA)", "Account information
(USER_DATA)", "Symbol price ticker", "Order book"); stream shapes follow "User Data Streams for
Binance", the WebSocket API "Response format" / "Event format", and "WebSocket Streams for
Binance" ("Trade Streams", "Diff. Depth Stream").
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from connectors.base import (
    Balance,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderState,
    PublicTrade,
    RejectReason,
    Side,
    VenueEvent,
    VenueStatus,
)
from connectors.base import BalanceUpdate as AssetUpdate  # (BalanceUpdate: Binance's, below)
from connectors.common.ratelimit import WindowSpec
from connectors.common.venue import MS, ms_to_ns

ZERO = Decimal(0)

STATUS: dict[str, VenueStatus] = {
    "NEW": VenueStatus.NEW,
    "PENDING_NEW": VenueStatus.PENDING,
    "PARTIALLY_FILLED": VenueStatus.PARTIALLY_FILLED,
    "FILLED": VenueStatus.FILLED,
    "CANCELED": VenueStatus.CANCELED,
    "PENDING_CANCEL": VenueStatus.PARTIALLY_FILLED,
    "REJECTED": VenueStatus.REJECTED,
    "EXPIRED": VenueStatus.EXPIRED,
    "EXPIRED_IN_MATCH": VenueStatus.EXPIRED,
}
"""Order status (Spot "ENUM definitions", Order status). PENDING_CANCEL is "currently unused"."""


def present(raw: msgspec.Raw) -> bool:
    """A Raw field that was sent and is not ``null``."""
    return len(raw) > 0 and bytes(raw) != b"null"


def trade_key(symbol: str, trade_id: int) -> str:
    """Binance trade ids are unique per symbol only: ours are ``<SYMBOL>:<id>``."""
    return f"{symbol}:{trade_id}"


class BinanceError(msgspec.Struct, frozen=True):
    code: int
    msg: str


class ServerTime(msgspec.Struct, frozen=True):
    serverTime: int


class SymbolFilter(msgspec.Struct, frozen=True, kw_only=True):
    """One of a symbol's filters (Spot "Filters"); only the fields we read are named."""

    filterType: str
    minPrice: str | None = None
    maxPrice: str | None = None
    tickSize: str | None = None
    minQty: str | None = None
    maxQty: str | None = None
    stepSize: str | None = None
    minNotional: str | None = None
    maxNotional: str | None = None


class SymbolInfo(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    status: str
    baseAsset: str
    quoteAsset: str
    baseAssetPrecision: int = 8
    quoteAssetPrecision: int = 8
    orderTypes: list[str] = []
    isSpotTradingAllowed: bool = True
    filters: list[SymbolFilter] = []
    permissionSets: list[list[str]] = []

    def filter(self, kind: str) -> SymbolFilter | None:
        return next((f for f in self.filters if f.filterType == kind), None)

    def to_instrument(self) -> Instrument:
        price = self.filter("PRICE_FILTER")
        lot = self.filter("LOT_SIZE")
        notional = self.filter("NOTIONAL") or self.filter("MIN_NOTIONAL")
        max_qty = Decimal(lot.maxQty) if lot is not None and lot.maxQty else None
        return Instrument(
            symbol=f"{self.baseAsset}/{self.quoteAsset}",
            venue_symbol=self.symbol,
            base=self.baseAsset,
            quote=self.quoteAsset,
            kind=InstrumentKind.SPOT,
            tick_size=Decimal(price.tickSize) if price and price.tickSize else Decimal("1e-8"),
            lot_size=Decimal(lot.stepSize) if lot and lot.stepSize else Decimal("1e-8"),
            min_qty=Decimal(lot.minQty) if lot and lot.minQty else ZERO,
            min_notional=(
                Decimal(notional.minNotional) if notional and notional.minNotional else ZERO
            ),
            max_qty=max_qty if max_qty else None,
        )


_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}
_INTERVAL_LETTER = {"SECOND": "s", "MINUTE": "m", "HOUR": "h", "DAY": "d"}


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """One of exchangeInfo's ``rateLimits`` ("ENUM definitions / Rate limiters": REQUEST_WEIGHT,
    ORDERS, RAW_REQUESTS; intervals SECOND, MINUTE, HOUR, DAY)."""

    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int

    def to_window(self) -> tuple[str, WindowSpec, str | None] | None:
        """(the kind, our window, the response header that reports its use), or None for a
        kind or interval we do not know. Windows are named ``weight`` (REQUEST_WEIGHT per
        minute), ``weight_<n><unit>``, ``orders_<n><unit>`` (``orders_10s``, ``orders_1d``) and
        ``raw_<n><unit>``; the headers are ``X-MBX-USED-WEIGHT-<n><unit>`` and
        ``X-MBX-ORDER-COUNT-<n><unit>`` ("LIMITS")."""
        seconds = _INTERVAL_S.get(self.interval)
        if seconds is None or self.intervalNum <= 0 or self.limit <= 0:
            return None
        suffix = f"{self.intervalNum}{_INTERVAL_LETTER[self.interval]}"
        interval_s = float(seconds * self.intervalNum)
        if self.rateLimitType == "REQUEST_WEIGHT":
            name = "weight" if suffix == "1m" else f"weight_{suffix}"
            return "weight", WindowSpec(name, self.limit, interval_s), \
                f"x-mbx-used-weight-{suffix}"
        if self.rateLimitType == "ORDERS":
            return "orders", WindowSpec(f"orders_{suffix}", self.limit, interval_s), \
                f"x-mbx-order-count-{suffix}"
        if self.rateLimitType == "RAW_REQUESTS":
            return "raw", WindowSpec(f"raw_{suffix}", self.limit, interval_s), None
        return None


class OrderCount(RateLimit, frozen=True, kw_only=True):
    """One entry of ``GET /api/v3/rateLimit/order`` ("Query Unfilled Order Count"): the
    account's own ORDERS limit of an interval and how much of it is used."""

    count: int


class ExchangeInfo(msgspec.Struct, frozen=True, kw_only=True):
    timezone: str = "UTC"
    serverTime: int = 0
    rateLimits: list[RateLimit] = []
    symbols: list[SymbolInfo] = []

    def to_instruments(self) -> list[Instrument]:
        return [s.to_instrument() for s in self.symbols
                if s.status == "TRADING" and s.isSpotTradingAllowed]


class OrderFill(msgspec.Struct, frozen=True):
    price: str
    qty: str
    commission: str
    commissionAsset: str
    tradeId: int


class BinanceOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order as REST answers it: new order (ACK/RESULT/FULL), cancel, query, open orders."""

    symbol: str
    orderId: int
    clientOrderId: str
    origClientOrderId: str | None = None
    """Cancels only: the cancelled order's client order id (``clientOrderId`` is the cancel's)."""
    transactTime: int | None = None
    price: str | None = None
    origQty: str | None = None
    executedQty: str | None = None
    cummulativeQuoteQty: str | None = None
    status: str | None = None
    timeInForce: str | None = None
    type: str | None = None
    side: str | None = None
    stopPrice: str | None = None
    time: int | None = None
    updateTime: int | None = None
    workingTime: int | None = None
    fills: list[OrderFill] = []

    @property
    def order_client_id(self) -> str:
        return self.origClientOrderId or self.clientOrderId

    def to_state(self, symbol: str, carried: Decimal = ZERO) -> OrderState:
        """``carried``: what earlier venue orders of this client order id filled before a
        cancel-replace (the gateway sees one order with the total quantity)."""
        filled = Decimal(self.executedQty or "0")
        quote = Decimal(self.cummulativeQuoteQty or "0")
        price = Decimal(self.price) if self.price and Decimal(self.price) else None
        ts = self.updateTime or self.transactTime or self.time or 0
        return OrderState(
            client_order_id=self.order_client_id,
            venue_order_id=str(self.orderId),
            symbol=symbol,
            side=Side.BUY if self.side == "BUY" else Side.SELL,
            status=STATUS.get(self.status or "NEW", VenueStatus.NEW),
            quantity=Decimal(self.origQty or "0") + carried,
            filled_quantity=filled + carried,
            average_price=quote / filled if filled > 0 and quote > 0 else None,
            price=price,
            updated_ns=ts * MS,
        )

    def to_accepted(self) -> OrderAccepted:
        return OrderAccepted(self.clientOrderId, str(self.orderId),
                             ms_to_ns(self.transactTime or self.time))


class CancelReplaceResult(msgspec.Struct, frozen=True, kw_only=True):
    """200 answer of POST /api/v3/order/cancelReplace, and the ``data`` of its -2021/-2022."""

    cancelResult: str
    newOrderResult: str
    cancelResponse: msgspec.Raw = msgspec.Raw()
    newOrderResponse: msgspec.Raw = msgspec.Raw()


class CancelReplaceError(msgspec.Struct, frozen=True):
    code: int
    msg: str
    data: CancelReplaceResult | None = None


class MyTrade(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    id: int
    orderId: int
    price: str
    qty: str
    quoteQty: str = "0"
    commission: str
    commissionAsset: str
    time: int
    isBuyer: bool
    isMaker: bool
    orderListId: int = -1
    isBestMatch: bool = True

    def to_fill(self, client_order_id: str) -> OrderFilled:
        return OrderFilled(
            client_order_id=client_order_id,
            venue_order_id=str(self.orderId),
            trade_id=trade_key(self.symbol, self.id),
            quantity=Decimal(self.qty),
            price=Decimal(self.price),
            fee=Decimal(self.commission),
            fee_currency=self.commissionAsset or None,
            liquidity=Liquidity.MAKER if self.isMaker else Liquidity.TAKER,
            ts_ns=self.time * MS,
        )


class AssetBalance(msgspec.Struct, frozen=True):
    asset: str
    free: str
    locked: str

    def to_balance(self) -> Balance:
        return Balance(self.asset, Decimal(self.free), Decimal(self.locked))


class AccountInfo(msgspec.Struct, frozen=True, kw_only=True):
    canTrade: bool = True
    accountType: str = "SPOT"
    updateTime: int = 0
    balances: list[AssetBalance] = []

    def to_balances(self) -> list[Balance]:
        return [b.to_balance() for b in self.balances]


class TickerPrice(msgspec.Struct, frozen=True):
    symbol: str
    price: str


# ---- WebSocket API ---------------------------------------------------------------------------


class WsRateLimit(msgspec.Struct, frozen=True, kw_only=True):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int
    count: int


class WsResponse(msgspec.Struct, frozen=True, kw_only=True):
    """An answer to a WebSocket API request ("Response format")."""

    id: str | int | None
    status: int
    result: msgspec.Raw = msgspec.Raw()
    error: BinanceError | None = None
    rateLimits: list[WsRateLimit] = []


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True, tag_field="e",
                      tag="executionReport"):
    """"Order Update": one per order change (NEW, TRADE, CANCELED, EXPIRED, REJECTED, ...)."""

    E: int
    s: str
    c: str
    S: str
    o: str
    f: str
    q: str
    p: str
    P: str = "0"
    C: str = ""
    x: str
    X: str
    r: str = "NONE"
    i: int
    l: str  # noqa: E741 - Binance's field name
    z: str
    L: str
    n: str = "0"
    N: str | None = None
    T: int
    t: int = -1
    m: bool = False
    w: bool = False
    O: int = 0  # noqa: E741 - Binance's field name
    Z: str = "0"

    @property
    def client_order_id(self) -> str:
        """The order's own client order id (a cancel's ``c`` is the cancel request's id)."""
        return self.C if self.x == "CANCELED" and self.C else self.c

    def to_event(self) -> VenueEvent | None:
        ts = self.T * MS if self.T else self.E * MS
        coid, oid = self.client_order_id, str(self.i)
        filled = Decimal(self.z)
        if self.x == "NEW":
            return OrderAccepted(coid, oid, ts)
        if self.x == "TRADE":
            return OrderFilled(
                client_order_id=coid, venue_order_id=oid, trade_id=trade_key(self.s, self.t),
                quantity=Decimal(self.l), price=Decimal(self.L), fee=Decimal(self.n or "0"),
                fee_currency=self.N or None,
                liquidity=Liquidity.MAKER if self.m else Liquidity.TAKER, ts_ns=ts,
            )
        if self.x == "CANCELED":
            return OrderCanceled(coid, oid, ts, "canceled", filled)
        if self.x in ("EXPIRED", "TRADE_PREVENTION"):
            return OrderExpired(coid, oid, ts, filled)
        if self.x == "REJECTED":
            return OrderRejected(coid, RejectReason.OTHER, f"rejected by Binance: {self.r}", ts)
        if self.x == "REPLACED":  # Order Amend Keep Priority
            return OrderAmended(coid, oid, Decimal(self.q), Decimal(self.p) or None, ts)
        return None


class AccountPositionBalance(msgspec.Struct, frozen=True):
    a: str
    f: str
    l: str  # noqa: E741 - Binance's field name

    def to_balance(self) -> Balance:
        return Balance(self.a, Decimal(self.f), Decimal(self.l))


class OutboundAccountPosition(msgspec.Struct, frozen=True, kw_only=True, tag_field="e",
                              tag="outboundAccountPosition"):
    """user-data-stream.md "Account Update": sent whenever a balance changed, with the assets
    the change may have touched: ``a`` asset, ``f`` free, ``l`` locked; ``E`` event time,
    ``u`` time of the last account update (ms)."""

    E: int
    u: int
    B: list[AccountPositionBalance]

    def to_balances(self) -> list[Balance]:
        return [b.to_balance() for b in self.B]

    def to_updates(self) -> list[AssetUpdate]:
        ts = (self.u or self.E) * MS
        return [AssetUpdate(b.a, Decimal(b.f), Decimal(b.l), ts) for b in self.B]


class BalanceUpdate(msgspec.Struct, frozen=True, kw_only=True, tag_field="e",
                    tag="balanceUpdate"):
    E: int
    a: str
    d: str
    T: int

    @property
    def delta(self) -> Decimal:
        return Decimal(self.d)


class EventStreamTerminated(msgspec.Struct, frozen=True, kw_only=True, tag_field="e",
                            tag="eventStreamTerminated"):
    E: int


UserEvent = ExecutionReport | OutboundAccountPosition | BalanceUpdate | EventStreamTerminated


class UserEventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A User Data Stream event on the WebSocket API ("Event format")."""

    event: msgspec.Raw
    subscriptionId: int | None = None


class WsFrame(msgspec.Struct, frozen=True, kw_only=True):
    """What a WebSocket API text frame is: an answer (``id``/``status``) or an event."""

    id: str | int | None = None
    status: int | None = None
    event: msgspec.Raw = msgspec.Raw()


# ---- public market data (WebSocket Streams, "Market Data endpoints") ----------------------


class DepthSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v3/depth`` ("Order book"): the best ``limit`` levels a side, as of the update
    id ``lastUpdateId``."""

    lastUpdateId: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class DepthUpdate(msgspec.Struct, frozen=True, kw_only=True, tag_field="e",
                  tag="depthUpdate"):
    """"Diff. Depth Stream" (``<symbol>@depth@100ms``): the levels changed by the updates
    ``U`` to ``u``, each with its new total quantity (0: the level is gone)."""

    E: int
    s: str
    U: int
    u: int
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class PublicTradeEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="e", tag="trade"):
    """"Trade Streams" (``<symbol>@trade``): ``m`` "Is the buyer the market maker?"."""

    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    M: bool = True

    def to_trade(self, symbol: str) -> PublicTrade:
        """The buyer was the maker: the seller aggressed."""
        return PublicTrade(symbol, Decimal(self.p), Decimal(self.q),
                           Side.SELL if self.m else Side.BUY, trade_key(self.s, self.t),
                           self.T * MS)


MarketStreamEvent = DepthUpdate | PublicTradeEvent


class CombinedStreamEvent(msgspec.Struct, frozen=True):
    """A combined stream's frame (``/stream?streams=...``): ``{"stream": <streamName>,
    "data": <rawPayload>}`` ("General WSS information")."""

    stream: str
    data: MarketStreamEvent


# one decoder per message type, built once
ERROR = msgspec.json.Decoder(BinanceError)
SERVER_TIME = msgspec.json.Decoder(ServerTime)
EXCHANGE_INFO = msgspec.json.Decoder(ExchangeInfo)
ORDER_COUNTS = msgspec.json.Decoder(list[OrderCount])
ORDER = msgspec.json.Decoder(BinanceOrder)
ORDERS = msgspec.json.Decoder(list[BinanceOrder])
CANCELED_LIST = msgspec.json.Decoder(list[msgspec.Raw])
"""DELETE /api/v3/openOrders: orders and order lists (counted, not read)."""
CANCEL_REPLACE = msgspec.json.Decoder(CancelReplaceResult)
CANCEL_REPLACE_ERROR = msgspec.json.Decoder(CancelReplaceError)
MY_TRADES = msgspec.json.Decoder(list[MyTrade])
ACCOUNT = msgspec.json.Decoder(AccountInfo)
TICKER_PRICES = msgspec.json.Decoder(list[TickerPrice])
TICKER_PRICE = msgspec.json.Decoder(TickerPrice)
WS_FRAME = msgspec.json.Decoder(WsFrame)
WS_RESPONSE = msgspec.json.Decoder(WsResponse)
USER_EVENT = msgspec.json.Decoder(UserEvent)
USER_EVENT_ENVELOPE = msgspec.json.Decoder(UserEventEnvelope)
DEPTH_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot)
COMBINED_STREAM_EVENT = msgspec.json.Decoder(CombinedStreamEvent)
MARKET_STREAM_EVENT = msgspec.json.Decoder(MarketStreamEvent)
"""A raw stream's frame (``/ws/<streamName>``)."""
