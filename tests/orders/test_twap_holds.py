"""What a review of the TWAP found, each a test that failed before its fix: a Slices value of
non-ASCII digits (an order stuck, then a gateway that could not start), a child cancel the
venue refused (the TWAP never ending, the client's cancel never answered), a slice sent by a
gateway that had closed, the last slice over the venue's maximum quantity; and what it
checked and found right (a restart after the end time, old snapshots, the kill switch)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from server.harness import run

from connectors.base import OrderType, Side, TimeInForce
from gateway.orders.model import Order
from gateway.orders.scheduled import BadParameters
from gateway.orders.slicing import pieces
from gateway.orders.twap import plan
from gateway.store.store import SessionStore

from .support import D, restart, running, session, until, venue_survives
from .test_twap import _NS, FAST, _twap


def _parent(**kw: Any) -> Order:
    now = time.time_ns()
    base: dict[str, Any] = dict(
        order_id="1", session_id="s", venue="paper", symbol="BTC/USDT", created_ns=now,
        strategy="1000", cl_ord_id="c", account=None, stop_price=None, post_only=False,
        reduce_only=False, side=Side.BUY, type=OrderType.LIMIT, quantity=D("1"), price=D("1"),
        time_in_force=TimeInForce.GTC, expire_time_ns=now + 10 * _NS)
    base.update(kw)
    return Order(**base)


def test_a_slices_value_of_non_ascii_digits_is_refused() -> None:
    o = _parent(strategy_parameters={"Slices": "\u00b2"})
    with pytest.raises(BadParameters):
        plan(o)


def test_fix50sp2_slices_of_non_ascii_digits_is_rejected_with_a_reason(tmp_path: Path) -> None:
    async def body() -> None:
        begin = "FIXT.1.1"
        async with running(tmp_path, [session("C2", begin)], strategies=FAST) as r:
            c = await r.client("C2", begin)
            bad = [(957, "1"), (958, "Slices"), (959, "1"), (960, "\u00b2")]
            await _twap(c, "t1", qty="0.004", price="90000", seconds=2.5, extra=bad)
            await c.er(t11="t1", t39="8", t150="8", timeout=3)
    run(body())


def test_the_gateway_starts_again_after_a_refused_twap(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        begin = "FIXT.1.1"
        sessions = [session("C2", begin)]
        try:
            async with running(tmp_path, sessions, store=store, strategies=FAST,
                               replay_check=False) as r:
                c = await r.client("C2", begin)
                bad = [(957, "1"), (958, "Slices"), (959, "1"), (960, "\u00b2")]
                await _twap(c, "t1", qty="0.004", price="90000", seconds=30, extra=bad)
                await c.er(t11="t1", t39="8", t150="8", timeout=3)  # refused, with a reason
                await c.logout()
                venue_survives(r)
                first = r
            gw = restart(first, store, sessions, strategies=FAST)
            await gw.start()  # (a ValueError came out of OrderManager._resume here)
            await gw.stop()
        finally:
            await store.close()
    run(body())


def test_a_rejected_end_cancel_still_ends_the_twap(tmp_path: Path) -> None:
    """The venue refuses the end-time cancel of a resting child once: the TWAP must still end
    (retry the cancel), not stay open forever with a GTC child resting."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            await _twap(c, "t1", qty="0.001", price="90000", seconds=1.5)
            await c.er(t11="t1", t39="0")
            await until(lambda: len(r.orders.book.children(next(
                o for o in r.orders.book if o.parent_id is None))) == 3)
            await until(lambda: all(ch.status.value == "0" for ch in r.orders.book.children(
                next(o for o in r.orders.book if o.parent_id is None))))
            r.venue().update_faults(reject_next=1)
            await c.er(t11="t1", t39="C", t150="C", timeout=5)
    run(body())


def test_a_twap_restarted_after_its_expire_time_ends(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store, strategies=FAST) as r:
                c = await r.client("C1")
                _, end = await _twap(c, "t1", qty="0.004", price="90000", seconds=2.0)
                await c.er(t11="t1", t39="0")
                await until(lambda: len(list(r.orders.book)) >= 2)
                await c.logout()
                venue_survives(r)
                first = r
            await asyncio.sleep(max(0, (end - time.time_ns()) / _NS) + 0.3)
            gw = restart(first, store, sessions, strategies=FAST)
            await gw.start()
            try:
                orders = gw.orders
                await until(orders.book.empty, 5)
                assert await first.venue().open_orders() == []
            finally:
                await gw.stop()
        finally:
            await store.close()
    run(body())


