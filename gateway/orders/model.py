"""The normalized order and the events that change it (event sourcing).

Every change to an :class:`Order` is an :class:`OrderEvent`, stored before it is applied and
before the client hears of it (Invariant 1); :func:`apply` is the one function that turns events
into state, so replaying the stored events rebuilds every order exactly (DESIGN "Storage").
CumQty, LeavesQty and AvgPx are kept consistent by :func:`apply` alone; Decimal throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from connectors.base import OrderType, Side, TimeInForce
from gateway.store.records import OrderEvent

from .lifecycle import Ev, OrdStatus, transition

# Enum members read once (compiled, a member of another module's Enum is read through its
# metaclass's __getattr__, ten times a constant's cost: docs/performance.md, "Enum members")
_ACCEPTED: Final = Ev.ACCEPTED
_CANCELED: Final = Ev.CANCELED
_CANCEL_REFUSED: Final = Ev.CANCEL_REFUSED
_CANCEL_REQUESTED: Final = Ev.CANCEL_REQUESTED
_EXPIRED: Final = Ev.EXPIRED
_FILL: Final = Ev.FILL
_FILL_FULL: Final = Ev.FILL_FULL
_REJECTED: Final = Ev.REJECTED
_REPLACED: Final = Ev.REPLACED
_REPLACE_REFUSED: Final = Ev.REPLACE_REFUSED
_REPLACE_REQUESTED: Final = Ev.REPLACE_REQUESTED
_FILLED: Final = OrdStatus.FILLED
_NEW: Final = OrdStatus.NEW
_PARTIALLY_FILLED: Final = OrdStatus.PARTIALLY_FILLED
_PENDING_NEW: Final = OrdStatus.PENDING_NEW

__all__ = ["Order", "OrderEvent", "OrderTerms", "Pending", "apply", "new_order",
           "order_from_json", "order_to_json", "stored_fields"]

ZERO = Decimal(0)

TRANSIENT: Final = {"transient": True}
"""Field metadata: work in flight that lives with the order in memory and is not stored (the
stored events rebuild what matters of it: a restart asks the venue again)."""


@dataclass(slots=True)
class Pending:
    """A cancel or replace in flight. It ends when the lifecycle table resolves it (``apply``
    sets the order's ``pending`` back to None), and with it the work it carries."""

    kind: str  # "cancel" | "replace"
    cl_ord_id: str
    orig_cl_ord_id: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    why: str | None = None
    """Why the gateway itself cancels the order (cancel-on-disconnect, mass cancel, kill
    switch): the Text (58) of its Canceled report. None for a client's request."""
    expire_time_ns: int | None = None
    """A parent's new end time (ExpireTime 126 of its replace); None: unchanged."""
    cancel_sent_for: str | None = field(default=None, compare=False, metadata=TRANSIENT)
    """Cancel-then-new: the client order id of the venue order whose cancel places the next
    venue order."""
    placing: bool = field(default=False, compare=False, metadata=TRANSIENT)
    """Cancel-then-new: the old venue order is canceled, the new one is being placed."""
    awaiting_ack: bool = field(default=False, compare=False, metadata=TRANSIENT)
    """A cancel of an order the venue has not acknowledged: sent once it has."""

    @property
    def unsolicited(self) -> bool:
        """A cancel the gateway started (cancel-on-disconnect, mass cancel): no client
        ClOrdID."""
        return self.cl_ord_id == self.orig_cl_ord_id


@dataclass(slots=True)
class OrderTerms:
    """What a client asks for in a NewOrderSingle: the fields an :class:`Order` and the parsed
    request (``fixmap.NewOrder``) share, declared once."""

    cl_ord_id: str
    account: str | None
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    expire_time_ns: int | None
    post_only: bool
    reduce_only: bool

    # (written, to be compiled: dataclasses' own __init__ would run interpreted; Order and
    # fixmap.NewOrder begin theirs with it)
    def __init__(
        self, cl_ord_id: str, account: str | None, side: Side, type: OrderType, quantity: Decimal,
        price: Decimal | None, stop_price: Decimal | None, time_in_force: TimeInForce,
        expire_time_ns: int | None, post_only: bool, reduce_only: bool,
    ) -> None:
        self.cl_ord_id = cl_ord_id
        self.account = account
        self.side = side
        self.type = type
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.time_in_force = time_in_force
        self.expire_time_ns = expire_time_ns
        self.post_only = post_only
        self.reduce_only = reduce_only

    def terms(self) -> dict[str, Any]:
        """These fields by name (to make an order of a request)."""
        return {name: getattr(self, name) for name in _TERMS}


_TERMS = tuple(f.name for f in fields(OrderTerms))
"""The names of the fields of :class:`OrderTerms` (once: ``fields()`` builds them each call)."""


@dataclass(slots=True)
class Order(OrderTerms):
    order_id: str
    """OrderID (37), assigned by the gateway."""
    session_id: str
    venue: str
    symbol: str
    created_ns: int
    status: OrdStatus = OrdStatus.PENDING_NEW
    cum_qty: Decimal = ZERO
    avg_px: Decimal = ZERO
    venue_order_id: str | None = None
    venue_client_order_id: str = ""
    venue_version: int = 0
    orig_cl_ord_id: str | None = None
    pending: Pending | None = None
    text: str | None = None
    updated_ns: int = 0
    last_event_id: int = 0
    exec_count: int = 0
    trade_ids: set[str] = field(default_factory=set)
    """Venue trade ids already applied (dedup of fills while the order is in memory)."""
    strategy: str | None = None
    """TargetStrategy (847) of a client order worked through child orders (a parent)."""
    parent_id: str | None = None
    """The client order this one works at a venue, for a child order (None: the client's
    own order). A child is not reported to the client; its parent hears of its events."""
    effective_time_ns: int | None = None
    """EffectiveTime (168) of a parent: when its strategy starts working it (None: at once)."""
    strategy_parameters: dict[str, str] = field(default_factory=dict)
    """StrategyParametersGrp (957) of a parent: name (958) -> value (960), for its strategy;
    ParticipationRate (849) as the entry ``ParticipationRate``."""
    strategy_step: int = 0
    """How far its strategy has worked a parent (a TWAP: the slices it has gone through), set
    by ``step`` events so that a restart goes on from there."""
    max_floor: Decimal | None = None
    """MaxFloor (111) of an iceberg parent: the most it shows at its venue at a time (its
    child's quantity, :mod:`.iceberg`). None: the order shows all of it."""
    list_id: str | None = None
    """ListID (66) of the NewOrderList (E) the order came in (None: it came alone); echoed in
    its ExecutionReports, and how a ListStatus (N) finds the orders of a list."""
    ord_rej_reason: str | None = None
    """OrdRejReason (103) of a rejected order (None: not rejected, or no reason code)."""
    cancel_next: str | None = field(default=None, compare=False, metadata=TRANSIENT)
    """A cancel the gateway decided while the client's cancel or replace was in flight: done
    once that is resolved, with this Text (58)."""

    # (written, to be compiled: dataclasses' own __init__ would run interpreted)
    def __init__(
        self, cl_ord_id: str, account: str | None, side: Side, type: OrderType, quantity: Decimal,
        price: Decimal | None, stop_price: Decimal | None, time_in_force: TimeInForce,
        expire_time_ns: int | None, post_only: bool, reduce_only: bool, order_id: str,
        session_id: str, venue: str, symbol: str, created_ns: int,
        status: OrdStatus = OrdStatus.PENDING_NEW, cum_qty: Decimal = ZERO,
        avg_px: Decimal = ZERO, venue_order_id: str | None = None,
        venue_client_order_id: str = "", venue_version: int = 0,
        orig_cl_ord_id: str | None = None, pending: Pending | None = None,
        text: str | None = None, updated_ns: int = 0, last_event_id: int = 0, exec_count: int = 0,
        trade_ids: set[str] | None = None, strategy: str | None = None,
        parent_id: str | None = None, effective_time_ns: int | None = None,
        strategy_parameters: dict[str, str] | None = None, strategy_step: int = 0,
        max_floor: Decimal | None = None, list_id: str | None = None,
        ord_rej_reason: str | None = None, cancel_next: str | None = None,
    ) -> None:
        # (not super(): a slots dataclass is a new class, which super()'s cell does not know)
        OrderTerms.__init__(self, cl_ord_id, account, side, type, quantity, price, stop_price,
                            time_in_force, expire_time_ns, post_only, reduce_only)
        self.order_id = order_id
        self.session_id = session_id
        self.venue = venue
        self.symbol = symbol
        self.created_ns = created_ns
        self.status = status
        self.cum_qty = cum_qty
        self.avg_px = avg_px
        self.venue_order_id = venue_order_id
        self.venue_client_order_id = venue_client_order_id
        self.venue_version = venue_version
        self.orig_cl_ord_id = orig_cl_ord_id
        self.pending = pending
        self.text = text
        self.updated_ns = updated_ns
        self.last_event_id = last_event_id
        self.exec_count = exec_count
        self.trade_ids = set() if trade_ids is None else trade_ids
        self.strategy = strategy
        self.parent_id = parent_id
        self.effective_time_ns = effective_time_ns
        self.strategy_parameters = {} if strategy_parameters is None else strategy_parameters
        self.strategy_step = strategy_step
        self.max_floor = max_floor
        self.list_id = list_id
        self.ord_rej_reason = ord_rej_reason
        self.cancel_next = cancel_next

    @property
    def leaves_qty(self) -> Decimal:
        return self.quantity - self.cum_qty if self.status.is_open else ZERO

    @property
    def live_status(self) -> OrdStatus:
        return _PARTIALLY_FILLED if self.cum_qty > 0 else _NEW

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def unacknowledged(self) -> bool:
        """Open, and whoever works it has not acknowledged it: the venue (PendingNew, or
        PendingCancel before the acknowledgement), or for a parent its strategy."""
        if self.strategy is not None:
            return self.status is _PENDING_NEW
        return self.venue_order_id is None and self.is_open

    def to_json(self) -> dict[str, Any]:
        """The snapshot the store keeps (:func:`order_to_json`)."""
        return order_to_json(self)


# ---- (de)serialisation of the order snapshot -------------------------------------------------


_VALUE: dict[Enum, str] = {m: m.value for e in (Side, OrderType, TimeInForce, OrdStatus) for m in e}
"""Member -> value: a dict lookup, where ``.value`` is a Python descriptor call in 3.11."""


def stored_fields(cls: type) -> set[str]:
    """The fields of a dataclass that its snapshot carries (all but the transient ones)."""
    return {f.name for f in fields(cls) if not f.metadata.get("transient")}


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def order_to_json(o: Order) -> dict[str, Any]:
    """The order as JSON-ready data (Decimals as exact strings). Hot path: one dict display,
    no deep copies (a test keeps its keys equal to the fields of :class:`Order`). Its keys, and
    those of the dicts in it, come in sorted order: the store writes it as JSON without sorting
    (:func:`gateway.store.rows.snapshot_text`, the same text as sorted; a test checks it)."""
    p = o.pending
    price, stop_price = o.price, o.stop_price
    params = o.strategy_parameters
    return {
        "account": o.account, "avg_px": str(o.avg_px), "cl_ord_id": o.cl_ord_id,
        "created_ns": o.created_ns, "cum_qty": str(o.cum_qty),
        "effective_time_ns": o.effective_time_ns, "exec_count": o.exec_count,
        "expire_time_ns": o.expire_time_ns, "last_event_id": o.last_event_id,
        "list_id": o.list_id, "max_floor": None if o.max_floor is None else str(o.max_floor),
        "ord_rej_reason": o.ord_rej_reason, "order_id": o.order_id,
        "orig_cl_ord_id": o.orig_cl_ord_id, "parent_id": o.parent_id,
        "pending": None if p is None else {
            "cl_ord_id": p.cl_ord_id, "expire_time_ns": p.expire_time_ns, "kind": p.kind,
            "orig_cl_ord_id": p.orig_cl_ord_id, "price": _s(p.price),
            "quantity": _s(p.quantity), "stop_price": _s(p.stop_price), "why": p.why,
        },
        "post_only": o.post_only, "price": None if price is None else str(price),
        "quantity": str(o.quantity), "reduce_only": o.reduce_only,
        "session_id": o.session_id, "side": _VALUE[o.side], "status": _VALUE[o.status],
        "stop_price": None if stop_price is None else str(stop_price),
        "strategy": o.strategy,
        "strategy_parameters": dict(sorted(params.items())) if params else {},
        "strategy_step": o.strategy_step, "symbol": o.symbol, "text": o.text,
        "time_in_force": _VALUE[o.time_in_force], "trade_ids": sorted(o.trade_ids),
        "type": _VALUE[o.type], "updated_ns": o.updated_ns, "venue": o.venue,
        "venue_client_order_id": o.venue_client_order_id, "venue_order_id": o.venue_order_id,
        "venue_version": o.venue_version,
    }


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def order_from_json(d: dict[str, Any]) -> Order:
    p = d.get("pending")
    pending = None
    if p is not None:
        pending = Pending(p["kind"], p["cl_ord_id"], p["orig_cl_ord_id"], _dec(p.get("quantity")),
                          _dec(p.get("price")), _dec(p.get("stop_price")), p.get("why"),
                          p.get("expire_time_ns"))
    return Order(
        order_id=d["order_id"], session_id=d["session_id"], cl_ord_id=d["cl_ord_id"],
        account=d.get("account"), venue=d["venue"], symbol=d["symbol"], side=Side(d["side"]),
        type=OrderType(d["type"]), quantity=Decimal(d["quantity"]), price=_dec(d.get("price")),
        stop_price=_dec(d.get("stop_price")), time_in_force=TimeInForce(d["time_in_force"]),
        expire_time_ns=d.get("expire_time_ns"), post_only=bool(d.get("post_only")),
        reduce_only=bool(d.get("reduce_only")), created_ns=int(d["created_ns"]),
        status=OrdStatus(d["status"]), cum_qty=Decimal(d["cum_qty"]), avg_px=Decimal(d["avg_px"]),
        venue_order_id=d.get("venue_order_id"),
        venue_client_order_id=d.get("venue_client_order_id", ""),
        venue_version=int(d.get("venue_version", 0)), orig_cl_ord_id=d.get("orig_cl_ord_id"),
        pending=pending, text=d.get("text"), updated_ns=int(d.get("updated_ns", 0)),
        last_event_id=int(d.get("last_event_id", 0)), exec_count=int(d.get("exec_count", 0)),
        trade_ids=set(d.get("trade_ids", ())), strategy=d.get("strategy"),
        parent_id=d.get("parent_id"), effective_time_ns=d.get("effective_time_ns"),
        strategy_parameters=dict(d.get("strategy_parameters") or {}),
        strategy_step=int(d.get("strategy_step", 0)), max_floor=_dec(d.get("max_floor")),
        list_id=d.get("list_id"), ord_rej_reason=d.get("ord_rej_reason"),
    )


# ---- applying events ---------------------------------------------------------------------------


class StaleEvent(ValueError):  # noqa: N818
    """The event does not apply to the order's current state (duplicate or out of date)."""


def new_order(ev: OrderEvent) -> Order:
    """The order an ``created`` event describes (status PendingNew)."""
    if ev.kind != "created":
        raise StaleEvent(f"{ev.order_id}: first event must be 'created', not {ev.kind!r}")
    o = order_from_json(ev.data["order"])
    o.last_event_id = ev.event_id
    o.updated_ns = ev.ts_ns
    if ev.exec_id:
        o.exec_count += 1
    return o


def _target(o: Order, event: Ev, what: str) -> OrdStatus:
    """The status ``event`` moves ``o`` to (the lifecycle table); StaleEvent when none."""
    target = transition(o.status, event, o.live_status)
    if target is None:
        raise StaleEvent(f"{o.order_id}: {what} in status {o.status.name}")
    return target


def apply(o: Order, ev: OrderEvent) -> None:
    """Apply ``ev`` to ``o`` in place. Raises StaleEvent when it does not fit."""
    if ev.event_id and ev.event_id <= o.last_event_id:
        raise StaleEvent(f"{o.order_id}: event {ev.event_id} already applied")
    d = ev.data
    k = ev.kind
    if k == "fill":
        trade_id = d["trade_id"]
        if trade_id in o.trade_ids:
            raise StaleEvent(f"{o.order_id}: trade {trade_id} already applied")
        qty, px = Decimal(d["quantity"]), Decimal(d["price"])
        new_cum = o.cum_qty + qty
        if new_cum > o.quantity:
            raise StaleEvent(f"{o.order_id}: fill of {qty} exceeds the order quantity")
        full = new_cum == o.quantity
        target = _target(o, _FILL_FULL if full else _FILL, "fill")
        o.avg_px = (o.avg_px * o.cum_qty + px * qty) / new_cum
        o.cum_qty = new_cum
        o.trade_ids.add(trade_id)
        o.status = target
        if o.venue_order_id is None and d.get("venue_order_id"):
            o.venue_order_id = d["venue_order_id"]
        if full:
            o.pending = None
    elif k == "accepted":
        o.status = _target(o, _ACCEPTED, "accepted")
        o.venue_order_id = d.get("venue_order_id") or o.venue_order_id
    elif k == "rejected":
        o.status = _target(o, _REJECTED, "rejected")
        o.pending = None
        o.text = d.get("text")
        o.ord_rej_reason = d.get("ord_rej_reason")
    elif k == "cancel_requested":
        o.status = _target(o, _CANCEL_REQUESTED, "cancel requested")
        o.pending = Pending("cancel", d["cl_ord_id"], d["orig_cl_ord_id"], why=d.get("why"))
    elif k == "replace_requested":
        o.status = _target(o, _REPLACE_REQUESTED, "replace requested")
        o.pending = Pending("replace", d["cl_ord_id"], d["orig_cl_ord_id"], _dec(d.get("quantity")),
                            _dec(d.get("price")), _dec(d.get("stop_price")),
                            expire_time_ns=d.get("expire_time_ns"))
    elif k in ("cancel_refused", "replace_refused"):
        ev_kind = _CANCEL_REFUSED if k == "cancel_refused" else _REPLACE_REFUSED
        o.status = _target(o, ev_kind, k)
        o.pending = None
    elif k == "replaced":
        live = transition(o.status, _REPLACED, o.live_status)
        if live is None or o.pending is None:
            raise StaleEvent(f"{o.order_id}: replaced in status {o.status.name}")
        p = o.pending
        o.orig_cl_ord_id = p.orig_cl_ord_id
        o.cl_ord_id = p.cl_ord_id
        if p.quantity is not None:
            o.quantity = p.quantity
        if p.price is not None:
            o.price = p.price
        if p.stop_price is not None:
            o.stop_price = p.stop_price
        if p.expire_time_ns is not None:
            o.expire_time_ns = p.expire_time_ns
        o.pending = None
        if d.get("venue_order_id"):
            o.venue_order_id = d["venue_order_id"]
        if d.get("venue_client_order_id"):
            o.venue_client_order_id = d["venue_client_order_id"]
            o.venue_version = int(d.get("venue_version", o.venue_version))
        o.status = _FILLED if o.cum_qty >= o.quantity else live
    elif k == "canceled":
        target = _target(o, _CANCELED, "canceled")
        pend = o.pending
        if pend is not None:
            o.orig_cl_ord_id = pend.orig_cl_ord_id
            o.cl_ord_id = pend.cl_ord_id
        o.pending = None
        o.status = target
        o.text = d.get("text") or o.text
    elif k == "expired":
        o.status = _target(o, _EXPIRED, "expired")
        o.pending = None
        o.text = d.get("text") or o.text
    elif k == "step":
        if not o.is_open or o.strategy is None:
            raise StaleEvent(f"{o.order_id}: strategy step in status {o.status.name}")
        o.strategy_step = int(d["step"])
    elif k == "routed":
        if o.strategy is None:
            raise StaleEvent(f"{o.order_id}: a routing decision for an order not routed")
        # the smart order router's decision (what it saw, what it chose and why): stored for
        # best-execution reviews; its round is how far the router has gone
        o.strategy_step = int(d.get("round", o.strategy_step))  # (none for a strategy's child)
    elif k in ("status", "list_status"):
        pass  # an OrderStatusRequest answer, a ListStatus: reported, changes nothing
    else:
        raise StaleEvent(f"{o.order_id}: unknown event kind {k!r}")
    o.last_event_id = ev.event_id or o.last_event_id
    o.updated_ns = ev.ts_ns
    if ev.exec_id:
        o.exec_count += 1
