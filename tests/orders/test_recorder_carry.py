"""The recorder's carried rows and batches, compiled as in Python: a child's event whose
parent's strategy records an event on the parent while it is told returns the future of the
commit that took both (``Recorder.record``); a batch inside a batch ends without an error.

Compiled by mypyc, a read of an attribute the function set to None before a call that set it
again was checked against None (mypy narrows it): ``record`` raised ``TypeError: None object
expected; got _asyncio.Future`` for every child fill a parent's strategy answered (found by a
review; the reads now go through methods of the declared type)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.book import OrderBook
from gateway.orders.model import Order, OrderEvent
from gateway.orders.recorder import Recorder
from gateway.orders.tasks import Tasks


class _Store:
    """What the recorder asks of the store here: ids, and appends that commit at once."""

    def __init__(self) -> None:
        self.appends: list[Any] = []

    async def reserve(self, counter: str, n: int) -> int:
        return 1

    async def release(self, counter: str, first: int, end: int) -> bool:
        return True

    def append_now(self, append: Any) -> asyncio.Future[None]:
        self.appends.append(append)
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        f.set_result(None)
        return f

    async def append_built(self, append: Any) -> None:
        await self.append_now(append)


def _order(order_id: str, **kw: Any) -> Order:
    base: dict[str, Any] = dict(
        order_id=order_id, session_id="s", venue="paper", symbol="BTC/USDT",
        created_ns=time.time_ns(), strategy=None, cl_ord_id="c" + order_id, account=None,
        stop_price=None, post_only=False, reduce_only=False, side=Side.BUY,
        type=OrderType.LIMIT, quantity=Decimal("1"), price=Decimal("1"),
        time_in_force=TimeInForce.GTC, expire_time_ns=None)
    base.update(kw)
    return Order(**base)


def test_a_childs_event_the_parents_strategy_answers_returns_the_carried_future() -> None:
    async def body() -> None:
        store, book = _Store(), OrderBook()
        rec = Recorder(store, book, {}, Tasks(), clock=time.time, timestamp_precision=3,
                       closed=lambda o: None)
        await rec.start()
        parent = _order("P", strategy="TWAP")
        child = _order("C", parent_id="P")
        for o in (parent, child):
            book.add(o)
            await rec.created(o)
        parents_events: list[asyncio.Future[None] | None] = []

        def child_event(p: Order, c: Order, ev: OrderEvent) -> None:
            # what Children.fill / settle do: an event of the parent, recorded at once
            parents_events.append(rec.record(p, "step", {"step": 1}))

        rec.child_event = child_event
        took = rec.record(child, "accepted", {"venue_order_id": "v1"})
        assert parents_events and parents_events[0] is not None
        assert took is parents_events[0], "the child's event goes with its parent's commit"
        await took
        assert rec._carried is None and rec._carry == []
        # one commit: the child's event and the parent's, with both orders
        assert [(len(a.events), len(a.orders)) for a in store.appends[-1:]] == [(2, 2)]
    asyncio.run(body())


def test_a_batch_inside_a_batch_does_not_raise() -> None:
    """Latent (no nested ``batch()`` is reachable today: its one user, Cancellations.cancel,
    does not nest): the same narrowing in ``Recorder.batch`` (``self._batching = []``, then
    ``yield``, then ``batch, self._batching = self._batching, None`` read as a list) makes the
    compiled outer batch raise TypeError where the Python one goes on."""
    async def body() -> None:
        store, book = _Store(), OrderBook()
        rec = Recorder(store, book, {}, Tasks(), clock=time.time, timestamp_precision=3,
                       closed=lambda o: None)
        await rec.start()
        a, b = _order("A"), _order("B")
        for o in (a, b):
            book.add(o)
            await rec.created(o)
        with rec.batch():
            rec.record(a, "cancel_requested", {"cl_ord_id": "xa", "orig_cl_ord_id": "cA"})
            with rec.batch():
                rec.record(b, "cancel_requested", {"cl_ord_id": "xb", "orig_cl_ord_id": "cB"})
        assert rec._batching is None
    asyncio.run(body())
