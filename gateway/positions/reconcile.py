"""Positions reconciled with the venues: on start, after each reconnection and periodically,
each venue account's derivative positions (canonical ``BASE/QUOTE:SETTLE``; a spot holding is a
balance, not a position) are compared with those computed from the gateway's fills. The venue
is the truth for what it holds: a difference seen the same by two reconciliations in a row,
each after the order path has caught up (fills on their way are not differences), becomes an
explicit adjustment -- stored, logged and told to the alert hooks -- never a silent overwrite,
never an invented fill."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

from connectors.base import Connector, VenueError
from gateway.store.records import PositionAdjustment

from .book import ZERO, Positions

log = logging.getLogger("fixgw.positions")


Save = Callable[[PositionAdjustment], Awaitable[None]]
Alert = Callable[[PositionAdjustment], None]


def is_derivative(symbol: str) -> bool:
    return ":" in symbol


class Reconciler:
    def __init__(self, positions: Positions, connectors: Mapping[str, Connector], save: Save,
                 settle: Callable[[], Awaitable[None]],
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.positions = positions
        self.connectors = connectors
        self.save = save
        self.settle = settle
        """Until the order path has applied what it is processing (fills on their way)."""
        self.clock_ns = clock_ns
        self.alerts: list[Alert] = []
        self.runs = 0
        self._suspects: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
        """Venue -> the differences its last reconciliation found (not yet adjusted)."""

    async def reconcile(self, venue: str | None = None) -> list[PositionAdjustment]:
        """Compare (and adjust) every venue's positions, or ``venue``'s; a venue that cannot
        answer is logged and left for the next time."""
        self.runs += 1
        out: list[PositionAdjustment] = []
        for name in [venue] if venue is not None else list(self.connectors):
            try:
                out += await self._venue(name)
            except VenueError as exc:
                log.warning("%s: positions not reconciled: %s", name, exc)
        return out

    async def _differences(self, venue: str) -> dict[str, tuple[Decimal, Decimal]]:
        """Symbol -> (computed, the venue's) where they differ."""
        theirs: dict[str, Decimal] = {}
        for p in await self.connectors[venue].positions():
            if is_derivative(p.symbol):  # (hedge mode: a long and a short row, summed)
                theirs[p.symbol] = theirs.get(p.symbol, ZERO) + p.quantity
        ours = {s: q for s, q in self.positions.venue_totals(venue).items()
                if is_derivative(s)}
        return {s: (ours.get(s, ZERO), theirs.get(s, ZERO)) for s in ours.keys() | theirs.keys()
                if ours.get(s, ZERO) != theirs.get(s, ZERO)}

    async def _venue(self, venue: str) -> list[PositionAdjustment]:
        """A difference is adjusted when the run before saw the very same one (the same
        computed and venue quantities): a fill on its way when one run looks has arrived by
        the next, and changes the computed side."""
        await self.settle()
        found = await self._differences(venue)
        seen, self._suspects[venue] = self._suspects.get(venue, {}), found
        out = []
        for symbol, (computed, theirs) in sorted(found.items()):
            if seen.get(symbol) != (computed, theirs):
                log.info("%s: position of %s differs (the venue holds %s, the fills make %s); "
                         "adjusted if the next reconciliation sees the same", venue, symbol,
                         f"{theirs:f}", f"{computed:f}")
                continue
            a = PositionAdjustment(venue, symbol, self.clock_ns(), computed, theirs,
                                   theirs - computed,
                                   f"the venue holds {theirs:f}, the fills make {computed:f}")
            await self.save(a)  # stored before it counts
            self.positions.adjust(venue, symbol, a.delta)
            self._suspects[venue].pop(symbol, None)
            log.warning("%s: position of %s adjusted by %s: %s", venue, symbol,
                        f"{a.delta:f}", a.reason)
            for alert in self.alerts:
                try:
                    alert(a)
                except Exception:
                    log.exception("a position alert hook failed")
            out.append(a)
        return out
