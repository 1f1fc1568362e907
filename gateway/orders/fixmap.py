"""FIX application messages <-> orders (FIX 4.4 and FIX 5.0SP2 share these tags).

Parsing turns a validated NewOrderSingle (D) (or one order of a NewOrderList, E),
OrderCancelRequest (F), OrderCancelReplaceRequest (G), OrderStatusRequest (H),
OrderMassStatusRequest (AF) and OrderMassCancelRequest (q) into plain requests; a value the
gateway cannot act on becomes a :class:`Refusal` with the OrdRejReason (103) / CxlRejReason (102)
and a text naming the problem. Building writes ExecutionReport (8), OrderCancelReject (9),
OrderMassCancelReport (r) and ListStatus (N) bodies with only tags the standard dictionaries
define for them (a test validates them strictly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

from connectors.base import Liquidity, OrderType, RejectReason, Side, TimeInForce
from gateway.fix.fixtime import TimestampFormatter
from gateway.fix.message import FieldMap, FieldValueError, Message
from gateway.native import dataclass_init_when_interpreted

from .lifecycle import OrdStatus
from .model import Order, OrderTerms

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_MAKER: Final = Liquidity.MAKER
_CANCELED: Final = OrdStatus.CANCELED
_EXPIRED: Final = OrdStatus.EXPIRED
_REJECTED: Final = OrdStatus.REJECTED
_LIMIT: Final = OrderType.LIMIT
_MARKET: Final = OrderType.MARKET
_STOP: Final = OrderType.STOP
_STOP_LIMIT: Final = OrderType.STOP_LIMIT
_GTD: Final = TimeInForce.GTD


# OrdRejReason (103)
ORD_REJ_BROKER = b"0"
ORD_REJ_UNKNOWN_SYMBOL = b"1"
ORD_REJ_EXCHANGE_CLOSED = b"2"
ORD_REJ_EXCEEDS_LIMIT = b"3"
ORD_REJ_TOO_LATE = b"4"
ORD_REJ_DUPLICATE = b"6"
ORD_REJ_UNSUPPORTED = b"11"
ORD_REJ_INCORRECT_QTY = b"13"
ORD_REJ_OTHER = b"99"

# CxlRejReason (102)
CXL_REJ_TOO_LATE = b"0"
CXL_REJ_UNKNOWN_ORDER = b"1"
CXL_REJ_BROKER = b"2"
CXL_REJ_PENDING = b"3"
CXL_REJ_DUPLICATE_CLORDID = b"6"
CXL_REJ_OTHER = b"99"

# ExecType (150)
EXEC_NEW = b"0"
EXEC_CANCELED = b"4"
EXEC_REPLACED = b"5"
EXEC_PENDING_CANCEL = b"6"
EXEC_REJECTED = b"8"
EXEC_PENDING_NEW = b"A"
EXEC_EXPIRED = b"C"
EXEC_PENDING_REPLACE = b"E"
EXEC_TRADE = b"F"
EXEC_STATUS = b"I"

VENUE_REASON_TO_ORD_REJ = {
    RejectReason.INSUFFICIENT_BALANCE: ORD_REJ_EXCEEDS_LIMIT,
    RejectReason.UNKNOWN_SYMBOL: ORD_REJ_UNKNOWN_SYMBOL,
    RejectReason.PRICE_FILTER: ORD_REJ_OTHER,
    RejectReason.LOT_FILTER: ORD_REJ_INCORRECT_QTY,
    RejectReason.MIN_NOTIONAL: ORD_REJ_INCORRECT_QTY,
    RejectReason.UNSUPPORTED: ORD_REJ_UNSUPPORTED,
    RejectReason.POST_ONLY_WOULD_TAKE: ORD_REJ_OTHER,
    RejectReason.DUPLICATE_ORDER: ORD_REJ_DUPLICATE,
    RejectReason.RATE_LIMIT: ORD_REJ_BROKER,
    RejectReason.VENUE_UNAVAILABLE: ORD_REJ_EXCHANGE_CLOSED,
    RejectReason.TOO_LATE: ORD_REJ_TOO_LATE,
    RejectReason.UNKNOWN_ORDER: ORD_REJ_OTHER,
    RejectReason.OTHER: ORD_REJ_OTHER,
}

VENUE_REASON_TEXT = {
    RejectReason.INSUFFICIENT_BALANCE: "insufficient balance",
    RejectReason.UNKNOWN_SYMBOL: "unknown symbol",
    RejectReason.PRICE_FILTER: "price not allowed (tick size or band)",
    RejectReason.LOT_FILTER: "quantity not allowed (lot size)",
    RejectReason.MIN_NOTIONAL: "below the minimum notional",
    RejectReason.UNSUPPORTED: "not supported",
    RejectReason.POST_ONLY_WOULD_TAKE: "post-only order would take liquidity",
    RejectReason.DUPLICATE_ORDER: "duplicate order",
    RejectReason.RATE_LIMIT: "rate limit",
    RejectReason.VENUE_UNAVAILABLE: "venue unavailable",
    RejectReason.TOO_LATE: "too late",
    RejectReason.UNKNOWN_ORDER: "unknown order",
}


def venue_reason_text(venue: str, reason: RejectReason, text: str) -> str:
    """Text (58) of a venue's refusal: the venue, our reading of it, then the venue's words."""
    phrase = VENUE_REASON_TEXT.get(reason)
    if phrase is None or phrase in text.lower():
        return f"{venue}: {text}"
    return f"{venue}: {phrase}: {text}"


VENUE_REASON_TO_CXL_REJ = {
    RejectReason.UNKNOWN_ORDER: CXL_REJ_UNKNOWN_ORDER,
    RejectReason.TOO_LATE: CXL_REJ_TOO_LATE,
}

_SIDES = {b"1": Side.BUY, b"2": Side.SELL}
_SIDE_CODE = {Side.BUY: b"1", Side.SELL: b"2"}
_TYPES = {b"1": OrderType.MARKET, b"2": OrderType.LIMIT, b"3": OrderType.STOP,
          b"4": OrderType.STOP_LIMIT}
_TYPE_CODE = {v: k for k, v in _TYPES.items()}
_TIFS = {b"0": TimeInForce.DAY, b"1": TimeInForce.GTC, b"3": TimeInForce.IOC,
         b"4": TimeInForce.FOK, b"6": TimeInForce.GTD}
_TIF_CODE = {v: k for k, v in _TIFS.items()}
_STATUS_CODE = {s: s.value.encode() for s in OrdStatus}


class Refusal(Exception):  # noqa: N818 - an answer to the client, not our failure
    def __init__(self, reason: bytes, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(slots=True)
class NewOrder(OrderTerms):
    """A NewOrderSingle: the order's terms, and where it goes (resolved to a venue and its
    symbol by the router)."""

    symbol: str | None
    security_id: str | None
    security_id_source: str | None
    destination: str | None
    strategy: str | None = None
    """TargetStrategy (847): the strategy that works the order through child orders (None:
    the order goes to its venue as it is)."""
    effective_time_ns: int | None = None
    """EffectiveTime (168): when the strategy starts working the order (None: at once)."""
    strategy_parameters: dict[str, str] = field(default_factory=dict)
    """StrategyParametersGrp (957): StrategyParameterName (958) -> StrategyParameterValue
    (960), for the strategy to check (FIX 5.0 and later); ParticipationRate (849), of any
    version, under the name :data:`PARTICIPATION_RATE`."""
    max_floor: Decimal | None = None
    """MaxFloor (111): an iceberg (:mod:`.iceberg`) showing at most this much at a time (None:
    not given, or not less than OrderQty -- the order shows all of it)."""

    # (written, to be compiled: dataclasses' own __init__ would run interpreted)
    def __init__(
        self, cl_ord_id: str, account: str | None, side: Side, type: OrderType, quantity: Decimal,
        price: Decimal | None, stop_price: Decimal | None, time_in_force: TimeInForce,
        expire_time_ns: int | None, post_only: bool, reduce_only: bool, symbol: str | None,
        security_id: str | None, security_id_source: str | None, destination: str | None,
        strategy: str | None = None, effective_time_ns: int | None = None,
        strategy_parameters: dict[str, str] | None = None, max_floor: Decimal | None = None,
    ) -> None:
        # (not super(): a slots dataclass is a new class, which super()'s cell does not know)
        OrderTerms.__init__(self, cl_ord_id, account, side, type, quantity, price, stop_price,
                            time_in_force, expire_time_ns, post_only, reduce_only)
        self.symbol = symbol
        self.security_id = security_id
        self.security_id_source = security_id_source
        self.destination = destination
        self.strategy = strategy
        self.effective_time_ns = effective_time_ns
        self.strategy_parameters = {} if strategy_parameters is None else strategy_parameters
        self.max_floor = max_floor


@dataclass(frozen=True, slots=True)
class CancelRequest:
    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: str | None


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: str | None
    type: OrderType
    quantity: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce | None
    expire_time_ns: int | None = None
    """ExpireTime (126): a parent's new end time."""