def test_no_timer_is_armed_after_close(tmp_path: Path) -> None:
    """A TWAP accepted while the gateway stops: once close() returned, nothing may be sent."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST,
                           replay_check=False) as r:
            orders = r.orders
            c = await r.client("C1")
            placed: list[str] = []
            conn = r.venue()
            orig = conn.place

            async def spy(*a: Any, **k: Any) -> Any:
                placed.append("x")
                return await orig(*a, **k)
            conn.place = spy  # type: ignore[method-assign]
            # the store is slow: the parent's intent is persisted while the gateway stops
            # (the store's writes slowed, not the recorder: it is compiled, its methods fixed)
            store = orders.recorder.store
            real_append = store.append_now

            def slow_append(append: Any) -> Any:
                fut = real_append(append)

                async def later() -> None:
                    await fut
                    await asyncio.sleep(0.3)
                return asyncio.ensure_future(later())
            store.append_now = slow_append  # type: ignore[method-assign]
            await _twap(c, "t1", qty="0.002", price="90000", seconds=1.0)
            await until(lambda: any(True for _ in orders.book))
            await orders.close()
            n = len(placed)
            await asyncio.sleep(1.5)  # past every slice's time: nothing may go out
            assert len(placed) == n, "a slice was sent by a closed gateway"
    run(body())


def test_a_refused_child_cancel_is_asked_again(tmp_path: Path) -> None:
    """Client cancels the TWAP; the venue refuses one child's cancel once. The client must get
    either the Canceled or an OrderCancelReject for its cancel, not silence."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            await _twap(c, "t1", qty="0.002", price="90000", seconds=20)
            await c.er(t11="t1", t39="0")
            parent = next(o for o in r.orders.book if o.parent_id is None)
            await until(lambda: r.orders.book.children(parent) and all(
                ch.status.value == "0" for ch in r.orders.book.children(parent)))
            r.venue().update_faults(reject_next=1)
            await c.cancel("t2", "t1", qty="0.002")
            await c.er(t11="t2", t39="6")
            m = await c.recv(timeout=4)
            assert m.msg_type == "9" or (m.msg_type == "8" and m[39] == "4"), m
    run(body())


def test_the_last_slice_sends_all_that_is_left_within_the_venues_maximum() -> None:
    from connectors.base import Instrument
    inst = Instrument("X/USDT", "X-USDT", "X", "USDT", lot_size=D("1"), min_qty=D("1"),
                      max_qty=D("4"))
    assert pieces(D("10"), inst, None) == [D(4), D(4), D(2)]


def test_old_snapshot_loads() -> None:
    from gateway.orders.model import order_from_json, order_to_json
    d = order_to_json(_parent())
    for k in ("effective_time_ns", "strategy_parameters", "strategy_step"):
        d.pop(k)
    o = order_from_json(d)
    assert o.strategy_step == 0 and o.strategy_parameters == {} and o.effective_time_ns is None


def test_kill_switch_cancels_the_twap_and_its_children(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _twap(c, "t1", qty="0.004", price="90000", seconds=3)
            await c.er(t11="t1", t39="0")
            await until(lambda: len(list(r.orders.book)) >= 2)
            await r.orders.kill_switch("*", True, "test")
            await c.er(t11="t1", t39="4", timeout=5)
            await asyncio.sleep(max(0, (end - time.time_ns()) / _NS) + 0.3)
            assert await r.open_at_venue() == []
            assert r.orders.book.empty()
    run(body())


def test_a_twap_that_cannot_be_resumed_cancels_its_children_then_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a restart its parameters no longer fit (here the bound on Slices is lower): its
    resting child is cancelled, and once it is, the parent is Canceled saying why (not left
    open without a schedule)."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        begin = "FIXT.1.1"
        sessions = [session("C2", begin)]
        try:
            async with running(tmp_path, sessions, store=store, strategies=FAST) as r:
                c = await r.client("C2", begin)
                slices = [(957, "1"), (958, "Slices"), (959, "1"), (960, "4")]
                await _twap(c, "t1", qty="0.004", price="90000", seconds=20, extra=slices)
                new = await c.er(t11="t1", t39="0")
                await until(lambda: bool(r.orders.book.children(r.orders.orders[new[37]])))
                await until(lambda: all(ch.status.value == "0" for ch in
                                        r.orders.book.children(r.orders.orders[new[37]])))
                await c.logout()
                venue_survives(r)
                first = r
            import gateway.orders.twap as twap_module
            monkeypatch.setattr(twap_module, "MAX_SLICES", 3)
            gw = restart(first, store, sessions, strategies=FAST)
            await gw.start()
            try:
                orders = gw.orders
                assert orders is not None
                await until(lambda: new[37] not in orders.orders, 5)
                assert await first.venue().open_orders() == []
            finally:
                await gw.stop()
            snapshot = await store.load_order(new[37])
            assert snapshot is not None
            assert snapshot["status"] == "4" and "TWAP not resumed" in snapshot["text"]
        finally:
            await store.close()
    run(body())
