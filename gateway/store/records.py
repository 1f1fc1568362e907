"""The records the store keeps and gives back, declared once: what a session and an order are
as stored, and the commit unit a session's driver hands the store (:class:`Commit`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, TypeAlias

from gateway.native import dataclass_init_when_interpreted


@dataclass(frozen=True)
class SessionRecord:
    """The persisted state of one FIX session."""

    next_sender: int
    """MsgSeqNum (34) of the next message we send."""
    next_target: int
    """MsgSeqNum (34) we expect on the next message from the counterparty."""
    creation_time: datetime
    """When the sequence numbers were created or last reset (UTC)."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One stored fact about an order (the event log's record). ``exec_id`` is set when the
    client is told of it by an ExecutionReport (or an OrderCancelReject)."""

    event_id: int
    order_id: str
    session_id: str
    kind: str
    ts_ns: int
    data: dict[str, Any]
    exec_id: str | None = None

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, event_id: int, order_id: str, session_id: str, kind: str, ts_ns: int,
                 data: dict[str, Any], exec_id: str | None = None) -> None:
        self.event_id = event_id  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.session_id = session_id  # type: ignore[misc]
        self.kind = kind  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]
        self.data = data  # type: ignore[misc]
        self.exec_id = exec_id  # type: ignore[misc]


dataclass_init_when_interpreted(OrderEvent)


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One venue trade of an order. Amounts are stored as exact decimal strings."""

    venue: str
    trade_id: str
    order_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal | None
    fee_currency: str | None
    liquidity: str | None
    """"maker" / "taker" (:class:`connectors.base.Liquidity` values), None when unknown."""
    ts_ns: int

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, venue: str, trade_id: str, order_id: str, quantity: Decimal, price: Decimal,
                 fee: Decimal | None, fee_currency: str | None, liquidity: str | None,
                 ts_ns: int) -> None:
        self.venue = venue  # type: ignore[misc]
        self.trade_id = trade_id  # type: ignore[misc]
        self.order_id = order_id  # type: ignore[misc]
        self.quantity = quantity  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.fee = fee  # type: ignore[misc]
        self.fee_currency = fee_currency  # type: ignore[misc]
        self.liquidity = liquidity  # type: ignore[misc]
        self.ts_ns = ts_ns  # type: ignore[misc]


dataclass_init_when_interpreted(FillRecord)


@dataclass(frozen=True, slots=True)
class PositionAdjustment:
    """A venue's own position of ``symbol`` differed from the one computed from the fills:
    ``delta`` (= venue_quantity - computed) is added to the computed one from then on."""

    venue: str
    symbol: str
    ts_ns: int
    computed: Decimal
    venue_quantity: Decimal
    delta: Decimal
    reason: str


class OrderSnapshot(Protocol):
    """What the store keeps of an order (``gateway.orders.model.Order`` is one): the columns it
    is looked up by, and its whole state as JSON-ready data. The store knows no more of orders
    than this; reads give the snapshot's data back (``load_order`` and the like), the order path
    makes its orders of it."""

    @property
    def order_id(self) -> str: ...

    @property
    def session_id(self) -> str: ...

    @property
    def cl_ord_id(self) -> str: ...

    @property
    def venue(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def status(self) -> Enum: ...

    @property
    def is_open(self) -> bool: ...

    @property
    def updated_ns(self) -> int: ...

    @property
    def last_event_id(self) -> int: ...

    @property
    def list_id(self) -> str | None: ...

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON-ready data, its keys (and those of the dicts in it) in
        sorted order: the store writes it as is (:func:`gateway.store.rows.snapshot_text`)."""
        ...


Snapshot: TypeAlias = dict[str, Any]
"""An order's snapshot as stored (the order path turns it back into an order)."""


@dataclass(frozen=True, slots=True)
class OrderAppend:
    """Order events, snapshots and fills serialised as rows, ready to insert
    (:func:`gateway.store.rows.build_append`): tuples in the order of ``EVENT_COLUMNS``,
    ``ORDER_COLUMNS`` and ``FILL_COLUMNS``; the drop copies of the events' reports
    (``COPY_COLUMNS``), and the copies a drop copy session's messages deliver
    (``DELIVERED_COLUMNS``: MsgSeqNum, drop copy session, ExecID)."""

    events: tuple[tuple[Any, ...], ...]
    orders: tuple[tuple[Any, ...], ...]
    fills: tuple[tuple[Any, ...], ...]
    copies: tuple[tuple[Any, ...], ...] = ()
    delivered: tuple[tuple[Any, ...], ...] = ()

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, events: tuple[tuple[Any, ...], ...], orders: tuple[tuple[Any, ...], ...],
                 fills: tuple[tuple[Any, ...], ...], copies: tuple[tuple[Any, ...], ...] = (),
                 delivered: tuple[tuple[Any, ...], ...] = ()) -> None:
        self.events = events  # type: ignore[misc]
        self.orders = orders  # type: ignore[misc]
        self.fills = fills  # type: ignore[misc]
        self.copies = copies  # type: ignore[misc]
        self.delivered = delivered  # type: ignore[misc]


dataclass_init_when_interpreted(OrderAppend)


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """A copy of an ExecutionReport for a drop copy session (``session_id``), as stored:
    the report's ``body`` as the session ``source`` was (to be) sent it, without the drop copy's
    own fields; ``seq`` the MsgSeqNum that delivered it (None: not yet)."""

    session_id: str
    exec_id: str
    event_id: int
    source: str
    ts_ns: int
    body: tuple[tuple[int, bytes], ...]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """What a session's driver commits at once, before it writes any of it (Invariant 1):
    the messages it sends (MsgSeqNum, bytes), its sequence numbers after them, the ExecIDs
    those messages carry (ExecID, MsgSeqNum), and the order rows they tell of. One
    transaction: a venue event and the ExecutionReport that tells the client of it are stored
    together, or neither is."""

    session_id: str
    sent: tuple[tuple[int, bytes], ...] = ()
    next_sender: int | None = None
    next_target: int | None = None
    reports: tuple[tuple[str, int], ...] = ()
    orders: tuple[OrderAppend, ...] = ()

    # (written, to be compiled: gateway.native.dataclass_init_when_interpreted)
    def __init__(self, session_id: str, sent: tuple[tuple[int, bytes], ...] = (),
                 next_sender: int | None = None, next_target: int | None = None,
                 reports: tuple[tuple[str, int], ...] = (),
                 orders: tuple[OrderAppend, ...] = ()) -> None:
        self.session_id = session_id  # type: ignore[misc]
        self.sent = sent  # type: ignore[misc]
        self.next_sender = next_sender  # type: ignore[misc]
        self.next_target = next_target  # type: ignore[misc]
        self.reports = reports  # type: ignore[misc]
        self.orders = orders  # type: ignore[misc]


dataclass_init_when_interpreted(Commit)