def _text(v: bytes | None) -> str | None:
    return None if v is None else v.decode("utf-8", "replace")


MAX_INTEGER_DIGITS = 15
"""Quantities and prices below 10**15 (the largest supply of any traded coin is ~10**15)."""
MAX_DECIMALS = 12
"""Quantities and prices with at most 12 digits after the point (venues' finest steps are
1e-8 to 1e-10). With both bounds every product, quotient and remainder the gateway computes
fits the 28 digits of Decimal's default context exactly."""


def _decimals(v: Decimal) -> int:
    """The digits ``v`` (finite) has after the decimal point, trailing zeros not counted --
    exactly: ``normalize()`` rounds to the context's 28 digits first, which can carry
    999999999999999.99999999999999 up to an integer."""
    _, digits, exponent = v.as_tuple()
    assert isinstance(exponent, int)
    significant = bytes(digits).rstrip(b"\x00")
    if not significant:
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def _positive(msg: FieldMap, tag: int, name: str) -> Decimal | None:
    try:
        v = msg.get_decimal(tag)
    except FieldValueError:
        raise Refusal(ORD_REJ_OTHER, f"{name} ({tag}) is not a number") from None
    if v is None:
        return None
    reason = ORD_REJ_INCORRECT_QTY if tag == 38 else ORD_REJ_OTHER
    if not v.is_finite() or v <= 0:
        raise Refusal(reason, f"{name} ({tag}) must be positive")
    if v.adjusted() >= MAX_INTEGER_DIGITS:
        raise Refusal(reason, f"{name} ({tag}) is too large (at most {MAX_INTEGER_DIGITS} "
                              "digits before the decimal point)")
    if _decimals(v) > MAX_DECIMALS:
        raise Refusal(reason, f"{name} ({tag}) has more than {MAX_DECIMALS} decimals")
    return v


