"""What ``fixgw report`` measures a client order's execution against, recorded as the order
path goes (the store keeps no market data of its own):

* at its arrival (its ``created`` event, ``data["arrival"]``): the venue's best bid and ask
  (their mid is the *arrival mid*), and the *tape* -- the size and notional of the public
  trades of its instrument seen so far (:class:`~.ports.Tape`);
* at its end (the event that closes it, ``data["tape"]``): the tape again.

The market's VWAP over the order's life is the notional traded between the two tapes over the
size traded, every public trade of its venue and instrument counted (its own fills included),
when both tapes are of one unbroken run of the feed. Both are known only while the gateway
watches that book (a market data subscriber, a strategy, the router; or, with
``[gateway] benchmark_books``, every instrument it has placed a client order on, from the
first such order: that order has no benchmark, the later ones do). Nothing is recorded
otherwise, and the report says how many orders had none. A routed order (SOR) has no venue of
its own: no benchmark.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .model import Order
from .ports import MarketView, NoMarket, Tape
from .tasks import Tasks

log = logging.getLogger("fixgw.orders")

RETRY_S = 60.0
"""Seconds before a book that could not be watched is tried again."""


def tape_json(t: Tape) -> list[str]:
    return [t.tape_id, str(t.size), str(t.notional)]


class Benchmarks:
    def __init__(self, market: MarketView | None = None, *, watch: bool = False,
                 tasks: Tasks | None = None) -> None:
        self.market: MarketView = market if market is not None else NoMarket()
        self.watch = watch
        """Watch the book of every instrument a client order is placed on (module docstring)."""
        self._tasks = tasks or Tasks()
        self._watched: dict[tuple[str, str], float] = {}
        """(venue, symbol) -> when it was asked to be watched (monotonic seconds)."""

    def arrival(self, o: Order) -> dict[str, Any] | None:
        """What the market is as ``o`` arrives (None: nothing known)."""
        quote = self.market.quote(o.venue, o.symbol)
        tape = self.market.tape(o.venue, o.symbol)
        if self.watch and quote is None:
            self._keep_watching(o.venue, o.symbol)
        out: dict[str, Any] = {}
        if quote is not None:
            bid, ask = quote
            out.update(bid=str(bid), ask=str(ask), mid=str((bid + ask) / 2))
        if tape is not None:
            out["tape"] = tape_json(tape)
        return out or None

    def end(self, o: Order) -> list[str] | None:
        """The tape as ``o`` ends (None: its book is not watched)."""
        tape = self.market.tape(o.venue, o.symbol)
        return None if tape is None else tape_json(tape)

    def _keep_watching(self, venue: str, symbol: str) -> None:
        key = (venue, symbol)
        now = time.monotonic()
        asked = self._watched.get(key)
        if asked is not None and (asked == float("inf") or now - asked < RETRY_S):
            return
        self._watched[key] = now

        async def watch() -> None:
            if await self.market.watch(venue, symbol):
                self._watched[key] = float("inf")  # kept for as long as the gateway runs
                log.info("%s: the book of %s is watched for the benchmarks of its orders",
                         venue, symbol)

        self._tasks.spawn(watch())
