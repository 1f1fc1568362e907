"""The rows an order's events, snapshot, fills and drop copies are stored as, made on the
caller's thread (the event loop: three times an order), in the order of the ``*_COLUMNS``
tuples of :mod:`gateway.store.writes`.

Compiled by mypyc with the order path (:data:`gateway.native.ORDER_PATH`): pure functions of
the records, no I/O, nothing a test replaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson

from gateway.store.records import CopyRecord, FillRecord, OrderAppend, OrderEvent, OrderSnapshot
from gateway.store.schema import ID_LENGTH, NAME_LENGTH, SESSION_ID_LENGTH


def build_append(
    events: Sequence[OrderEvent], orders: Sequence[OrderSnapshot],
    fills: Sequence[FillRecord] = (), copies: Sequence[CopyRecord] = (),
) -> OrderAppend:
    """Serialise now (on the caller's thread: the snapshot is the order as it is now) what
    :meth:`gateway.store.orders.OrderRepository.append_order_events` or a session's commit
    stores."""
    # (``map``, no generator: three of these an order on the event loop)
    return OrderAppend(
        tuple(map(_event_row, events)),
        tuple(map(_order_row, orders)),
        tuple(map(_fill_row, fills)) if fills else (),
        tuple(map(copy_row, copies)) if copies else (),
    )


def copy_row(c: CopyRecord) -> tuple[Any, ...]:
    """The row of a drop copy (``COPY_COLUMNS`` order; the body as JSON text pairs)."""
    check_length("session_id", c.session_id, SESSION_ID_LENGTH)
    check_length("exec_id", c.exec_id, ID_LENGTH)
    check_length("source", c.source, SESSION_ID_LENGTH)
    body = [[t, v.decode()] for t, v in c.body]
    return (c.session_id, c.exec_id, c.event_id, c.source, c.ts_ns, json_text(body))


def delivered_row(session_id: str, exec_id: str, seq: int) -> tuple[Any, ...]:
    """The row that records a copy delivered by MsgSeqNum ``seq`` (``DELIVERED_COLUMNS``)."""
    if seq < 1:
        raise ValueError(f"seq must be >= 1, not {seq}")
    return (seq, session_id, exec_id)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


def json_text(value: Any) -> str:
    """Compact, key-sorted JSON (orjson: about 6x faster than the standard encoder on the hot
    path, where every order event and snapshot is serialised)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def snapshot_text(o: OrderSnapshot) -> str:
    """An order's snapshot as JSON text: :func:`json_text` without sorting the keys, which
    :meth:`~gateway.store.records.OrderSnapshot.to_json` gives in sorted order already (the
    order's: :func:`gateway.orders.model.order_to_json`; half the cost of the sorting dump)."""
    return orjson.dumps(o.to_json(), default=_json_default).decode()


def check_length(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise ValueError(f"{name} must be 1..{limit} characters: {value!r}")


def _event_row(e: OrderEvent) -> tuple[Any, ...]:
    exec_id = e.exec_id
    # (the lengths compared inline, the one check each failure names made only on failure)
    if (e.event_id < 1 or not 0 < len(e.order_id) <= NAME_LENGTH
            or not 0 < len(e.session_id) <= SESSION_ID_LENGTH
            or not 0 < len(e.kind) <= NAME_LENGTH
            or (exec_id is not None and not 0 < len(exec_id) <= ID_LENGTH)):
        if e.event_id < 1:
            raise ValueError(f"event_id must be >= 1, not {e.event_id}")
        check_length("order_id", e.order_id, NAME_LENGTH)
        check_length("session_id", e.session_id, SESSION_ID_LENGTH)
        check_length("kind", e.kind, NAME_LENGTH)
        check_length("exec_id", exec_id or "", ID_LENGTH)
    # EVENT_COLUMNS order (report_seq: set when the batch has the report, _report_seqs)
    return (e.event_id, e.order_id, e.session_id, e.kind, e.ts_ns, exec_id, json_text(e.data),
            _chain_cl_ord_id(e), None)


def _chain_cl_ord_id(e: OrderEvent) -> str | None:
    """The ClOrdID ``e`` gives its order's chain (a NewOrderSingle's, a cancel's or a
    replace's), the ``cl_ord_id`` column
    :meth:`gateway.store.orders.OrderRepository.find_order_by_past_cl` finds the order by;
    None for the other events."""
    if e.kind == "created":
        order = e.data.get("order")
        return order.get("cl_ord_id") if isinstance(order, dict) else None
    if e.kind in ("cancel_requested", "replace_requested"):
        cl: str | None = e.data.get("cl_ord_id")
        return cl
    return None


_VALUES: dict[Enum, Any] = {}


def _value(member: Enum) -> Any:
    """``member.value``, kept: an Enum's ``value`` is a Python descriptor call in 3.11."""
    value = _VALUES.get(member)
    if value is None:
        value = _VALUES[member] = member.value
    return value


def _order_row(o: OrderSnapshot) -> tuple[Any, ...]:
    order_id, session_id = o.order_id, o.session_id
    if not (0 < len(order_id) <= NAME_LENGTH and 0 < len(session_id) <= SESSION_ID_LENGTH):
        check_length("order_id", order_id, NAME_LENGTH)
        check_length("session_id", session_id, SESSION_ID_LENGTH)
    return (  # ORDER_COLUMNS order
        order_id,
        session_id,
        o.cl_ord_id,
        o.venue,
        o.symbol,
        _value(o.status),
        bool(o.is_open),
        o.updated_ns,
        o.last_event_id,
        snapshot_text(o),
        o.list_id,
    )


def _fill_row(f: FillRecord) -> tuple[Any, ...]:
    if not (0 < len(f.venue) <= NAME_LENGTH and 0 < len(f.trade_id) <= ID_LENGTH
            and 0 < len(f.order_id) <= NAME_LENGTH):
        check_length("venue", f.venue, NAME_LENGTH)
        check_length("trade_id", f.trade_id, ID_LENGTH)
        check_length("order_id", f.order_id, NAME_LENGTH)
    return (  # FILL_COLUMNS order
        f.venue,
        f.trade_id,
        f.order_id,
        str(f.quantity),
        str(f.price),
        None if f.fee is None else str(f.fee),
        f.fee_currency,
        f.liquidity,
        f.ts_ns,
    )