def parse_new_order(msg: FieldMap, default_tif: TimeInForce = TimeInForce.DAY) -> NewOrder:
    """A NewOrderSingle (D), or one NoOrders (73) entry of a NewOrderList (E): the same
    fields."""
    cl = _text(msg.get(11)) or ""
    side = _SIDES.get(msg.get(54) or b"")
    if side is None:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"Side (54) {_text(msg.get(54))} is not supported")
    otype = _TYPES.get(msg.get(40) or b"")
    if otype is None:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"OrdType (40) {_text(msg.get(40))} is not supported")
    qty = _positive(msg, 38, "OrderQty")
    if qty is None:
        raise Refusal(ORD_REJ_INCORRECT_QTY, "OrderQty (38) is required")
    price = _positive(msg, 44, "Price")
    stop = _positive(msg, 99, "StopPx")
    if otype in (_LIMIT, _STOP_LIMIT) and price is None:
        raise Refusal(ORD_REJ_OTHER, "Price (44) is required for a limit order")
    if otype in (_STOP, _STOP_LIMIT) and stop is None:
        raise Refusal(ORD_REJ_OTHER, "StopPx (99) is required for a stop order")
    if otype is _MARKET and price is not None:
        raise Refusal(ORD_REJ_OTHER, "Price (44) is not allowed on a market order")
    tif_raw = msg.get(59)
    tif = default_tif if tif_raw is None else _TIFS.get(tif_raw)
    if tif is None:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"TimeInForce (59) {_text(tif_raw)} is not supported")
    expire = msg.get_time_ns(126) if 126 in msg else None
    if tif is _GTD and expire is None:
        raise Refusal(ORD_REJ_OTHER, "ExpireTime (126) is required for GTD")
    strategy = _text(msg.get(847))
    effective = msg.get_time_ns(168) if 168 in msg else None
    parameters = strategy_parameters(msg)
    rate = _text(msg.get(849))
    if rate is not None:
        if PARTICIPATION_RATE in parameters:
            raise Refusal(ORD_REJ_OTHER, f"{PARTICIPATION_RATE} is given twice: in "
                          "ParticipationRate (849) and in StrategyParameters (957)")
        parameters[PARTICIPATION_RATE] = rate  # (checked by the strategy, as 960 values are)
    if strategy is None and (parameters or effective is not None):
        raise Refusal(ORD_REJ_UNSUPPORTED, "EffectiveTime (168), StrategyParameters (957) and "
                      "ParticipationRate (849) are for an order with a TargetStrategy (847)")
    max_floor = _max_floor(msg, otype, qty, strategy)
    inst = set(msg.get_multi(18))
    unknown = inst - {"6", "E"}
    if unknown:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"ExecInst (18) {' '.join(sorted(unknown))} is not "
                      "supported (6 post-only and E reduce-only are)")
    return NewOrder(
        cl_ord_id=cl, account=_text(msg.get(1)), symbol=_text(msg.get(55)),
        security_id=_text(msg.get(48)), security_id_source=_text(msg.get(22)),
        destination=_text(msg.get(100)) or _text(msg.get(207)),
        side=side, type=otype, quantity=qty, price=price, stop_price=stop, time_in_force=tif,
        expire_time_ns=expire, post_only="6" in inst, reduce_only="E" in inst,
        strategy=strategy, effective_time_ns=effective, strategy_parameters=parameters,
        max_floor=max_floor,
    )


