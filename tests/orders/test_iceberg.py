"""Iceberg (MaxFloor 111 on a limit order) on the paper venue: one child at a time of at most
MaxFloor, the next once it fills; a child ending unfilled ends the parent; cancel, refused
replace, validation, and a restart that adopts the live child.

A child rests as the best bid (one tick over the market maker's); an outside seller fills it
(``trade_against`` at the child's price). Waits are reads of the next message or bounded polls."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from server.harness import run

from connectors.base import OrderState, Side
from connectors.paper.market import BTC_USDT
from gateway.fix.custom import ICEBERG, TWAP
from gateway.orders.iceberg import child_quantity
from gateway.orders.model import Order
from gateway.store.store import SessionStore

from .support import (
    BTC,
    D,
    Run,
    assert_replay_matches,
    consistent,
    restart,
    running,
    session,
    until,
    venue_survives,
)

FLOOR = [(111, "0.002")]




def _best_bid(r: Run) -> Decimal:
    book = r.venue().exchange.book(BTC)
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None and bid + D("0.01") < ask
    return bid + D("0.01")


async def _open(r: Run, n: int = 1, bound: float = 5.0) -> list[OrderState]:
    """The venue's open orders once there are ``n`` (bounded poll)."""
    deadline = time.monotonic() + bound
    while True:
        got = list(await r.venue().open_orders())
        if len(got) == n:
            return got
        assert time.monotonic() < deadline, [s.client_order_id for s in got]
        await asyncio.sleep(0.02)


async def _sell_to(r: Run, qty: str, price: Decimal) -> None:
    """An outside seller takes ``qty`` down to ``price`` (our child, the best bid)."""
    v = r.venue()
    await v._change(lambda now: v.exchange.trade_against(BTC, Side.SELL, D(qty), price, now),
                    "trade")


async def _children(store: SessionStore) -> list[Order]:
    every = await assert_replay_matches(store)
    return sorted((o for o in every.values() if o.parent_id is not None),
                  key=lambda o: o.created_ns)


def test_child_quantities() -> None:
    price = D("97000")
    assert child_quantity(D("0.005"), D("0.002"), BTC_USDT, price) == D("0.002")
    assert child_quantity(D("0.001"), D("0.002"), BTC_USDT, price) == D("0.001")
    # on the lot grid (0.00001), rounded down
    assert child_quantity(D("0.005"), D("0.0020009"), BTC_USDT, price) == D("0.002")
    # never under the minimum (5 USDT at 97000: 0.00006), the rest under it goes with the last
    assert child_quantity(D("0.005"), D("0.00001"), BTC_USDT, price) == D("0.00006")
    assert child_quantity(D("0.00205"), D("0.002"), BTC_USDT, price) == D("0.00205")
    assert child_quantity(D("0.00210"), D("0.002"), BTC_USDT, price) == D("0.002")


