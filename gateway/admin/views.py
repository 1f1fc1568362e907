"""What the admin API and the dashboard show, as JSON-ready data: sessions, orders, fills,
venues, the kill switch, the store. Amounts are plain decimal strings, times UTC ISO 8601."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.fix.message import fix_decimal

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.orders.model import Order
    from gateway.server.acceptor import Acceptor

    from .metrics import Fill
    from .venues import VenueState

ORDER_STATES = ("pending_new", "new", "partially_filled", "pending_cancel", "pending_replace",
                "filled", "canceled", "rejected", "expired")
"""The states an order query filters on (OrdStatus names, lower case)."""


def plain(v: Decimal | None) -> str | None:
    return None if v is None else fix_decimal(v).decode()


def iso(ns: int | None) -> str | None:
    if not ns:
        return None
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9))
            + f".{ns // 1_000_000 % 1000:03d}Z")


def order_view(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id, "session": o.session_id, "cl_ord_id": o.cl_ord_id,
        "account": o.account, "venue": o.venue, "symbol": o.symbol, "side": o.side.name.lower(),
        "type": o.type.name.lower(), "time_in_force": o.time_in_force.name.lower(),
        "state": o.status.name.lower(), "quantity": plain(o.quantity), "price": plain(o.price),
        "stop_price": plain(o.stop_price), "filled": plain(o.cum_qty),
        "avg_price": plain(o.avg_px), "strategy": o.strategy,
        "venue_order_id": o.venue_order_id, "created": iso(o.created_ns),
        "updated": iso(o.updated_ns), "text": o.text,
    }


def select_orders(orders: Iterable[Order], q: Mapping[str, str]) -> list[Order]:
    """The client orders that match the filters ``session``, ``account``, ``venue``,
    ``symbol`` and ``state`` (each optional)."""
    out = []
    for o in orders:
        if o.parent_id is not None:
            continue
        if q.get("session") not in (None, o.session_id) or q.get("account") not in (
                None, o.account or "") or q.get("venue") not in (None, o.venue) or q.get(
                "symbol") not in (None, o.symbol) or q.get("state") not in (
                None, o.status.name.lower()):
            continue
        out.append(o)
    return sorted(out, key=lambda o: o.created_ns)


def fill_view(f: Fill) -> dict[str, Any]:
    return {"time": iso(f.ts_ns), "session": f.session, "order_id": f.order_id,
            "cl_ord_id": f.cl_ord_id, "venue": f.venue, "symbol": f.symbol, "side": f.side,
            "quantity": plain(f.quantity), "price": plain(f.price)}


def store_view(store: Any) -> dict[str, Any]:
    up = bool(getattr(store, "available", True))
    return {"up": up, "why": None if up else getattr(store, "unavailable_reason", None),
            "outages": getattr(store, "outages", 0)}


def snapshot(acceptor: Acceptor, orders: OrderManager, venues: Mapping[str, VenueState],
             fills: Iterable[Fill], store: Any, limit: int = 200) -> dict[str, Any]:
    """Everything the dashboard shows, at once (the last ``limit`` open orders; each session
    with the count of all its open orders)."""
    open_orders = select_orders((o for o in orders.book.client_orders() if o.is_open), {})
    counts = Counter(o.session_id for o in open_orders)
    return {
        "time": iso(time.time_ns()),
        "sessions": [{**row, "open_orders": counts[row["session"]]}
                     for row in acceptor.sessions_state()],
        "orders": [order_view(o) for o in open_orders[-limit:]],
        "open_orders": len(open_orders),
        "fills": [fill_view(f) for f in fills],
        "venues": {n: s.as_json() for n, s in sorted(venues.items())},
        "kill_switch": orders.kill_switches(),
        "store": store_view(store),
    }
