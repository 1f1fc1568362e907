"""What :class:`~connectors.ccxt.connector.CcxtConnector` remembers of each order, bounded.

The orders being watched (:attr:`~connectors.common.venue.StreamingConnector.tracked`) have
their venue order id, symbol, original request, acknowledgement and the quantity of the fills
emitted in per-order maps; when one ends (its terminal event emitted, or found filled)
:meth:`TrackingConnector._retire` moves it to a bounded memory of the last ``closed_orders_kept``
ended (or foreign) orders, enough to map a late trade or answer a late cancel; older ones are
asked of the venue. No I/O here.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import NamedTuple

from connectors.base import (
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    OrderState,
    VenueEvent,
)
from connectors.common.venue import BoundedDict, StreamingConnector

RECENT_S = 60.0
"""How long the trades of an order the venue reports as more filled are polled for."""
CLOSED_KEPT = 100_000
"""Ended orders remembered (ids, symbol, fills emitted) for late trades, cancels and queries;
an older one is looked up at the venue instead."""


class _Ended(NamedTuple):
    """What is kept of an order that ended (or that this connector did not place)."""

    venue_order_id: str
    symbol: str
    acked: bool
    filled: Decimal


class TrackingConnector(StreamingConnector):
    """A StreamingConnector with per-order state that stays bounded (see the module doc): the
    per-order maps hold only the orders being watched; ``_ended``/``_ended_coid`` keep the
    last ``closed_kept`` ended or foreign orders; ``_owed`` lasts ``RECENT_S`` at most."""

    def __init__(self, closed_kept: int = CLOSED_KEPT) -> None:
        super().__init__()
        # the orders being watched (keys of self._open) only; see _retire
        self._vid: dict[str, str] = {}
        """client order id -> venue order id"""
        self._coid: dict[str, str] = {}
        """venue order id -> client order id"""
        self._symbol_of: dict[str, str] = {}
        self._requests: dict[str, OrderRequest] = {}
        self._acked: set[str] = set()
        self._filled: dict[str, Decimal] = {}
        """client order id -> quantity of the fills emitted"""
        self._terminal_waits: dict[str, int] = {}
        # ended orders and orders of others: the most recent closed_kept
        self._ended: BoundedDict[str, _Ended] = BoundedDict(closed_kept)
        """client order id -> what is kept of it"""
        self._ended_coid: BoundedDict[str, str] = BoundedDict(closed_kept)
        """venue order id -> client order id ("" when the venue has none)"""
        self._symbols_used: set[str] = set()
        self._owed: dict[str, tuple[str, Decimal, float]] = {}
        """client order id -> (symbol, filled quantity the venue reports, since when): orders
        whose fills were not all emitted yet; oldest first, dropped after ``RECENT_S``"""

    def emit(self, ev: VenueEvent) -> bool:
        """As StreamingConnector's, counting the fills emitted per order and retiring an
        order that ended."""
        queued = super().emit(ev)
        if not queued:
            return False
        coid = ev.client_order_id
        if isinstance(ev, OrderFilled):
            filled = self._add_filled(coid, ev.quantity)
            owed = self._owed.get(coid)
            if owed is not None and filled >= owed[1]:
                del self._owed[coid]
        elif isinstance(ev, OrderCanceled | OrderExpired | OrderRejected):
            self._retire(coid)  # no longer watched (StreamingConnector.emit)
        return True

    def _owe(self, state: OrderState) -> None:
        """Note that the venue reports more filled than the fills emitted: the trades of its
        symbol are fetched until they add up (or ``RECENT_S`` has passed)."""
        coid = state.client_order_id
        if coid and state.filled_quantity > self._filled_of(coid):
            now = time.monotonic()
            self._owed.pop(coid, None)  # kept in order of since: the expired ones lead
            self._owed[coid] = (state.symbol or self._symbol_for(coid) or "",
                                state.filled_quantity, now)
            while (oldest := next(iter(self._owed))) != coid and \
                    self._owed[oldest][2] < now - RECENT_S:
                del self._owed[oldest]

    def _owed_symbols(self) -> list[str]:
        horizon = time.monotonic() - RECENT_S
        for coid, (_, filled, since) in list(self._owed.items()):
            if self._filled_of(coid) >= filled or since < horizon:
                del self._owed[coid]
        return sorted({sym for sym, _, _ in self._owed.values() if sym})

    def _learn(self, client_order_id: str, venue_order_id: str, symbol: str) -> None:
        """Note an order's ids and symbol: in the maps of the watched orders when it is one,
        else among the ended ones."""
        if not client_order_id:
            return
        if symbol:
            self._symbols_used.add(symbol)
        if client_order_id not in self._open:
            kept = self._ended.get(client_order_id)
            if kept is not None:
                self._ended[client_order_id] = kept._replace(
                    venue_order_id=venue_order_id or kept.venue_order_id,
                    symbol=symbol or kept.symbol)
            elif venue_order_id:
                self._ended[client_order_id] = _Ended(venue_order_id, symbol, False,
                                                      Decimal(0))
            if venue_order_id:
                self._ended_coid[venue_order_id] = client_order_id
            return
        if venue_order_id:
            old = self._vid.get(client_order_id)
            if old and old != venue_order_id and self._coid.get(old) == client_order_id:
                # a new venue id (amend): a late trade of the old one still maps
                self._ended_coid[old] = self._coid.pop(old)
            self._vid[client_order_id] = venue_order_id
            self._coid[venue_order_id] = client_order_id
        if symbol:
            self._symbol_of[client_order_id] = symbol

    def untrack(self, client_order_id: str) -> None:
        super().untrack(client_order_id)
        self._retire(client_order_id)

    def _retire(self, coid: str) -> None:
        """An order no longer watched (it ended, or its placing failed): its entries leave
        the per-order maps; its ids, symbol and fills are kept among the ended orders."""
        if coid in self._open:
            return
        vid = self._vid.pop(coid, None)
        if vid is not None and self._coid.get(vid) == coid:
            del self._coid[vid]
        symbol = self._symbol_of.pop(coid, "")
        self._requests.pop(coid, None)
        acked = coid in self._acked
        self._acked.discard(coid)
        filled = self._filled.pop(coid, None)
        self._terminal_waits.pop(coid, None)
        if vid is None:
            return
        kept = self._ended.get(coid)
        if kept is not None:
            acked = acked or kept.acked
            filled = filled if filled is not None else kept.filled
        self._ended[coid] = _Ended(vid, symbol or (kept.symbol if kept else ""), acked,
                                   filled if filled is not None else Decimal(0))
        self._ended_coid[vid] = coid

    def _vid_of(self, coid: str) -> str | None:
        vid = self._vid.get(coid)
        if vid is None:
            kept = self._ended.get(coid)
            vid = kept.venue_order_id if kept is not None else None
        return vid

    def _coid_of(self, vid: str) -> str | None:
        coid = self._coid.get(vid)
        return coid if coid is not None else self._ended_coid.get(vid)

    def _symbol_for(self, coid: str) -> str | None:
        sym = self._symbol_of.get(coid)
        if sym is None:
            kept = self._ended.get(coid)
            sym = (kept.symbol or None) if kept is not None else None
        return sym

    def _was_acked(self, coid: str) -> bool:
        if coid in self._acked:
            return True
        kept = self._ended.get(coid)
        return kept is not None and kept.acked

    def _mark_acked(self, coid: str) -> None:
        if coid in self._open:
            self._acked.add(coid)
            return
        kept = self._ended.get(coid)
        if kept is not None:
            self._ended[coid] = kept._replace(acked=True)

    def _filled_of(self, coid: str) -> Decimal:
        filled = self._filled.get(coid)
        if filled is None:
            kept = self._ended.get(coid)
            filled = kept.filled if kept is not None else Decimal(0)
        return filled

    def _add_filled(self, coid: str, quantity: Decimal) -> Decimal:
        if coid in self._open:
            self._filled[coid] = total = self._filled.get(coid, Decimal(0)) + quantity
            return total
        kept = self._ended.get(coid)
        if kept is None:
            return quantity
        self._ended[coid] = kept._replace(filled=kept.filled + quantity)
        return kept.filled + quantity
