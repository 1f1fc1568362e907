"""OKX API v5 payloads as msgspec schemas (field names are OKX's own; every number is a string
on the wire and becomes a ``Decimal`` in our types).

Perpetual swaps are traded in *contracts*: an OKX ``sz``/``fillSz``/``accFillSz``/``pos`` of a
SWAP is a count of contracts of ``ctVal`` base units each (BTC-USDT-SWAP: 0.01 BTC). Our types
always carry base units, so every conversion takes the instrument's ``ctVal`` (None for spot).

Doc sections (www.okx.com/docs-v5/en/): "Public Data / Get system time", "Public Data / Get
instruments", "Trade / Place order" (and batch, cancel, amend, "Cancel All After"), "Trade /
Get order details", "Trade / Get order List", "Trade / Get transaction details (last 3 days)",
"Trading Account / Get balance", "Trading Account / Get positions", "Market Data / Get
tickers", "WebSocket / Login", "WebSocket / Subscribe", "Trade / WS / Order channel".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Generic, NamedTuple, TypeVar

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
from connectors.common.venue import dec, dec_or_zero, ms_to_ns

T = TypeVar("T")


def base_qty(value: str, ct_val: Decimal | None) -> Decimal:
    """An OKX size as base units (SWAP: contracts x ctVal)."""
    qty = dec_or_zero(value)
    return qty * ct_val if ct_val is not None else qty


STATES = {
    "live": VenueStatus.NEW,
    "partially_filled": VenueStatus.PARTIALLY_FILLED,
    "filled": VenueStatus.FILLED,
    "canceled": VenueStatus.CANCELED,
    "mmp_canceled": VenueStatus.CANCELED,
}


class Envelope(msgspec.Struct, Generic[T], frozen=True):
    """Every REST answer: ``{"code": "0", "msg": "", "data": [...]}`` ("Overview / REST API").
    ``code`` "1" (all failed) / "2" (some failed) on order endpoints carry per-item ``sCode``."""

    code: str
    msg: str = ""
    data: list[T] = []


class ServerTime(msgspec.Struct, frozen=True):
    ts: str


class InstrumentInfo(msgspec.Struct, frozen=True):
    instType: str
    instId: str
    tickSz: str
    lotSz: str
    minSz: str
    baseCcy: str = ""
    quoteCcy: str = ""
    settleCcy: str = ""
    ctVal: str = ""
    ctValCcy: str = ""
    ctType: str = ""
    uly: str = ""
    instFamily: str = ""
    maxLmtSz: str = ""
    state: str = "live"

    @property
    def ct_val(self) -> Decimal | None:
        return Decimal(self.ctVal) if self.instType == "SWAP" and self.ctVal else None

    def to_instrument(self) -> Instrument | None:
        """Our instrument (sizes in base units), or None for what we do not trade (not live,
        inverse swaps, other instrument types)."""
        if self.state != "live":
            return None
        if self.instType == "SPOT":
            return Instrument(
                symbol=f"{self.baseCcy}/{self.quoteCcy}", venue_symbol=self.instId,
                base=self.baseCcy, quote=self.quoteCcy, tick_size=Decimal(self.tickSz),
                lot_size=Decimal(self.lotSz), min_qty=Decimal(self.minSz),
                max_qty=dec(self.maxLmtSz),
            )
        ct = self.ct_val
        if self.instType != "SWAP" or self.ctType != "linear" or ct is None:
            return None
        base, _, quote = (self.instFamily or self.uly).partition("-")
        max_qty = dec(self.maxLmtSz)
        return Instrument(
            symbol=f"{base}/{quote}:{self.settleCcy}", venue_symbol=self.instId, base=base,
            quote=quote, kind=InstrumentKind.PERPETUAL, settle=self.settleCcy,
            tick_size=Decimal(self.tickSz), lot_size=Decimal(self.lotSz) * ct,
            min_qty=Decimal(self.minSz) * ct,
            max_qty=max_qty * ct if max_qty is not None else None,
        )


class OrderAck(msgspec.Struct, frozen=True):
    """One item of the answer to place/cancel/amend (and their batch forms). ``subCode``
    refines a failing ``sCode`` (e.g. 51008 / 1000), "" when there is none."""

    sCode: str
    sMsg: str = ""
    subCode: str = ""
    ordId: str = ""
    clOrdId: str = ""
    tag: str = ""
    reqId: str = ""
    ts: str = ""


class CancelAllAfterAck(msgspec.Struct, frozen=True):
    """``triggerTime`` "0" when disabled. The docs do not state the unit of ``triggerTime``
    and ``ts`` (their example shows 10-digit values); we do not interpret them."""

    triggerTime: str
    ts: str = ""
    tag: str = ""


class OrderInfo(msgspec.Struct, frozen=True):
    """An order as "Get order details" and "Get order List" (orders-pending) return it."""

    instType: str
    instId: str
    ordId: str
    clOrdId: str
    side: str
    ordType: str
    sz: str
    state: str
    px: str = ""
    accFillSz: str = "0"
    avgPx: str = ""
    fee: str = ""
    feeCcy: str = ""
    cancelSource: str = ""
    tgtCcy: str = ""
    cTime: str = ""
    uTime: str = ""

    def to_state(self, symbol: str, ct_val: Decimal | None) -> OrderState:
        """A spot market order sized in the quote currency (``tgtCcy`` "quote_ccy", OKX's
        default for a market buy) has ``sz`` in quote units while ``accFillSz`` is in base
        units (docs-v5 "Get order details"): its base quantity is what filled."""
        quantity = base_qty(self.sz, ct_val)
        if self.tgtCcy == "quote_ccy" and self.ordType == "market":
            quantity = base_qty(self.accFillSz, ct_val)
        return OrderState(
            client_order_id=self.clOrdId, venue_order_id=self.ordId, symbol=symbol,
            side=Side(self.side), status=STATES.get(self.state, VenueStatus.NEW),
            quantity=quantity, filled_quantity=base_qty(self.accFillSz, ct_val),
            average_price=dec(self.avgPx) if dec_or_zero(self.accFillSz) else None,
            price=dec(self.px), updated_ns=ms_to_ns(self.uTime or self.cTime),
        )


def trade_key(inst_id: str, trade_id: str, ord_id: str) -> str:
    """Our trade id of an OKX fill: OKX ``tradeId`` counts per instrument and is shared by the
    two sides of a trade, so the instrument and the order qualify it."""
    return f"{inst_id}:{trade_id}:{ord_id}"


def liquidity(exec_type: str) -> Liquidity | None:
    return {"T": Liquidity.TAKER, "M": Liquidity.MAKER}.get(exec_type)


class FillInfo(msgspec.Struct, frozen=True):
    """One of "Get transaction details (last 3 days)" (``/api/v5/trade/fills``). ``fee`` is
    negative when charged, positive for a rebate."""

    instType: str
    instId: str
    tradeId: str
    ordId: str
    fillPx: str
    fillSz: str
    side: str
    clOrdId: str = ""
    billId: str = ""
    execType: str = ""
    fee: str = "0"
    feeCcy: str = ""
    ts: str = ""
    fillTime: str = ""

    def to_fill(self, ct_val: Decimal | None) -> OrderFilled:
        return OrderFilled(
            client_order_id=self.clOrdId, venue_order_id=self.ordId,
            trade_id=trade_key(self.instId, self.tradeId, self.ordId),
            quantity=base_qty(self.fillSz, ct_val), price=Decimal(self.fillPx),
            fee=-dec_or_zero(self.fee), fee_currency=self.feeCcy or None,
            liquidity=liquidity(self.execType), ts_ns=ms_to_ns(self.fillTime or self.ts),
        )


class BalanceDetail(msgspec.Struct, frozen=True):
    """One currency of "Get balance" ``details`` and of the ``account`` channel's (the same
    fields): ``availBal`` "Available balance of currency" is what is free, ``frozenBal``
    "Frozen balance of currency" what is locked; ``cashBal`` stands in for a missing
    ``availBal``. ``uTime``: the currency's update time (ms)."""

    ccy: str
    availBal: str = ""
    frozenBal: str = ""
    cashBal: str = ""
    eq: str = ""
    uTime: str = ""

    def to_balance(self) -> Balance:
        return Balance(self.ccy, dec_or_zero(self.availBal or self.cashBal),
                       dec_or_zero(self.frozenBal))

    def to_update(self, ts_ns: int) -> BalanceUpdate:
        """As the ``account`` channel pushed it (``ts_ns``: the push's time, when the currency
        has no ``uTime``)."""
        b = self.to_balance()
        return BalanceUpdate(b.asset, b.free, b.locked, ms_to_ns(self.uTime) or ts_ns)


