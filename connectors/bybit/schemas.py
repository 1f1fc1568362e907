"""Bybit v5 payloads as frozen msgspec structs, keeping Bybit's own field names.

Every REST answer is an envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``
(https://bybit-exchange.github.io/docs/v5/intro); :class:`Head` reads the code first (an error's
``result`` is ``{}``), then the endpoint's :class:`Envelope` decodes the result. Numbers are
strings on the wire and become ``Decimal`` in ``to_<ours>()``; times are ms strings and become
UTC ns.
"""

from __future__ import annotations

import builtins
from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

from connectors.base import (
    Balance,
    BalanceUpdate,
    Instrument,
    InstrumentKind,
    Liquidity,
    OrderFilled,
    OrderState,
    Position,
    Side,
    VenueStatus,
)
from connectors.common.venue import dec_or_zero, ms_to_ns

T = TypeVar("T")

_d = dec_or_zero
_ns = ms_to_ns


class Head(msgspec.Struct, frozen=True):
    retCode: int
    retMsg: str = ""
    time: int = 0


class Envelope(msgspec.Struct, Generic[T], frozen=True):
    retCode: int
    retMsg: str
    result: T
    time: int = 0


class Page(msgspec.Struct, Generic[T], frozen=True):
    """A ``result`` of one page of a list endpoint (instruments, orders, executions,
    positions): the next page is asked for with ``cursor=nextPageCursor`` ("" on the last)."""

    list: builtins.list[T]
    category: str = ""
    nextPageCursor: str = ""


# ---- market (https://bybit-exchange.github.io/docs/v5/market/time, .../instrument, .../tickers)


class ServerTime(msgspec.Struct, frozen=True):
    timeSecond: str
    timeNano: str

    def to_ns(self) -> int:
        return int(self.timeNano)


class PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str
    minPrice: str = ""
    maxPrice: str = ""


class LotSizeFilter(msgspec.Struct, frozen=True):
    """Spot: basePrecision, minOrderAmt, maxLimitOrderQty, maxMarketOrderQty (minOrderQty,
    maxOrderQty and maxOrderAmt are deprecated: "no longer check minOrderQty, check minOrderAmt
    instead"); linear: qtyStep, minOrderQty, maxOrderQty (limit and PostOnly), maxMktOrderQty,
    minNotionalValue (Get Instruments Info, response parameters)."""

    minOrderQty: str = ""
    maxOrderQty: str = ""
    basePrecision: str = ""
    quotePrecision: str = ""
    minOrderAmt: str = ""
    maxOrderAmt: str = ""
    maxLimitOrderQty: str = ""
    maxMarketOrderQty: str = ""
    qtyStep: str = ""
    minNotionalValue: str = ""
    maxMktOrderQty: str = ""


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    baseCoin: str
    quoteCoin: str
    status: str
    priceFilter: PriceFilter
    lotSizeFilter: LotSizeFilter
    settleCoin: str = ""
    contractType: str = ""

    def to_instrument(self, category: str) -> Instrument:
        lot = self.lotSizeFilter
        max_limit = lot.maxLimitOrderQty or lot.maxOrderQty
        max_qty = Decimal(max_limit) if max_limit else None
        if category == "linear":
            settle = self.settleCoin or self.quoteCoin
            return Instrument(
                symbol=f"{self.baseCoin}/{self.quoteCoin}:{settle}",
                venue_symbol=self.symbol, base=self.baseCoin, quote=self.quoteCoin,
                kind=InstrumentKind.PERPETUAL, settle=settle,
                tick_size=Decimal(self.priceFilter.tickSize), lot_size=_d(lot.qtyStep),
                min_qty=_d(lot.minOrderQty), min_notional=_d(lot.minNotionalValue),
                max_qty=max_qty,
            )
        return Instrument(
            symbol=f"{self.baseCoin}/{self.quoteCoin}", venue_symbol=self.symbol,
            base=self.baseCoin, quote=self.quoteCoin,
            tick_size=Decimal(self.priceFilter.tickSize), lot_size=_d(lot.basePrecision),
            min_qty=_d(lot.basePrecision), min_notional=_d(lot.minOrderAmt), max_qty=max_qty,
        )  # spot minOrderQty is deprecated and no longer checked: one basePrecision step


