"""Parent and child orders: a client order worked by a strategy as several venue orders fits the
order path as it is. A test-only strategy (TargetStrategy 847=3) splits a client order into
two venue orders of half its quantity; the client sees one order (its OrderID, its fills, its
cancel), the venue two, the store both with every venue fill once, and replaying the stored
events rebuilds every order, parent and children."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run

from gateway.orders import fixmap
from gateway.orders.children import Children
from gateway.orders.model import Order, OrderEvent
from gateway.store.store import SessionStore

from .support import (
    BTC,
    D,
    OrderClient,
    Run,
    assert_replay_matches,
    consistent,
    restart,
    running,
    session,
    venue_survives,
)

SPLIT = "3"
"""TargetStrategy (847) 3, minimize market impact: the dictionary lists 1 to 3 only."""


class SplitInTwo:
    """Works a client order as two venue orders of half its quantity each (test only)."""

    def __init__(self, children: Children) -> None:
        self.children = children

    def start(self, o: Order) -> None:
        half = o.quantity / 2
        self.children.open(o, half)
        self.children.open(o, o.quantity - half)
        with pytest.raises(ValueError, match="past its quantity"):
            self.children.open(o, Decimal("0.00001"))  # never more than the parent
        self.children.acknowledge(o)

    def cancel(self, o: Order) -> None:
        self.children.cancel_all(o, "parent canceled")

    def replace(self, o: Order) -> None:
        self.children.refuse(o, "a split order cannot be replaced", fixmap.CXL_REJ_BROKER)

    def resume(self, o: Order) -> None:
        if o.pending is not None and o.pending.kind == "cancel":
            self.cancel(o)

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        self.children.settle(parent, child, ev, f"venue orders {ev.kind}")


STRATEGIES = {SPLIT: SplitInTwo}


def test_a_parent_fills_through_its_two_children(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=STRATEGIES) as r:
            c = await r.client("C1")
            ask = r.venue().exchange.book(BTC).best_ask()
            assert ask is not None
            await c.order("p1", ord_type="2", qty="0.2", price=ask + D(100),
                          extra=[(847, SPLIT)])
            new = await c.er(t11="p1", t39="0", t150="0", t14="0", t151="0.2")
            parent_id = new[37]
            trades = [await c.er(t11="p1", t150="F", t37=parent_id) for _ in range(2)]
            assert [D(t[32]) for t in trades] == [D("0.1"), D("0.1")]
            assert [t[30] for t in trades] == ["paper", "paper"]  # LastMkt: where it filled
            assert trades[-1][39] == "2" and D(trades[-1][14]) == D("0.2")
            for m in (new, *trades):
                consistent(m)
                assert 198 not in m.as_dict()  # no venue order is the parent
            await c.quiet()
            # the store: the parent and two children, each venue trade stored once (with
            # its child); the children say whose they are
            fills = await r.store.fills_for_order(parent_id)
            assert fills == []
            children = [o for o in (await _all_orders(r)) if o.parent_id == parent_id]
            assert len(children) == 2 and all(o.status.value == "2" for o in children)
            assert sum((o.cum_qty for o in children), Decimal(0)) == D("0.2")
            for child in children:
                assert len(await r.store.fills_for_order(child.order_id)) == 1
            assert r.orders.book.empty()
    run(body())


def test_cancelling_a_parent_cancels_its_children_at_the_venue(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=STRATEGIES) as r:
            c = await r.client("C1")
            await c.order("p1", price="90000", qty="0.2", tif="1", extra=[(847, SPLIT)])
            new = await c.er(t11="p1", t39="0")
            await _until_open_at_venue(r, 2)
            # a replace is refused by the strategy, the order stays as it was
            await c.replace("p2", "p1", qty="0.3", price="90000", extra=[(59, "1")])
            await c.er(t11="p2", t39="E")
            await c.expect("9", t11="p2", t41="p1", t434="2", t102="2")
            await c.cancel("p3", "p1", qty="0.2")
            await c.er(t11="p3", t41="p1", t39="6", t150="6")
            gone = await c.er(t11="p3", t41="p1", t39="4", t150="4", t37=new[37])
            assert "canceled" in gone[58]
            assert await r.open_at_venue() == []
            await c.quiet()
    run(body())


def test_a_mass_cancel_reaches_the_children(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=STRATEGIES) as r:
            c = await r.client("C1")
            await c.order("p1", price="90000", qty="0.2", tif="1", extra=[(847, SPLIT)])
            await c.er(t11="p1", t39="0")
            await _until_open_at_venue(r, 2)
            await c.send("q", [(11, "mc"), (530, "7"), (60, "20260101-00:00:00")])
            await c.expect("r", t11="mc", t531="7", t533="1")
            gone = await c.er(t11="p1", t39="4", t150="4")
            assert gone[58].startswith("mass cancel")
            assert await r.open_at_venue() == []
    run(body())


def test_a_parent_outlives_a_restart_and_is_canceled_after_it(tmp_path: Path) -> None:
    """The gateway stops with a parent resting as two venue orders; the next one loads both
    children, reconciles them, and the parent is still the client's order: its cancel goes
    to both children. A gateway without the strategy cancels the children itself."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store, strategies=STRATEGIES) as r:
                c = await r.client("C1")
                await c.order("p1", price="90000", qty="0.2", tif="1", extra=[(847, SPLIT)])
                new = await c.er(t11="p1", t39="0")
                await _until_open_at_venue(r, 2)
                await c.logout()
                venue_survives(r)
                first = r
            gw = restart(first, store, sessions, strategies=STRATEGIES)
            host, port = await gw.start()
            try:
                assert gw.orders is not None
                assert len(gw.orders.book.children(gw.orders.orders[new[37]])) == 2
                c = await OrderClient.connect(host, port, sender="C1", begin="FIX.4.4",
                                              next_seq=first.clients[0].next_seq)
                assert isinstance(c, OrderClient)
                await c.logon(reset=False)
                await c.cancel("p2", "p1", qty="0.2")
                await c.er(t11="p2", t39="6")
                await c.er(t11="p2", t41="p1", t39="4", t37=new[37])
                await asyncio.wait_for(gw.orders.idle(), 5)
                assert await first.venue().open_orders() == []
                await c.close()
            finally:
                await gw.stop()
            await assert_replay_matches(store)
        finally:
            await store.close()
    run(body())