class AccountBalance(msgspec.Struct, frozen=True):
    details: list[BalanceDetail]
    totalEq: str = ""
    uTime: str = ""


class PositionInfo(msgspec.Struct, frozen=True):
    instType: str
    instId: str
    pos: str
    posSide: str = "net"
    avgPx: str = ""
    mgnMode: str = ""

    def to_position(self, symbol: str, ct_val: Decimal | None) -> Position:
        qty = base_qty(self.pos, ct_val)
        if self.posSide == "short":
            qty = -abs(qty)
        return Position(symbol, qty, dec(self.avgPx))


# ---- WebSocket -----------------------------------------------------------------------------


class LastPrice(NamedTuple):
    """A venue's last price as we keep it: the price and when the venue saw it (UTC ns)."""

    price: Decimal
    ts_ns: int


class Ticker(msgspec.Struct, frozen=True):
    """One item of docs-v5 "Order Book Trading / Market Data / Get tickers"
    (``GET /api/v5/market/tickers?instType=...``). Prices are quote per base unit for spot and
    linear swaps alike; ``lastSz``/``askSz``/``bidSz`` of a SWAP are contracts. ``last`` is ""
    for an instrument that has not traded yet, and ``lastSz`` "0" when there is no volume."""

    instType: str
    instId: str
    last: str = ""
    lastSz: str = ""
    askPx: str = ""
    askSz: str = ""
    bidPx: str = ""
    bidSz: str = ""
    open24h: str = ""
    high24h: str = ""
    low24h: str = ""
    volCcy24h: str = ""
    vol24h: str = ""
    sodUtc0: str = ""
    sodUtc8: str = ""
    ts: str = ""

    def to_last_price(self) -> LastPrice | None:
        """The last traded price, or the mid of the best bid and ask when nothing has traded;
        None when neither is known."""
        price = dec(self.last)
        if price is None:
            bid, ask = dec(self.bidPx), dec(self.askPx)
            if bid is None or ask is None:
                return None
            price = (bid + ask) / 2
        return LastPrice(price, ms_to_ns(self.ts))