class Ticker(msgspec.Struct, frozen=True):
    """One entry of ``result.list`` of GET /v5/market/tickers
    (https://bybit-exchange.github.io/docs/v5/market/tickers, response parameters, tabs "Spot"
    and "Linear/Inverse"; both carry these fields, linear adds mark/index price, funding and open
    interest, which nobody here reads). An empty string is a price the venue does not have."""

    symbol: str
    lastPrice: str = ""
    bid1Price: str = ""
    bid1Size: str = ""
    ask1Price: str = ""
    ask1Size: str = ""
    markPrice: str = ""
    """Linear only."""
    indexPrice: str = ""
    """Linear only."""

    def to_last_price(self) -> Decimal | None:
        """The last traded price; the mid of ``bid1Price`` and ``ask1Price`` when nothing has
        traded; None when neither is known."""
        last = _d(self.lastPrice)
        if last > 0:
            return last
        bid, ask = _d(self.bid1Price), _d(self.ask1Price)
        if bid > 0 and ask > 0:
            return (bid + ask) / 2
        return None


class TickerList(msgspec.Struct, frozen=True):
    category: str
    list: builtins.list[Ticker]


# ---- orders (https://bybit-exchange.github.io/docs/v5/order/create-order, .../open-order) -----


class OrderIds(msgspec.Struct, frozen=True):
    orderId: str
    orderLinkId: str


class CancelAllResult(msgspec.Struct, frozen=True):
    list: builtins.list[OrderIds]
    success: str = ""


class BatchItem(msgspec.Struct, frozen=True):
    """One entry of ``result.list`` of Batch Place Order (with ``createAt``) and Batch Cancel
    Order (without). A failed entry has an empty ``orderId`` (and ``createAt``)."""

    category: str = ""
    symbol: str = ""
    orderId: str = ""
    orderLinkId: str = ""
    createAt: str = ""


class BatchCode(msgspec.Struct, frozen=True):
    """One entry of ``retExtInfo.list``: that order's own success/error code and message."""

    code: int | str = 0
    msg: str = ""

    @property
    def value(self) -> int:
        try:
            return int(self.code)
        except ValueError:
            return -1


class BatchList(msgspec.Struct, frozen=True):
    list: builtins.list[BatchItem] = []


class BatchCodes(msgspec.Struct, frozen=True):
    list: builtins.list[BatchCode] = []


class BatchEnvelope(msgspec.Struct, frozen=True):
    """The answer to POST /v5/order/create-batch and /v5/order/cancel-batch
    (https://bybit-exchange.github.io/docs/v5/order/batch-place, .../batch-cancel): "The returned
    data list is divided into two lists. The first list indicates whether or not the order
    creation was successful and the second list details the created order information. The
    structure of the two lists are completely consistent" -- entry ``i`` of ``result.list`` and
    of ``retExtInfo.list`` both answer order ``i`` of the request."""

    retCode: int
    retMsg: str
    result: BatchList | None = None
    retExtInfo: BatchCodes | None = None
    time: int = 0

    def outcomes(self, n: int) -> builtins.list[tuple[BatchItem | None, int, str]]:
        """(entry, code, msg) of the ``n`` orders sent, by position. A missing code counts as
        success only when the entry carries an orderId; a missing entry is ``None``."""
        items = self.result.list if self.result is not None else []
        codes = self.retExtInfo.list if self.retExtInfo is not None else []
        out: builtins.list[tuple[BatchItem | None, int, str]] = []
        for i in range(n):
            item = items[i] if i < len(items) else None
            if i < len(codes):
                out.append((item, codes[i].value, codes[i].msg))
            elif item is not None and item.orderId:
                out.append((item, 0, "OK"))
            else:
                out.append((item, -1, "no outcome for this order in the answer"))
        return out


STATUS = {
    "Created": VenueStatus.PENDING,
    "New": VenueStatus.NEW,
    "Untriggered": VenueStatus.PENDING,
    "Triggered": VenueStatus.NEW,
    "PartiallyFilled": VenueStatus.PARTIALLY_FILLED,
    "Filled": VenueStatus.FILLED,
    "Cancelled": VenueStatus.CANCELED,
    "PartiallyFilledCanceled": VenueStatus.CANCELED,
    "Deactivated": VenueStatus.CANCELED,
    "Rejected": VenueStatus.REJECTED,
}
"""orderStatus (https://bybit-exchange.github.io/docs/v5/enum#orderstatus)."""