def test_a_parent_whose_strategy_is_gone_is_canceled_with_its_children(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store, strategies=STRATEGIES) as r:
                c = await r.client("C1")
                await c.order("p1", price="90000", qty="0.2", tif="1", extra=[(847, SPLIT)])
                await c.er(t11="p1", t39="0")
                await _until_open_at_venue(r, 2)
                await c.logout()
                venue_survives(r)
                first = r
            gw = restart(first, store, sessions)  # no strategies
            await gw.start()
            try:
                assert gw.orders is not None
                await asyncio.wait_for(gw.orders.idle(), 5)
                assert await first.venue().open_orders() == []
                assert gw.orders.book.empty()
            finally:
                await gw.stop()
            parent = [o for o in (await assert_replay_matches(store)).values()
                      if o.strategy == SPLIT]
            assert len(parent) == 1 and parent[0].status.value == "4"
            assert parent[0].text is not None and "not configured" in parent[0].text
        finally:
            await store.close()
    run(body())


def test_a_strategy_not_offered_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=STRATEGIES) as r:
            c = await r.client("C1")
            await c.order("p1", price="90000", extra=[(847, "2")])
            refused = await c.er(t11="p1", t39="8", t150="8", t103="11")
            assert "TargetStrategy (847) 2 is not offered" in refused[58]
            assert await r.open_at_venue() == []
    run(body())


async def _all_orders(r: Run) -> list[Order]:
    return list((await assert_replay_matches(r.store)).values())


async def _until_open_at_venue(r: Run, n: int) -> None:
    """The children are placed once the parent is acknowledged: wait for the order path's
    work to finish, then ``n`` orders rest at the paper venue."""
    await asyncio.wait_for(r.orders.idle(), 5)
    assert len(await r.open_at_venue()) == n


class TopUpOnFill:
    """Splits in two; on a child's fill it first tries to top the parent up with one more
    child, which Children.open refuses (ValueError: past the parent's quantity)."""

    opened: list[str] = []

    def __init__(self, children: Children) -> None:
        self.children = children

    def start(self, o: Order) -> None:
        half = o.quantity / 2
        TopUpOnFill.opened.append(self.children.open(o, half).order_id)
        TopUpOnFill.opened.append(self.children.open(o, o.quantity - half).order_id)
        self.children.acknowledge(o)

    def cancel(self, o: Order) -> None:
        self.children.cancel_all(o, "parent canceled")

    def replace(self, o: Order) -> None:
        self.children.refuse(o, "no", fixmap.CXL_REJ_BROKER)

    def resume(self, o: Order) -> None:
        pass

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        if ev.kind == "fill":
            self.children.open(parent, Decimal("0.1"))
        self.children.settle(parent, child, ev, "done")


def test_a_childs_fill_is_stored_even_when_its_strategy_fails(tmp_path: Path) -> None:
    """A child's event rows wait for the parent's next event; when the strategy raises
    instead of recording one, they are stored alone, never lost."""

    async def body() -> None:
        TopUpOnFill.opened.clear()
        async with running(tmp_path, [session("C1")], strategies={SPLIT: TopUpOnFill},
                           replay_check=False) as r:
            c = await r.client("C1")
            ask = r.venue().exchange.book(BTC).best_ask()
            assert ask is not None
            await c.order("p1", ord_type="2", qty="0.2", price=ask + D(100),
                          extra=[(847, SPLIT)])
            await c.er(t11="p1", t39="0")
            assert len(TopUpOnFill.opened) == 2
            # the venue fills both children at once; wait (bounded) for their rows
            stored: dict[str, int] = {}
            for _ in range(200):
                await asyncio.wait_for(r.orders.idle(), 5)
                stored = {cid: len(await r.store.fills_for_order(cid))
                          for cid in TopUpOnFill.opened}
                if all(stored.values()):
                    break
                await asyncio.sleep(0.025)
            assert stored == dict.fromkeys(TopUpOnFill.opened, 1)

    run(body())