class WsArg(msgspec.Struct, frozen=True):
    channel: str = ""
    instType: str = ""
    instId: str = ""
    uid: str = ""


class WsEvent(msgspec.Struct, frozen=True):
    """``{"event": "login" | "subscribe" | "error", "code": ..., "msg": ..., "connId": ...}``"""

    event: str
    code: str = "0"
    msg: str = ""
    connId: str = ""
    arg: WsArg | None = None


class WsOrder(msgspec.Struct, frozen=True):
    """One order update of the ``orders`` channel: one per change, one per fill (``tradeId``,
    ``fillSz``, ``fillPx``, ``fillFee`` of that fill; ``accFillSz`` the order's total)."""

    instType: str
    instId: str
    ordId: str
    clOrdId: str
    side: str
    state: str
    sz: str
    px: str = ""
    ordType: str = ""
    accFillSz: str = "0"
    avgPx: str = ""
    tradeId: str = ""
    fillSz: str = ""
    fillPx: str = ""
    fillFee: str = ""
    fillFeeCcy: str = ""
    fee: str = ""
    feeCcy: str = ""
    execType: str = ""
    fillTime: str = ""
    amendResult: str = ""
    reqId: str = ""
    cancelSource: str = ""
    code: str = "0"
    msg: str = ""
    cTime: str = ""
    uTime: str = ""

    def fill(self, ct_val: Decimal | None) -> OrderFilled | None:
        """The fill this update reports, read as the same fill of "Get transaction details"
        (whose ``fee``/``feeCcy``/``ts`` are this push's ``fillFee``/``fillFeeCcy``/``uTime``)."""
        if not self.tradeId or not dec_or_zero(self.fillSz):
            return None
        return FillInfo(
            instType=self.instType, instId=self.instId, tradeId=self.tradeId, ordId=self.ordId,
            fillPx=self.fillPx, fillSz=self.fillSz, side=self.side, clOrdId=self.clOrdId,
            execType=self.execType, fee=self.fillFee, feeCcy=self.fillFeeCcy, ts=self.uTime,
            fillTime=self.fillTime,
        ).to_fill(ct_val)


