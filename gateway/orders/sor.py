"""Smart order routing: an order that names no venue (ExDestination (100) ``SOR``, or any order
of a session with ``routing = "sor"``) is a parent whose children the router sends to the
venues that give the best price after fees (:func:`gateway.routing.sor.plan`).

* **Candidates**: the session's venues (the one venue of its Account, when the session maps
  accounts) that list the symbol, support the order's TimeInForce and are up; a venue whose
  child was rejected (down, rate-limited, refused) is left out for the rest of the order.
* **What it sees**: each candidate's book (its public feed, watched from the first routed order
  of the symbol on, until no routed order of the symbol has been open for :data:`BOOK_KEEP`
  seconds; the first waits up to :data:`BOOK_WAIT` seconds for the books, then routes
  with what it has: a venue whose book is not known is ranked by its last price), its taker
  fee, and the account's free balance there (when the venue pushes balances).
* **Children**: a limit order's children are limit orders at its price (on each venue's tick
  grid, never beyond it) with its TimeInForce; a market order's are market orders (IOC). The
  client sees one order: ExecutionReports on the parent, each fill with LastMkt (30) naming
  the venue, CumQty and AvgPx over all children.
* **Failover**: a child rejected by its venue gives its quantity back and the rest is routed
  again among the other venues; so is a resting child the venue cancels or expires on its own
  (GTC/GTD/Day), up to :data:`MAX_ROUNDS` routings. A child whose outcome is ambiguous (a
  timeout) keeps its quantity until the venue is asked (:meth:`Children.open` never lets the
  children add up to more than the parent, Invariant 10).
* **End**: an IOC or market order ends once its children have: Canceled with what filled; any
  order ends Canceled, saying why, when no venue can take what is left.
* **Every routing is stored** (a ``routed`` event of the parent: the books it saw, the fees, the
  balances, the venues left out and why, each share and why): ``GET /orders/{id}/routing`` of
  the admin API and ``fixgw routing ORDERID`` show them.

Cancel cancels the children, then the parent. A replace (OrderQty, Price) cancels the children,
Replaces the parent, and routes what is left again on the new terms (:meth:`Children.replace`).
After a restart the parent is resumed: what is not filled or working is routed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.base import InstrumentKind, OrderType, Side, TimeInForce
from gateway.routing.sor import Plan, Share, VenueQuote, plan

from . import fixmap
from .children import Children, cancelling
from .lifecycle import OrdStatus
from .model import Order, OrderEvent

log = logging.getLogger("fixgw.orders")

BOOK_WAIT = 2.0
"""Seconds the first routed order of a symbol waits for the venues' books."""
MAX_ROUNDS = 10
"""Routings of one order at most (its first, then one per failover)."""
WATCH_RETRY = 30.0
"""Seconds before a venue's book that could not be had is asked for again."""
BOOK_KEEP = 600.0
"""Seconds a symbol's books stay watched once no routed order of it is open (a desk that
routes a symbol again soon finds them known; one routed once no longer holds the venue's
stream): released within a quarter of this after."""
DECISION_LEVELS = 10
"""Levels a side of each venue's book kept with a stored decision."""
RESTING = frozenset({TimeInForce.GTC, TimeInForce.GTD, TimeInForce.DAY})