def _max_floor(msg: FieldMap, otype: OrderType, qty: Decimal, strategy: str | None
               ) -> Decimal | None:
    """MaxFloor (111) of an iceberg: on a limit order without TargetStrategy (847), positive;
    one not less than OrderQty shows all of the order, which is then a plain order (None)."""
    if 111 not in msg:
        return None
    try:
        floor = msg.get_decimal(111)
    except FieldValueError:
        raise Refusal(ORD_REJ_OTHER, "MaxFloor (111) is not a number") from None
    if floor is None or not floor.is_finite() or floor <= 0:
        raise Refusal(ORD_REJ_OTHER, "MaxFloor (111) must be positive")
    if strategy is not None:
        raise Refusal(ORD_REJ_UNSUPPORTED, "MaxFloor (111) cannot be given with a "
                      "TargetStrategy (847): an iceberg is worked by the gateway itself")
    if otype is not _LIMIT:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"MaxFloor (111) is for a limit order (an iceberg), "
                      f"not OrdType {otype.value}")
    floor = _positive(msg, 111, "MaxFloor")
    assert floor is not None
    return floor if floor < qty else None


PARTICIPATION_RATE = "ParticipationRate"
"""The StrategyParameterName (958) of a POV's rate, where ParticipationRate (849) is kept too
(``NewOrder.strategy_parameters``: stored with the order)."""


def strategy_parameters(msg: FieldMap) -> dict[str, str]:
    """StrategyParametersGrp (957): each StrategyParameterName (958) with its
    StrategyParameterValue (960). The strategy checks names and values; a name given twice,
    or without a value, is refused here."""
    out: dict[str, str] = {}
    for entry in msg.group(957):
        name, value = _text(entry.get(958)), _text(entry.get(960))
        if not name or value is None:
            raise Refusal(ORD_REJ_OTHER, "StrategyParameters (957): each entry needs "
                          "StrategyParameterName (958) and StrategyParameterValue (960)")
        if name in out:
            raise Refusal(ORD_REJ_OTHER, f"StrategyParameterName (958) {name} is given twice")
        out[name] = value
    return out


def parse_cancel(msg: Message) -> CancelRequest:
    return CancelRequest(_text(msg.get(11)) or "", _text(msg.get(41)), _text(msg.get(37)))


def parse_replace(msg: Message) -> ReplaceRequest:
    otype = _TYPES.get(msg.get(40) or b"")
    if otype is None:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"OrdType (40) {_text(msg.get(40))} is not supported")
    tif_raw = msg.get(59)
    tif = None if tif_raw is None else _TIFS.get(tif_raw)
    if tif_raw is not None and tif is None:
        raise Refusal(ORD_REJ_UNSUPPORTED, f"TimeInForce (59) {_text(tif_raw)} is not supported")
    return ReplaceRequest(
        _text(msg.get(11)) or "", _text(msg.get(41)), _text(msg.get(37)), otype,
        _positive(msg, 38, "OrderQty"), _positive(msg, 44, "Price"), _positive(msg, 99, "StopPx"),
        tif, msg.get_time_ns(126) if 126 in msg else None,
    )