class WsOrderPush(msgspec.Struct, frozen=True):
    arg: WsArg
    data: list[WsOrder]


class WsPush(msgspec.Struct, frozen=True):
    """A private channel's push, its data left to the channel's decoder (``orders``:
    :data:`WS_ORDER_DATA`; ``account``, docs-v5 "Trading Account / WebSocket / Account
    channel": :data:`WS_ACCOUNT_DATA`, ``eventType`` ``snapshot`` or ``event_update``)."""

    arg: WsArg
    data: msgspec.Raw = msgspec.Raw(b"[]")
    eventType: str = ""


TIME = msgspec.json.Decoder(Envelope[ServerTime])
INSTRUMENTS = msgspec.json.Decoder(Envelope[InstrumentInfo])
ACKS = msgspec.json.Decoder(Envelope[OrderAck])
CANCEL_ALL_AFTER = msgspec.json.Decoder(Envelope[CancelAllAfterAck])
ORDERS = msgspec.json.Decoder(Envelope[OrderInfo])
FILLS = msgspec.json.Decoder(Envelope[FillInfo])
BALANCE = msgspec.json.Decoder(Envelope[AccountBalance])
POSITIONS = msgspec.json.Decoder(Envelope[PositionInfo])
TICKERS = msgspec.json.Decoder(Envelope[Ticker])
ERROR = msgspec.json.Decoder(Envelope[msgspec.Raw])
WS_EVENT = msgspec.json.Decoder(WsEvent)
WS_ORDERS = msgspec.json.Decoder(WsOrderPush)
WS_PUSH = msgspec.json.Decoder(WsPush)
WS_ORDER_DATA = msgspec.json.Decoder(list[WsOrder])
WS_ACCOUNT_DATA = msgspec.json.Decoder(list[AccountBalance])


# ---- public market data (docs-v5 "Order Book Trading / Market Data / WS / Order book channel",
# "... / WS / All trades channel") ----------------------------------------------------------------


class PublicPush(msgspec.Struct, frozen=True):
    """Any message of the public WebSocket: a push (``arg`` + ``data``, ``action`` on books) or
    an event (``event``: subscribe, unsubscribe, error). ``data`` is decoded by channel."""

    arg: WsArg | None = None
    action: str = ""
    data: msgspec.Raw = msgspec.Raw(b"[]")
    event: str = ""
    code: str = ""
    msg: str = ""


class BookData(msgspec.Struct, frozen=True):
    """One ``books`` push: levels ``[px, sz, "0" (deprecated), numOrders]`` as strings (kept as
    sent: the checksum is computed over them), ``seqId``/``prevSeqId`` (-1 on a snapshot) and
    ``checksum`` (signed CRC32; 0 where OKX no longer sends it)."""

    asks: list[list[str]] = []
    bids: list[list[str]] = []
    ts: str = ""
    checksum: int = 0
    prevSeqId: int = -1
    seqId: int = -1


class TradeData(msgspec.Struct, frozen=True):
    """One trade of the ``trades`` channel; ``side`` is the taker's ("buy"/"sell")."""

    instId: str
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str = ""


PUBLIC = msgspec.json.Decoder(PublicPush)
BOOK_DATA = msgspec.json.Decoder(list[BookData])
TRADE_DATA = msgspec.json.Decoder(list[TradeData])