class SmartRouter:
    """The smart order router as a strategy (module docstring)."""

    def __init__(self, children: Children, *, book_wait: float = BOOK_WAIT,
                 book_keep: float = BOOK_KEEP,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.children = children
        self.book_wait = book_wait
        self.book_keep = book_keep
        self.clock = clock
        self._watched: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self._watch_failed: dict[tuple[str, str], float] = {}
        self._users: dict[str, dict[str, Order]] = {}
        """Symbol -> the routed parents (by OrderID) that asked for its books and may still be
        open (the closed ones dropped at the next look)."""
        self._idle_since: dict[str, float] = {}
        """Symbol -> since when none of its users is known open (absent: one is, or was at
        the last look)."""
        self._sweep: asyncio.TimerHandle | None = None
        children.split = self.split  # (the strategies' children of routed parents)
        self._rejected: dict[str, dict[str, str]] = {}
        """Parent -> the venues that rejected one of its children, and what they said (kept
        while the gateway runs: after a restart such a venue may be tried once more)."""
        self.decisions_ns: list[int] = []
        """How long each routing decision took (diagnostics, the benchmark)."""

    # ---- the Strategy protocol ---------------------------------------------------------------

    def start(self, parent: Order) -> None:
        if parent.type not in (OrderType.MARKET, OrderType.LIMIT):
            self.children.reject(parent, f"the smart order router takes market and limit "
                                 f"orders, not OrdType {parent.type.value}",
                                 fixmap.ORD_REJ_UNSUPPORTED)
            return
        self.children.acknowledge(parent)
        pending = self._watch(parent)
        if not pending:
            self._route(parent)
            self._settle(parent)
            return

        async def when_books_known() -> None:
            await asyncio.wait(pending, timeout=self.book_wait)
            self._route(parent)
            self._settle(parent)

        self.children.tasks.spawn(when_books_known())

    def cancel(self, parent: Order) -> None:
        self.children.cancel_all(parent, "SOR canceled")
        self.children.keep_cancelling(parent, "SOR canceled", lambda: cancelling(parent))

    def replace(self, parent: Order) -> None:
        self.children.replace(parent, self)

    def resume(self, parent: Order) -> None:
        if self.children.resume_pending(parent, self):
            return
        self._watch(parent)
        log.info("%s: SOR resumed after %d routings, %d children live", parent.order_id,
                 parent.strategy_step, sum(1 for c in self.children.of(parent) if c.is_open))
        self._route(parent)
        self._settle(parent)

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if ev.kind == "fill":
            self.children.fill(parent, child, ev)
        if not parent.is_open:
            self._rejected.pop(parent.order_id, None)
            return
        if child.is_open:
            return
        if cancelling(parent):
            if not any(c.is_open for c in self.children.of(parent)):
                self.children.cancel_done(parent, "SOR canceled")
            return
        if ev.kind == "rejected":
            self._rejected.setdefault(parent.order_id, {})[child.venue] = \
                child.text or "rejected"
            log.warning("%s: child %s rejected at %s (%s): the rest is routed again",
                        parent.order_id, child.order_id, child.venue, child.text)
            self._route(parent)
        elif ev.kind == "canceled" and parent.type is OrderType.LIMIT and \
                parent.time_in_force in RESTING and not self._expired(parent):
            log.warning("%s: child %s canceled by %s: the rest is routed again",
                        parent.order_id, child.order_id, child.venue)
            self._route(parent)
        self._settle(parent)

    # ---- routing -----------------------------------------------------------------------------

    def venues(self, parent: Order, tif: TimeInForce) -> list[str]:
        """The venues ``parent``'s children of ``tif`` may be routed to now (module
        docstring: candidates)."""
        out = []
        for venue in self.children.routes(parent):
            conn = self.children.connectors.get(venue)
            if conn is None or venue in self._left_out(parent):
                continue
            if tif in conn.capabilities.time_in_force and \
                    self.children.instrument(parent, venue) is not None:
                out.append(venue)
        return out

    def _left_out(self, parent: Order) -> dict[str, str]:
        """The venues that rejected a child of ``parent``, and what they said."""
        return self._rejected.get(parent.order_id, {})

    def _child_tif(self, parent: Order) -> TimeInForce:
        return TimeInForce.IOC if parent.type is OrderType.MARKET else parent.time_in_force

    def _watch(self, parent: Order) -> list[asyncio.Task[bool]]:
        """Watch the books of ``parent``'s candidates; the watches not done yet."""
        self._users.setdefault(parent.symbol, {})[parent.order_id] = parent
        self._idle_since.pop(parent.symbol, None)
        if self._sweep is None:
            self._sweep = self.children.tasks.later(self.book_keep / 4, self.release_idle)
        pending = []
        now = time.monotonic()
        for venue in self.children.routes(parent):
            key = (venue, parent.symbol)
            task = self._watched.get(key)
            if task is not None and task.done() and (task.cancelled() or task.exception()
                                                     or not task.result()) \
                    and now - self._watch_failed.setdefault(key, now) >= WATCH_RETRY:
                task = None  # (a book that could not be had is asked for again, now and then)
            if task is None:
                self._watch_failed.pop(key, None)
                task = self._watched[key] = asyncio.get_running_loop().create_task(
                    self.children.market.watch(venue, parent.symbol),
                    name=f"sor-watch-{venue}-{parent.symbol}")
                task.add_done_callback(_failed_watch)
            if not task.done():
                pending.append(task)
        return pending

    def release_idle(self) -> None:
        """Stop watching the books of the symbols no routed order of which has been open for
        :attr:`book_keep` seconds (a look every quarter of it while any is watched)."""
        self._sweep = None
        now = self.clock()
        released = []
        book = self.children.book
        for symbol, users in list(self._users.items()):
            for order_id, parent in list(users.items()):
                if not (parent.is_open and book.holds(parent)):  # (or let go to another node)
                    del users[order_id]
            if users:
                self._idle_since.pop(symbol, None)
                continue
            since = self._idle_since.setdefault(symbol, now)
            if now - since >= self.book_keep and self._unwatch(symbol):
                del self._users[symbol], self._idle_since[symbol]
                released.append(symbol)
        if released:
            log.info("SOR: the books of %s no longer watched (no routed order of them for "
                     "%g s)", ", ".join(released), self.book_keep)
        if self._users:
            self._sweep = self.children.tasks.later(self.book_keep / 4, self.release_idle)

    def _unwatch(self, symbol: str) -> bool:
        """Release the watches of ``symbol``'s books (False, nothing released, while one is
        still being set up: the next look)."""
        keys = [key for key in self._watched if key[1] == symbol]
        if any(not self._watched[key].done() for key in keys):
            return False
        for key in keys:
            task = self._watched.pop(key)
            self._watch_failed.pop(key, None)
            if not task.cancelled() and task.exception() is None and task.result():
                self.children.market.unwatch(*key)  # (a failed one held nothing)
        return True

    def quotes(self, parent: Order, venues: list[str]) -> list[VenueQuote]:
        """What is known now of each of ``venues`` for ``parent``."""
        market = self.children.market
        takes_from = Side.SELL if parent.side is Side.BUY else Side.BUY
        out = []
        for venue in venues:
            inst = self.children.instrument(parent, venue)
            if inst is None:
                continue
            available = None
            if inst.kind is InstrumentKind.SPOT:
                available = market.available(
                    venue, inst.quote if parent.side is Side.BUY else inst.base)
            out.append(VenueQuote(venue, inst, market.levels(venue, parent.symbol, takes_from),
                                  self.children.last_price(parent, venue),
                                  market.taker_fee(venue), available))
        return out

    def decide(self, parent: Order, left: Decimal, limit: Decimal | None, tif: TimeInForce
               ) -> tuple[Plan, list[VenueQuote]]:
        """The plan for ``left`` of ``parent`` now (children at ``limit``, None: market)."""
        t0 = time.perf_counter_ns()
        quotes = self.quotes(parent, self.venues(parent, tif))
        p = plan(parent.side, left, limit, quotes)
        self.decisions_ns.append(time.perf_counter_ns() - t0)
        del self.decisions_ns[:-1000]
        return p, quotes

    def _route(self, parent: Order) -> None:
        """Route what ``parent`` has neither filled nor working."""
        if not self._working(parent):
            return
        left = parent.quantity - parent.cum_qty - self.children.working(parent)
        if left <= 0:
            return
        if parent.strategy_step >= MAX_ROUNDS:
            log.warning("%s: routed %d times: %s is not routed again", parent.order_id,
                        MAX_ROUNDS, left)
            return
        limit = parent.price if parent.type is OrderType.LIMIT else None
        p, quotes = self.decide(parent, left, limit, self._child_tif(parent))
        self.children.recorder.record(parent, "routed", decision(
            parent, left, limit, p, quotes, self._left_out(parent), parent.strategy_step + 1))
        log.info("%s: SOR routing %d: %s", parent.order_id, parent.strategy_step, p.summary())
        for share in p.shares:
            try:
                self.children.open(parent, share.quantity, venue=share.venue, price=share.price,
                                   time_in_force=self._child_tif(parent))
            except ValueError as exc:
                log.warning("%s: %s at %s not sent: %s", parent.order_id, share.quantity,
                            share.venue, exc)

    def split(self, parent: Order, quantity: Decimal, price: Decimal | None,
              tif: TimeInForce) -> list[Share]:
        """How a strategy's child of ``quantity`` of routed ``parent`` (a TWAP's slice, an
        iceberg's next child) is sent: the shares, the decision stored. Books not watched yet
        are asked for (this child is routed on the last prices of their venues)."""
        self._watch(parent)
        if price is None and parent.type is OrderType.LIMIT:
            price = parent.price
        p, quotes = self.decide(parent, quantity, price, tif)
        self.children.recorder.record(parent, "routed", decision(
            parent, quantity, price, p, quotes, self._left_out(parent), None))
        log.info("%s: %s routed: %s", parent.order_id, quantity, p.summary())
        return list(p.shares)

    def _settle(self, parent: Order) -> None:
        """Once no child is open, a parent still open ends: it has nothing working and nothing
        more can be routed (an IOC or market order is done; the others found no venue)."""
        if not (self._working(parent) and parent.status is not OrdStatus.PENDING_NEW):
            return
        if any(c.is_open for c in self.children.of(parent)):
            return
        out = self._rejected.pop(parent.order_id, {})
        filled = f"{parent.cum_qty} of {parent.quantity} filled"
        if self._expired(parent):
            self.children.expire(parent, f"SOR: expired, {filled}")
            return
        if parent.type is OrderType.MARKET or parent.time_in_force is TimeInForce.IOC:
            text = f"SOR: {filled}; no more liquidity within the order's terms"
        else:
            why = "; ".join(f"{v}: {t}" for v, t in out.items()) if out else \
                "no venue can take it"
            text = f"SOR: {filled}; the rest cannot be routed ({why})"
        self.children.cancel_done(parent, text)

    def _expired(self, parent: Order) -> bool:
        return parent.time_in_force is TimeInForce.GTD and parent.expire_time_ns is not None \
            and parent.expire_time_ns <= time.time_ns()

    def _working(self, parent: Order) -> bool:
        return parent.is_open and self.children.book.holds(parent) and parent.pending is None


def _failed_watch(task: asyncio.Task[bool]) -> None:
    """Log a watch of a book that failed otherwise than by saying it has none (False)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("SOR: %s failed: %s: %s", task.get_name(), type(exc).__name__, exc)


def decision(parent: Order, left: Decimal, limit: Decimal | None, p: Plan,
             quotes: list[VenueQuote], left_out: dict[str, str],
             round_: int | None) -> dict[str, Any]:
    """What is stored of one routing (JSON: decimals as strings); ``round_``: the router's
    own routing of the order (its ``strategy_step``), None for a strategy's child."""
    def s(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    return {
        **({"round": round_} if round_ is not None else {}),
        "quantity": str(left),
        "limit": s(limit),
        "venues": {q.venue: {
            "levels": [[str(px), str(sz)] for px, sz in (q.levels or ())[:DECISION_LEVELS]],
            "book_known": q.levels is not None, "last_price": s(q.last_price),
            "taker_fee": str(q.taker_fee), "available": s(q.available)} for q in quotes},
        "left_out": left_out,
        "shares": [{"venue": sh.venue, "quantity": str(sh.quantity), "price": s(sh.price),
                    "expected_px": s(sh.expected_px), "why": sh.why} for sh in p.shares],
        "unrouted": str(p.unrouted),
        "home": p.home,
    }