def _utc(ts: TimestampFormatter, ns: int) -> bytes:
    """UTCTimestamp of integer nanoseconds, exact (seconds as a float would lose the last
    millisecond: an ExpireTime echoed one millisecond early)."""
    sec, frac = divmod(ns, 1_000_000_000)
    whole = ts.format(sec)
    if ts.precision == 0:
        return whole
    return whole[: -ts.precision] + b"%0*d" % (ts.precision, frac // 10 ** (9 - ts.precision))


def _d(v: Decimal) -> bytes:
    """A Decimal as FIX writes it: plain notation, no exponent, no trailing zeros, every digit
    it has (never rounded to a context's precision).

    Hot path (seven per ExecutionReport): the Decimal's own text when it is already that (no
    exponent; no trailing zero after a point), which most amounts are -- a tenth of the cost of
    formatting it, and a fifth of hashing it (a cache of texts by value cost more than it
    saved: each report's amounts are new objects, each hashed afresh).
    """
    text = str(v)
    if "E" in text or ("." in text and text[-1] == "0"):
        text = format(v, "f")  # (exact, in plain notation)
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    return text.encode()


@dataclass(frozen=True, slots=True)
class Execution:
    """What an ExecutionReport says beyond the order's state."""

    exec_id: str
    exec_type: bytes
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    liquidity: Liquidity | None = None
    commission: Decimal | None = None
    commission_currency: str | None = None
    text: str | None = None
    ord_rej_reason: bytes | None = None
    status: OrdStatus | None = None
    """Override OrdStatus (39); default the order's."""
    cl_ord_id: str | None = None
    orig_cl_ord_id: str | None = None
    mass_status_req_id: str | None = None
    tot_num_reports: int | None = None
    last_rpt_requested: bool | None = None
    last_mkt: str | None = None
    """LastMkt (30): the venue of a fill of a parent order (made at one of its children)."""

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(
        self, exec_id: str, exec_type: bytes, last_qty: Decimal | None = None,
        last_px: Decimal | None = None, liquidity: Liquidity | None = None,
        commission: Decimal | None = None, commission_currency: str | None = None,
        text: str | None = None, ord_rej_reason: bytes | None = None,
        status: OrdStatus | None = None, cl_ord_id: str | None = None,
        orig_cl_ord_id: str | None = None, mass_status_req_id: str | None = None,
        tot_num_reports: int | None = None, last_rpt_requested: bool | None = None,
        last_mkt: str | None = None,
    ) -> None:
        self.exec_id = exec_id  # type: ignore[misc]
        self.exec_type = exec_type  # type: ignore[misc]
        self.last_qty = last_qty  # type: ignore[misc]
        self.last_px = last_px  # type: ignore[misc]
        self.liquidity = liquidity  # type: ignore[misc]
        self.commission = commission  # type: ignore[misc]
        self.commission_currency = commission_currency  # type: ignore[misc]
        self.text = text  # type: ignore[misc]
        self.ord_rej_reason = ord_rej_reason  # type: ignore[misc]
        self.status = status  # type: ignore[misc]
        self.cl_ord_id = cl_ord_id  # type: ignore[misc]
        self.orig_cl_ord_id = orig_cl_ord_id  # type: ignore[misc]
        self.mass_status_req_id = mass_status_req_id  # type: ignore[misc]
        self.tot_num_reports = tot_num_reports  # type: ignore[misc]
        self.last_rpt_requested = last_rpt_requested  # type: ignore[misc]
        self.last_mkt = last_mkt  # type: ignore[misc]

    def message(
        self, o: Order, transact_ns: int, ts: TimestampFormatter
    ) -> tuple[bytes, list[tuple[int, bytes]]]:
        return b"8", execution_report(o, self, transact_ns, ts)


dataclass_init_when_interpreted(Execution)


@dataclass(frozen=True, slots=True)
class CancelRefused:
    """What an OrderCancelReject says of a client's cancel or replace that was refused after
    it was accepted as pending (the venue refused it, or it could not be stored)."""

    exec_id: str
    """Not sent (the message has no ExecID): the key of the record that it was sent."""
    cl_ord_id: str
    orig_cl_ord_id: str
    replace: bool
    reason: bytes
    text: str

    def message(
        self, o: Order, transact_ns: int, ts: TimestampFormatter
    ) -> tuple[bytes, list[tuple[int, bytes]]]:
        return b"9", cancel_reject(
            order_id=o.order_id, cl_ord_id=self.cl_ord_id, orig_cl_ord_id=self.orig_cl_ord_id,
            status=o.status, response_to_replace=self.replace, reason=self.reason,
            text=self.text)


class Report(Protocol):
    """What tells the client of an order event: its ExecID (by which the store records that it
    was sent: the event's ``report_seq``, or a ``reports`` row) and the message, built from the
    order as the event left it."""

    @property
    def exec_id(self) -> str: ...

    def message(
        self, o: Order, transact_ns: int, ts: TimestampFormatter
    ) -> tuple[bytes, list[tuple[int, bytes]]]: ...


def execution_report(
    o: Order, ex: Execution, transact_ns: int, ts: TimestampFormatter
) -> list[tuple[int, bytes]]:
    """ExecutionReport (35=8) body for ``o`` after the event ``ex`` describes."""
    status = ex.status or o.status
    cl = ex.cl_ord_id or o.cl_ord_id
    f: list[tuple[int, bytes]] = []
    if o.account:
        f.append((1, o.account.encode()))
    f.append((6, _d(o.avg_px)))
    f.append((11, cl.encode()))
    if ex.commission is not None:
        f += [(12, _d(ex.commission)), (13, b"3")]
    f.append((14, _d(o.cum_qty)))
    f.append((17, ex.exec_id.encode()))
    inst = [c for c, on in (("6", o.post_only), ("E", o.reduce_only)) if on]
    if inst:
        f.append((18, " ".join(inst).encode()))
    if ex.last_mkt is not None:
        f.append((30, ex.last_mkt.encode()))
    if ex.last_px is not None:
        f.append((31, _d(ex.last_px)))
    if ex.last_qty is not None:
        f.append((32, _d(ex.last_qty)))
    f.append((37, o.order_id.encode()))
    f.append((38, _d(o.quantity)))
    f.append((39, _STATUS_CODE[status]))
    f.append((40, _TYPE_CODE[o.type]))
    orig = ex.orig_cl_ord_id if ex.orig_cl_ord_id is not None else None
    if orig:
        f.append((41, orig.encode()))
    if o.price is not None:
        f.append((44, _d(o.price)))
    f.append((54, _SIDE_CODE[o.side]))
    f.append((55, o.symbol.encode()))
    if ex.text:
        f.append((58, ex.text.encode()))
    f.append((59, _TIF_CODE[o.time_in_force]))
    f.append((60, _utc(ts, transact_ns)))
    if o.list_id is not None:
        f.append((66, o.list_id.encode()))
    if o.stop_price is not None:
        f.append((99, _d(o.stop_price)))
    if ex.ord_rej_reason is not None:
        f.append((103, ex.ord_rej_reason))
    if o.expire_time_ns is not None:
        f.append((126, _utc(ts, o.expire_time_ns)))
    f.append((150, ex.exec_type))
    leaves = o.quantity - o.cum_qty if status.is_open else Decimal(0)
    f.append((151, _d(leaves)))
    if o.venue_order_id:
        f.append((198, o.venue_order_id.encode()))
    if ex.commission_currency:
        f.append((479, ex.commission_currency.encode()))
    if ex.mass_status_req_id is not None:
        f.append((584, ex.mass_status_req_id.encode()))
    if ex.liquidity is not None:
        f.append((851, b"1" if ex.liquidity is _MAKER else b"2"))
    if ex.tot_num_reports is not None:
        f.append((911, b"%d" % ex.tot_num_reports))
    if ex.last_rpt_requested is not None:
        f.append((912, b"Y" if ex.last_rpt_requested else b"N"))
    return f


def cancel_reject(
    *,
    order_id: str,
    cl_ord_id: str,
    orig_cl_ord_id: str | None,
    status: OrdStatus,
    response_to_replace: bool,
    reason: bytes,
    text: str,
) -> list[tuple[int, bytes]]:
    """OrderCancelReject (35=9) body; OrderID is ``NONE`` when the order is unknown."""
    f: list[tuple[int, bytes]] = [
        (11, cl_ord_id.encode()),
        (37, order_id.encode()),
        (39, status.value.encode()),
        (41, (orig_cl_ord_id or "NONE").encode()),
        (58, text.encode()),
        (102, reason),
        (434, b"2" if response_to_replace else b"1"),
    ]
    return f


def mass_cancel_report(
    *,
    cl_ord_id: str,
    report_id: str,
    request_type: bytes,
    response: bytes,
    affected: int,
    reject_reason: bytes | None,
    text: str | None,
    symbol: str | None,
    fixt: bool,
) -> list[tuple[int, bytes]]:
    """OrderMassCancelReport (35=r) body."""
    f: list[tuple[int, bytes]] = [(11, cl_ord_id.encode()), (37, report_id.encode())]
    if symbol:
        f.append((55, symbol.encode()))
    if text:
        f.append((58, text.encode()))
    f += [(530, request_type), (531, response)]
    if reject_reason is not None:
        f.append((532, reject_reason))
    f.append((533, b"%d" % affected))
    if fixt:
        f.append((1369, report_id.encode()))
    return f


# ---- ListStatus (N) -----------------------------------------------------------------------------

# ListStatusType (429)
LIST_ACK = b"1"
LIST_RESPONSE = b"2"
LIST_ALL_DONE = b"5"
LIST_ALERT = b"6"

# ListOrderStatus (431)
LIST_EXECUTING = b"3"
LIST_CANCELLING = b"4"
LIST_DONE = b"6"
LIST_REJECT = b"7"


@dataclass(frozen=True, slots=True)
class ListOrder:
    """One order of a ListStatus (OrdListStatGrp, NoOrders 73)."""

    cl_ord_id: str
    order_id: str | None
    status: OrdStatus
    cum_qty: Decimal = Decimal(0)
    leaves_qty: Decimal = Decimal(0)
    cxl_qty: Decimal = Decimal(0)
    """CxlQty (84): what was cancelled (or expired) unfilled."""
    avg_px: Decimal = Decimal(0)
    ord_rej_reason: bytes | None = None
    text: str | None = None

    @classmethod
    def of(cls, o: Order) -> ListOrder:
        done = o.status in (_CANCELED, _EXPIRED)
        rejected = o.status is _REJECTED
        return cls(
            o.cl_ord_id, o.order_id, o.status, o.cum_qty, o.leaves_qty,
            o.quantity - o.cum_qty if done else Decimal(0), o.avg_px,
            o.ord_rej_reason.encode() if rejected and o.ord_rej_reason else None,
            o.text if rejected or done else None)


def list_status(
    *,
    list_id: str,
    status_type: bytes,
    order_status: bytes,
    orders: list[ListOrder],
    transact_ns: int,
    ts: TimestampFormatter,
    text: str | None = None,
    sp2: bool = False,
    reject_reason: bytes | None = None,
) -> list[tuple[int, bytes]]:
    """ListStatus (35=N) body: one report (NoRpts 82 = RptSeq 83 = 1) of every order of the
    list. ``sp2``: FIX 5.0SP2, where OrdListStatGrp has OrderID (37) and the message
    ListRejectReason (1386)."""
    f: list[tuple[int, bytes]] = [
        (60, _utc(ts, transact_ns)), (66, list_id.encode()), (68, b"%d" % len(orders)),
        (82, b"1"), (83, b"1"), (429, status_type), (431, order_status),
    ]
    if text:
        f.append((444, text.encode()))
    if sp2 and reject_reason is not None:
        f.append((1386, reject_reason))
    f.append((73, b"%d" % len(orders)))
    for e in orders:
        f.append((11, e.cl_ord_id.encode()))
        if sp2 and e.order_id is not None:
            f.append((37, e.order_id.encode()))
        f += [(14, _d(e.cum_qty)), (39, _STATUS_CODE[e.status]), (151, _d(e.leaves_qty)),
              (84, _d(e.cxl_qty)), (6, _d(e.avg_px))]
        if e.ord_rej_reason is not None:
            f.append((103, e.ord_rej_reason))
        if e.text:
            f.append((58, e.text.encode()))
    return f