def test_an_iceberg_shows_its_floor_and_fills_in_three_children(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            price = _best_bid(r)
            await c.order("i1", qty="0.005", price=price, tif="1", extra=FLOOR)
            new = await c.er(t11="i1", t39="0", t150="0", t14="0", t151="0.005")
            shown, fills = [], []
            for qty, status in (("0.002", "1"), ("0.002", "1"), ("0.001", "2")):
                live = await _open(r, 1)
                assert live[0].quantity == D(qty) and live[0].price == price
                shown.append(live[0].quantity)
                await _sell_to(r, qty, price)
                f = await c.er(t11="i1", t150="F", t37=new[37], t39=status)
                assert D(f[32]) == D(qty) and f[30] == "paper" and D(f[31]) == price
                fills.append(f)
            assert D(fills[-1][14]) == D("0.005") and D(fills[-1][151]) == 0
            assert [D(f[14]) for f in fills] == [D("0.002"), D("0.004"), D("0.005")]
            for m in (new, *fills):
                consistent(m)
            await c.quiet()
            assert await r.open_at_venue() == []
            children = await _children(r.store)
            assert [ch.quantity for ch in children] == [D("0.002"), D("0.002"), D("0.001")]
            assert all(ch.status.value == "2" and ch.price == price for ch in children)
            parent = (await assert_replay_matches(r.store))[new[37]]
            assert parent.strategy == ICEBERG and parent.max_floor == D("0.002")
            assert r.orders.book.empty()
    run(body())


def test_cancelling_an_iceberg_midway_cancels_its_child_then_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            price = _best_bid(r)
            await c.order("i1", qty="0.005", price=price, tif="1", extra=FLOOR)
            new = await c.er(t11="i1", t39="0")
            await _open(r, 1)
            await _sell_to(r, "0.002", price)
            await c.er(t11="i1", t150="F", t39="1")
            await _open(r, 1)
            # a replace (more): the live child is cancelled, the parent Replaced, and the
            # iceberg goes on with a new child
            await c.replace("i2", "i1", qty="0.006", price=price, extra=[(59, "1")])
            await c.er(t11="i2", t39="E")
            await c.er(t11="i2", t41="i1", t150="5", t39="1", t38="0.006", t151="0.004")
            await until(lambda: len(r.orders.book.children(r.orders.book.orders[new[37]])) == 1)
            await c.cancel("i3", "i2", qty="0.006")
            await c.er(t11="i3", t41="i2", t39="6", t150="6")
            gone = await c.er(t11="i3", t41="i2", t39="4", t150="4", t37=new[37], t14="0.002")
            assert "iceberg canceled" in gone[58]
            consistent(gone)
            await c.quiet()
            assert await r.open_at_venue() == []
            children = await _children(r.store)
            assert [ch.status.value for ch in children] == ["2", "4", "4"]
    run(body())


def test_a_child_canceled_by_the_venue_ends_the_iceberg(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            price = _best_bid(r)
            await c.order("i1", qty="0.005", price=price, tif="1", extra=FLOOR)
            new = await c.er(t11="i1", t39="0")
            (live,) = await _open(r, 1)
            v = r.venue()
            await v._change(lambda now: v.exchange.cancel(BTC, live.client_order_id, now),
                            "cancel")
            gone = await c.er(t11="i1", t39="4", t150="4", t37=new[37], t14="0")
            assert "iceberg ended" in gone[58] and "canceled" in gone[58]
            consistent(gone)
            await c.quiet()  # not sent again
            assert await r.open_at_venue() == []
            assert len(await _children(r.store)) == 1
    run(body())


def test_what_does_not_fit_an_iceberg_is_rejected_and_a_big_floor_is_a_plain_order(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            price = _best_bid(r)
            await c.order("m1", qty="0.005", ord_type="1", extra=FLOOR)
            m = await c.er(t11="m1", t39="8")
            assert "MaxFloor (111) is for a limit order" in m[58]
            await c.order("z1", qty="0.005", price=price, extra=[(111, "0")])
            assert "MaxFloor (111) must be positive" in (await c.er(t11="z1", t39="8"))[58]
            await c.order("s1", qty="0.005", price=price, extra=[*FLOOR, (847, TWAP)])
            assert "TargetStrategy" in (await c.er(t11="s1", t39="8"))[58]
            # a client cannot name the internal strategy: 847 is an int (and refused if not)
            await c.order("n1", qty="0.005", price=price, extra=[(847, ICEBERG)])
            await c.expect("3", t371="847")
            await c.order("f1", qty="0.005", price=price, tif="3", extra=FLOOR)
            assert "an iceberg cannot be TimeInForce" in (await c.er(t11="f1", t39="8"))[58]
            # MaxFloor not under OrderQty: the whole order rests at the venue, no iceberg
            await c.order("p1", qty="0.005", price=price, tif="1", extra=[(111, "0.005")])
            plain = await c.er(t11="p1", t39="0")
            (live,) = await _open(r, 1)
            assert live.quantity == D("0.005")
            o = r.orders.orders[plain[37]]
            assert o.strategy is None and o.max_floor is None and o.parent_id is None
    run(body())


def test_an_iceberg_resumes_after_a_restart_with_its_live_child(tmp_path: Path) -> None:
    """The gateway stops with the first child resting (the venue stays up); the next gateway
    adopts it and sends no second child at once; once it fills, the next child goes out."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store) as r:
                c = await r.client("C1")
                price = _best_bid(r)
                await c.order("i1", qty="0.005", price=price, tif="1", extra=FLOOR)
                new = await c.er(t11="i1", t39="0")
                (first_child,) = await _open(r, 1)
                await c.logout()
                venue_survives(r)
                first = r
            gw = restart(first, store, sessions)
            await gw.start()
            try:
                orders = gw.orders
                assert orders is not None
                parent = orders.orders[new[37]]
                kids = orders.book.children(parent)
                assert [k.venue_client_order_id for k in kids] == [first_child.client_order_id]
                assert [s.client_order_id for s in await first.venue().open_orders()] == [
                    first_child.client_order_id]
                await _sell_to(first, "0.002", price)
                await until(lambda: parent.cum_qty == D("0.002"))
                (second,) = await _open(first, 1)
                assert second.client_order_id != first_child.client_order_id
                assert second.quantity == D("0.002")
                await asyncio.wait_for(orders.idle(), 5)
            finally:
                await gw.stop()
            children = await _children(store)
            assert [ch.quantity for ch in children] == [D("0.002"), D("0.002")]
        finally:
            await store.close()
    run(body())


def test_a_refused_child_cancel_is_asked_again_until_the_iceberg_is_canceled(
        tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            price = _best_bid(r)
            await c.order("i1", qty="0.005", price=price, tif="1", extra=FLOOR)
            await c.er(t11="i1", t39="0")
            await _open(r, 1)
            r.venue().update_faults(reject_next=1)  # the venue refuses the child's cancel once
            await c.cancel("i2", "i1", qty="0.005")
            await c.er(t11="i2", t41="i1", t39="6", t150="6")
            # asked again (every 2 s): the client's cancel is answered
            await c.er(t11="i2", t41="i1", t39="4", t150="4", timeout=6)
            assert await r.open_at_venue() == []
    run(body())