class Order(msgspec.Struct, frozen=True):
    """An order as GET /v5/order/realtime, /v5/order/history and the ``order`` topic give it."""

    orderId: str
    orderLinkId: str
    symbol: str
    side: str
    orderType: str
    price: str
    qty: str
    orderStatus: str
    cumExecQty: str
    avgPrice: str = ""
    leavesQty: str = ""
    cumExecValue: str = ""
    cumExecFee: str = ""
    timeInForce: str = ""
    triggerPrice: str = ""
    reduceOnly: bool = False
    rejectReason: str = ""
    cancelType: str = ""
    createdTime: str = ""
    updatedTime: str = ""
    category: str = ""
    feeCurrency: str = ""

    @property
    def status(self) -> VenueStatus:
        return STATUS.get(self.orderStatus, VenueStatus.NEW)

    @property
    def price_or_none(self) -> Decimal | None:
        p = _d(self.price)
        return p if p else None

    def to_state(self, symbol: str) -> OrderState:
        avg = _d(self.avgPrice)
        return OrderState(
            client_order_id=self.orderLinkId,
            venue_order_id=self.orderId,
            symbol=symbol,
            side=Side.BUY if self.side == "Buy" else Side.SELL,
            status=self.status,
            quantity=_d(self.qty),
            filled_quantity=_d(self.cumExecQty),
            average_price=avg if avg else None,
            price=self.price_or_none,
            updated_ns=_ns(self.updatedTime),
        )


# ---- executions (https://bybit-exchange.github.io/docs/v5/order/execution) ----------------------


class Execution(msgspec.Struct, frozen=True):
    """A trade as GET /v5/execution/list and the ``execution`` topic give it."""

    symbol: str
    orderId: str
    orderLinkId: str
    side: str
    execId: str
    execPrice: str
    execQty: str
    execFee: str
    execTime: str
    isMaker: bool
    execType: str = "Trade"
    feeCurrency: str = ""
    feeRate: str = ""
    execValue: str = ""
    orderPrice: str = ""
    orderQty: str = ""
    leavesQty: str = ""
    category: str = ""

    def spot_fee_coin(self, base: str, quote: str) -> str:
        """The coin a spot execution's fee is in, by Bybit's "Spot Fee Currency Instruction"
        (docs/v5/enum.mdx): with a positive fee rate, or as a taker, the coin received (a buy
        pays in the base coin, a sell in the quote coin); a maker's negative rate (a rebate)
        is paid in the coin given (a buy: quote, a sell: base)."""
        rebate = self.isMaker and _d(self.feeRate) < 0
        return base if (self.side == "Buy") != rebate else quote

    def to_fill(self, fee_currency: str | None) -> OrderFilled:
        """``fee_currency``: when Bybit does not name it (derivatives: the settle coin; spot:
        :meth:`spot_fee_coin`)."""
        return OrderFilled(
            client_order_id=self.orderLinkId,
            venue_order_id=self.orderId,
            trade_id=self.execId,
            quantity=Decimal(self.execQty),
            price=Decimal(self.execPrice),
            fee=_d(self.execFee),
            fee_currency=self.feeCurrency or fee_currency,
            liquidity=Liquidity.MAKER if self.isMaker else Liquidity.TAKER,
            ts_ns=_ns(self.execTime),
        )


# ---- account and positions (.../v5/account/wallet-balance, .../v5/position) -------------------


class WalletCoin(msgspec.Struct, frozen=True):
    coin: str
    walletBalance: str
    locked: str = ""
    """Spot: held by open orders."""
    totalOrderIM: str = ""
    totalPositionIM: str = ""
    equity: str = ""

    def to_balance(self) -> Balance:
        total = _d(self.walletBalance)
        held = _d(self.locked) + _d(self.totalOrderIM) + _d(self.totalPositionIM)
        held = min(held, total)
        return Balance(self.coin, total - held, held)

    def to_update(self, ts_ns: int) -> BalanceUpdate:
        """The coin as the ``wallet`` topic pushed it (docs/v5/websocket/private/wallet: the
        same coin fields as GET /v5/account/wallet-balance), read as :meth:`to_balance`."""
        b = self.to_balance()
        return BalanceUpdate(b.asset, b.free, b.locked, ts_ns)


