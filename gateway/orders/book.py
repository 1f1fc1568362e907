"""The orders of record in memory: the open orders (and those with work in flight) by OrderID,
and how each is found: by the client's ClOrdID within its session, by the venue's client order
id within its venue. A child order (one venue order of a parent) is found by its venue id
only: the client knows its parent.

The book holds orders; it decides nothing (the parts of the order path do) and calls nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .model import ZERO, Order

REFUSED_KEPT = 10_000
"""Refused cancel and replace ClOrdIDs remembered to recognise a PossDup resend of one."""

Key = tuple[str, str]


class OrderBook:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        """By OrderID."""
        self._by_cl: dict[Key, str] = {}
        self._cl_keys: dict[str, list[Key]] = {}
        self._by_coid: dict[Key, str] = {}
        self._coid_keys: dict[str, list[Key]] = {}
        self._coid_filled: dict[Key, Decimal] = {}
        """What each venue order has filled as far as this process has applied."""
        self._refused_cl: dict[Key, None] = {}

    def __iter__(self) -> Iterator[Order]:
        return iter(self.orders.values())

    def add(self, o: Order) -> None:
        self.orders[o.order_id] = o
        self.map_cl(o, o.cl_ord_id)
        if o.pending is not None:
            self.map_cl(o, o.pending.cl_ord_id)
        if o.venue_client_order_id:
            self.map_coid(o, o.venue_client_order_id)

    def map_cl(self, o: Order, cl_ord_id: str) -> None:
        """``cl_ord_id`` names ``o`` within its session (from now until ``o`` leaves)."""
        if o.parent_id is not None:
            return
        key = (o.session_id, cl_ord_id)
        self._by_cl[key] = o.order_id
        self._cl_keys.setdefault(o.order_id, []).append(key)

    def unmap_cl(self, session_id: str, cl_ord_id: str) -> None:
        """``cl_ord_id`` is free again (the request that brought it was refused): a PossDup
        resend of that request is recognised (:meth:`was_refused`), the last
        :data:`REFUSED_KEPT` of them."""
        self._by_cl.pop((session_id, cl_ord_id), None)
        self._refused_cl[(session_id, cl_ord_id)] = None
        if len(self._refused_cl) > REFUSED_KEPT:
            del self._refused_cl[next(iter(self._refused_cl))]

    def map_coid(self, o: Order, coid: str) -> None:
        """The venue order ``coid`` at ``o``'s venue is (a version of) ``o``."""
        key = (o.venue, coid)
        self._by_coid[key] = o.order_id
        self._coid_keys.setdefault(o.order_id, []).append(key)

    def holds(self, o: Order) -> bool:
        return self.orders.get(o.order_id) is o

    def by_cl(self, session_id: str, cl_ord_id: str) -> Order | None:
        oid = self._by_cl.get((session_id, cl_ord_id))
        return None if oid is None else self.orders.get(oid)

    def has_cl(self, session_id: str, cl_ord_id: str) -> bool:
        """Whether a live order of the session has (or is getting) this ClOrdID."""
        return (session_id, cl_ord_id) in self._by_cl

    def was_refused(self, session_id: str, cl_ord_id: str) -> bool:
        return (session_id, cl_ord_id) in self._refused_cl

    def find(self, session_id: str, orig: str | None, order_id: str | None) -> Order | None:
        """The client order a request names: by OrigClOrdID, else by OrderID."""
        if orig is not None:
            o = self.by_cl(session_id, orig)
            if o is not None:
                return o
        if order_id is not None:
            o = self.orders.get(order_id)
            if o is not None and o.session_id == session_id and o.parent_id is None:
                return o
        return None

    def at_venue(self, venue: str, coid: str) -> Order | None:
        oid = self._by_coid.get((venue, coid))
        return None if oid is None else self.orders.get(oid)

    def filled_at_venue(self, venue: str, coid: str) -> Decimal:
        return self._coid_filled.get((venue, coid), ZERO)

    def add_filled(self, venue: str, coid: str, quantity: Decimal) -> None:
        key = (venue, coid)
        self._coid_filled[key] = self._coid_filled.get(key, ZERO) + quantity

    def client_orders(self, session_id: str | None = None) -> list[Order]:
        """The client orders (not the children), of one session or of all."""
        return [o for o in self.orders.values() if o.parent_id is None
                and (session_id is None or o.session_id == session_id)]

    def venue_orders(self, venue: str) -> list[Order]:
        """The orders at ``venue`` (a parent is not one: its children are)."""
        return [o for o in self.orders.values() if o.venue == venue and o.strategy is None]

    def children(self, parent: Order) -> list[Order]:
        return [o for o in self.orders.values() if o.parent_id == parent.order_id]

    def remove(self, o: Order) -> bool:
        """``o`` leaves the book with every way to find it; False when it was not in it."""
        if self.orders.pop(o.order_id, None) is None:
            return False
        for key in self._cl_keys.pop(o.order_id, ()):
            if self._by_cl.get(key) == o.order_id:
                del self._by_cl[key]
        for key in self._coid_keys.pop(o.order_id, ()):
            self._coid_filled.pop(key, None)
            if self._by_coid.get(key) == o.order_id:
                del self._by_coid[key]
        return True

    def empty(self) -> bool:
        """No order and no index entry left (tests check that nothing leaks)."""
        return not (self.orders or self._by_cl or self._cl_keys or self._by_coid
                    or self._coid_keys or self._coid_filled)