class WalletAccount(msgspec.Struct, frozen=True):
    accountType: str
    coin: list[WalletCoin]


class WalletBalance(msgspec.Struct, frozen=True):
    list: builtins.list[WalletAccount]


class PositionInfo(msgspec.Struct, frozen=True):
    symbol: str
    side: str
    """Buy (long), Sell (short), "" (none)."""
    size: str
    avgPrice: str = ""

    def to_position(self, symbol: str) -> Position:
        size = _d(self.size)
        avg = _d(self.avgPrice)
        return Position(symbol, -size if self.side == "Sell" else size, avg if avg else None)


# ---- private WebSocket (https://bybit-exchange.github.io/docs/v5/websocket/private/order) ------


class WsProbe(msgspec.Struct, frozen=True):
    """Just enough of any private-stream message to route it."""

    topic: str = ""
    op: str = ""


class WsOpReply(msgspec.Struct, frozen=True):
    """The answer to auth / subscribe / ping (``op`` is ``pong`` for a private-stream ping)."""

    op: str
    success: bool = True
    ret_msg: str = ""
    conn_id: str = ""
    req_id: str = ""
    args: list[str] = []


class WsPush(msgspec.Struct, Generic[T], frozen=True):
    """A message of the ``order``, ``execution`` or ``wallet`` topic (``creationTime``: ms)."""

    topic: str
    data: list[T]
    id: str = ""
    creationTime: int = 0


HEAD = msgspec.json.Decoder(Head)
SERVER_TIME = msgspec.json.Decoder(Envelope[ServerTime])
INSTRUMENTS = msgspec.json.Decoder(Envelope[Page[InstrumentInfo]])
TICKERS = msgspec.json.Decoder(Envelope[TickerList])
ORDER_IDS = msgspec.json.Decoder(Envelope[OrderIds])
CANCEL_ALL = msgspec.json.Decoder(Envelope[CancelAllResult])
BATCH = msgspec.json.Decoder(BatchEnvelope)
ORDERS = msgspec.json.Decoder(Envelope[Page[Order]])
EXECUTIONS = msgspec.json.Decoder(Envelope[Page[Execution]])
WALLET = msgspec.json.Decoder(Envelope[WalletBalance])
POSITIONS = msgspec.json.Decoder(Envelope[Page[PositionInfo]])
WS_PROBE = msgspec.json.Decoder(WsProbe)
WS_OP = msgspec.json.Decoder(WsOpReply)
WS_ORDER = msgspec.json.Decoder(WsPush[Order])
WS_EXECUTION = msgspec.json.Decoder(WsPush[Execution])
WS_WALLET = msgspec.json.Decoder(WsPush[WalletAccount])


# ---- public market data (docs/v5/websocket/public/orderbook, .../public/trade) ---------------


class PublicMessage(msgspec.Struct, frozen=True):
    """Any message of a public WebSocket: a push (``topic``, ``type`` snapshot/delta, ``data``
    decoded by topic) or an answer (``op``: subscribe, unsubscribe, ping; ``success``)."""

    topic: str = ""
    type: str = ""
    ts: int = 0
    data: msgspec.Raw = msgspec.Raw(b"null")
    op: str = ""
    success: bool = True
    ret_msg: str = ""


class OrderbookData(msgspec.Struct, frozen=True):
    """``s`` symbol, ``b``/``a`` levels ``[price, size]`` (size "0": delete), ``u`` update id
    (1: a snapshot after a service restart), ``seq`` cross sequence."""

    s: str
    b: list[list[str]]
    a: list[list[str]]
    u: int
    seq: int = 0


class PublicTradeItem(msgspec.Struct, frozen=True):
    """``S`` is the taker's side (Buy/Sell), ``v`` size, ``p`` price, ``i`` trade id, ``T`` ms."""

    T: int
    s: str
    S: str
    v: str
    p: str
    i: str
    BT: bool = False


PUBLIC = msgspec.json.Decoder(PublicMessage)
ORDERBOOK_DATA = msgspec.json.Decoder(OrderbookData)
PUBLIC_TRADES = msgspec.json.Decoder(list[PublicTradeItem])
