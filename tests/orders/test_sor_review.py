"""Smart order routing and parent replaces where they went wrong once (found by a review):
a cancel-on-disconnect during a parent's replace, the risk checks of a routed order's
replace, a standby taking over a routed order, a routed IOC with nothing to route, a replace
pending across a restart, the balance a limit child locks, an ExpireTime that leaves no
window, and an ExpireTime echoed at the reports' precision."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.harness import run

from gateway.app import build_gateway
from gateway.store.store import SessionStore

from .support import (
    BTC,
    D,
    Run,
    config,
    restart,
    running,
    session,
    sid,
    until,
    venue,
    venue_survives,
)

A = venue("a", taker_fee="0.0002", market=[{"symbol": BTC, "mid": "97000", "volatility": "0",
                                            "level_size": "5"}])
B = venue("b", taker_fee="0.0001", market=[{"symbol": BTC, "mid": "97000", "volatility": "0",
                                            "level_size": "0.2"}])
ROUTED = session("C1", default_venue="a", venues=["a", "b"], routing="sor")


def test_a_routed_ioc_the_router_cannot_place_ends_also_when_the_books_are_watched(
        tmp_path: Path) -> None:
    """No venue's free balance pays for any of it: the plan has no share. The first such order
    of the symbol (books still being fetched: SmartRouter.start's asynchronous path) ends
    Canceled; the second (books already watched: the synchronous path, which never calls
    _settle) stays open forever with no child -- an IOC that never ends."""
    async def body() -> None:
        poor = {"USDT": "1", "BTC": "0"}
        async with running(tmp_path, [ROUTED], [{**A, "balances": poor},
                                                  {**B, "balances": poor}]) as r:
            c = await r.client("C1")
            await until(lambda: r.orders.children.market.available("a", "USDT") is not None
                        and r.orders.children.market.available("b", "USDT") is not None)
            await c.order("s1", qty="0.1", price="97000.05", tif="3")
            await c.er(t11="s1", t39="0")
            first = await c.er(t11="s1", t39="4")  # ends: nothing could be routed
            assert D(first[14]) == 0
            await c.order("s2", qty="0.1", price="97000.05", tif="3")
            new = await c.er(t11="s2", t39="0")
            try:
                await c.er(t11="s2", t39="4", timeout=3)
            except TimeoutError:
                parent = r.orders.book.orders[new[37]]
                raise AssertionError(
                    f"the IOC never ends: {parent.status.name}, children "
                    f"{r.orders.book.children(parent)}") from None
            finally:
                parent = r.orders.book.orders.get(new[37])
                if parent is not None:  # (so that the harness's teardown ends)
                    await r.orders.kill_switch("*", True, "test teardown")
                    await until(lambda: new[37] not in r.orders.book.orders)
    run(body())


def test_a_replace_of_a_routed_order_is_risk_checked(tmp_path: Path) -> None:
    """max_order_qty 1: a routed order of 0.5 is accepted, its replace to 5 must be refused
    as a new order of 5 is (replace.py returns before risk.check_replace for a parent with
    no venue of its own)."""
    async def body() -> None:
        limited = {**ROUTED, "risk": {"max_order_qty": "1"}}
        async with running(tmp_path, [limited], [A, B]) as r:
            c = await r.client("C1")
            await c.order("n1", qty="5", price="90000", tif="1")
            assert "max_order_qty" in (await c.er(t11="n1", t39="8"))[58]
            await c.order("s1", qty="0.5", price="90000", tif="1")
            new = await c.er(t11="s1", t39="0")
            parent = r.orders.book.orders[new[37]]
            await until(lambda: r.orders.book.children(parent) and all(
                k.venue_order_id for k in r.orders.book.children(parent)))
            await c.replace("s2", "s1", qty="5", price="90000", extra=[(59, "1")])
            m = await c.recv()
            while m.msg_type == "0":
                m = await c.recv()
            if m.msg_type != "9":
                done = await c.er(t11="s2", t150="5")
                raise AssertionError(f"the replace to 5 was not refused: {m}\nthen: {done}")
            assert "max_order_qty" in m[58]
    run(body())


def test_cancel_on_disconnect_during_a_parent_replace_is_kept(tmp_path: Path) -> None:
    """An iceberg's replace waits for its child's cancel; meanwhile the client drops and
    cancel-on-disconnect fires (the parent's replace is pending, so the cancel is kept in
    cancel_next, to be done once the replace is resolved). Children._replaced records the
    Replaced report but never calls the 'resolved' hook: the promised cancel is lost, the
    iceberg opens a new child and works on without its client (Invariant 5)."""
    async def body() -> None:
        cod = session("C1", cancel_on_disconnect="disconnect")
        async with running(tmp_path, [cod]) as r:
            c = await r.client("C1")
            await c.order("i1", qty="0.01", price="90000", tif="1", extra=[(111, "0.002")])
            new = await c.er(t11="i1", t39="0")
            parent = r.orders.book.orders[new[37]]
            await until(lambda: len(r.orders.book.children(parent)) == 1 and all(
                k.venue_order_id for k in r.orders.book.children(parent)))
            conn = r.venue()
            gate = asyncio.Event()
            real_cancel = conn.cancel

            async def slow_cancel(symbol: str, client_order_id: str) -> None:
                await gate.wait()
                await real_cancel(symbol, client_order_id)

            conn.cancel = slow_cancel  # type: ignore[method-assign]
            await c.replace("i2", "i1", qty="0.01", price="90001", extra=[(59, "1")])
            await c.er(t11="i2", t39="E")
            await until(lambda: r.orders.children.replacing(parent))
            await c.close()
            await r.logged_out(sid("C1"))
            await until(lambda: parent.cancel_next is not None)  # the promise, kept for later
            gate.set()
            conn.cancel = real_cancel  # type: ignore[method-assign]
            # the promised cancel: the parent ends, nothing stays open at the venue
            try:
                await until(lambda: new[37] not in r.orders.book.orders, within=5)
            except AssertionError:
                raise AssertionError(
                    f"cancel-on-disconnect lost: parent {parent.status.name} "
                    f"{parent.cl_ord_id} price {parent.price}, open at the venue: "
                    f"{await r.open_at_venue()}") from None
            assert not await r.open_at_venue()
    run(body())


def test_an_iceberg_replace_pending_at_a_restart_is_carried_out(tmp_path: Path) -> None:
    """The gateway stops while an iceberg's replace waits for its child's cancel; the venue
    did cancel the child, the gateway did not hear of it. The next gateway reconciles the
    child (canceled) before it resumes the parents: Iceberg.child_event takes the child's
    cancel for the end of the iceberg and cancels the parent -- the client's replace becomes
    a Canceled instead of Replaced, and the iceberg stops."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store) as r:
                c = await r.client("C1")
                await c.order("i1", qty="0.01", price="90000", tif="1", extra=[(111, "0.002")])
                new = await c.er(t11="i1", t39="0")
                parent = r.orders.book.orders[new[37]]
                await until(lambda: len(r.orders.book.children(parent)) == 1 and all(
                    k.venue_order_id for k in r.orders.book.children(parent)))
                (child,) = r.orders.book.children(parent)
                conn = r.venue()
                real_cancel = conn.cancel

                async def lost(symbol: str, client_order_id: str) -> None:
                    return None  # (the venue's answer never reached the gateway)

                conn.cancel = lost  # type: ignore[method-assign]
                await c.replace("i2", "i1", qty="0.01", price="90001", extra=[(59, "1")])
                await c.er(t11="i2", t39="E")
                await until(lambda: child.pending is not None)
                await c.close()
                venue_survives(r)
                first = r
            conn.cancel = real_cancel  # type: ignore[method-assign]
            await real_cancel(BTC, child.venue_client_order_id)  # done at the venue
            gw = restart(first, store, sessions)
            host, port = await gw.start()
            try:
                r2 = Run(gw, store, host, port)
                c2 = await r2.client("C1")
                # the replace is carried out: Replaced (the new price), the iceberg goes on
                m = await c2.er(t11="i2", timeout=5)
                assert m[150] == "5", f"the pending replace was lost: {m}"
                await c2.close()
            finally:
                assert gw.orders is not None
                await gw.orders.kill_switch("*", True, "test teardown")
                await asyncio.wait_for(gw.orders.idle(), 10)
                await gw.stop()
        finally:
            await store.close()
    run(body())


def test_a_standby_node_adopts_a_session_with_a_routed_order(tmp_path: Path) -> None:
    """OrderManager.adopt reconciles 'the venue' of every loaded order: a routed parent's
    venue is 'SOR', no connector: KeyError, and the take-over of the session fails (nothing
    reconciled, no parent resumed, cancel-on-disconnect not re-armed)."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with running(tmp_path, [ROUTED], [A, B], store=store) as r:
                c = await r.client("C1")
                await c.order("s1", qty="0.3", side="2", price="97100", tif="1")
                new = await c.er(t11="s1", t39="0")
                parent = r.orders.book.orders[new[37]]
                await until(lambda: r.orders.book.children(parent) and all(
                    k.venue_order_id for k in r.orders.book.children(parent)))
                venues: dict[str, Any] = {n: r.venue(n) for n in ("a", "b")}
                for v in venues.values():
                    async def stay_open() -> None:
                        return None
                    v.close = stay_open
                await c.close()
            gw = build_gateway(config([ROUTED], [A, B]), store)
            orders = gw.orders
            assert orders is not None
            orders.connectors.update(venues)
            await orders.start(sessions=set())  # a standby: serves nothing yet
            try:
                await orders.adopt({sid("C1")})
                assert new[37] in orders.book.orders
            finally:
                await orders.kill_switch("*", True, "test teardown")
                await asyncio.wait_for(orders.idle(), 10)
                await orders.close()
        finally:
            await store.close()
    run(body())


def test_a_routed_limit_buy_is_not_sent_beyond_the_balance_its_limit_locks(
        tmp_path: Path) -> None:
    """b is the cheapest after fees and holds 100000 USDT. A marketable buy of 1.2 at up to
    97100: the plan caps b's share by the balance at b's *level* prices (about 1.0308), but
    the child is a limit order at 97100, which the venue locks at its limit: 1.0308 x 97100 >
    100000. b rejects it (insufficient balance) and is left out for the rest of the order."""
    async def body() -> None:
        poor_b = {**B, "balances": {"USDT": "100000", "BTC": "1"}}
        async with running(tmp_path, [ROUTED], [A, poor_b]) as r:
            c = await r.client("C1")
            await until(lambda: r.orders.children.market.available("b", "USDT") is not None)
            await c.order("s1", qty="1.2", price="97100", tif="1")
            new = await c.er(t11="s1", t39="0")
            while (await c.er(t11="s1", t150="F", t37=new[37]))[39] != "2":
                pass
            kids = [o for o in (await _stored(r.store)).values() if o.parent_id == new[37]]
            rejected = [(k.venue, k.quantity, k.price, k.text) for k in kids
                        if k.status.value == "8"]
            assert not rejected, rejected
    run(body())


async def _stored(store: SessionStore) -> dict[str, Any]:
    from .support import assert_replay_matches
    return await assert_replay_matches(store)


def test_a_twap_replace_that_leaves_no_window_is_refused_not_carried_out(
        tmp_path: Path) -> None:
    """A TWAP that starts in 30 s (EffectiveTime) and ends in 60 s; a replace moves its end
    to 10 s from now, before its start. replace.py only checks that the new ExpireTime is in
    the future: the parent is Replaced, then Twap.resume finds the plan bad and cancels it.
    The replace should be refused (OrderCancelReject) and the TWAP left as it was."""
    import functools
    import time

    from gateway.fix.custom import TWAP
    from gateway.orders.twap import Twap

    from .test_twap import _fixtime, _ms, _twap

    async def body() -> None:
        fast = {TWAP: functools.partial(Twap, slice_seconds=0.5)}
        async with running(tmp_path, [session("C1")], strategies=fast) as r:
            c = await r.client("C1")
            await _twap(c, "t1", qty="0.004", price="90000", seconds=30, start_in=30)
            new = await c.er(t11="t1", t39="0")
            earlier = _ms(time.time_ns() + 10 * 1_000_000_000)
            await c.replace("t2", "t1", qty="0.004", price="90000",
                            extra=[(59, "6"), (126, _fixtime(earlier))])
            m = await c.recv()
            while m.msg_type == "0":
                m = await c.recv()
            if m.msg_type == "8" and m[39] == "E":
                m2 = await c.recv()
                m3 = await c.recv()
                raise AssertionError(f"accepted:\n{m}\n{m2}\n{m3}")
            assert m.msg_type == "9", m
            assert new[37] in r.orders.book.orders
    run(body())


def test_a_replace_echoing_the_reported_expire_time_is_not_refused(tmp_path: Path) -> None:
    """A GTD order with ExpireTime in microseconds; the gateway reports it back in the
    session's precision (milliseconds). A replace that copies the ExpireTime as reported
    (the order's 126 unchanged, as the gateway itself told it) is refused: 'ExpireTime (126)
    of an order at a venue cannot be replaced'."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            await c.order("g1", qty="0.001", price="90000", tif="6",
                          extra=[(126, "20300101-00:00:00.123456")])
            new = await c.er(t11="g1", t39="0")
            reported = new[126]
            await c.replace("g2", "g1", qty="0.002", price="90000",
                            extra=[(59, "6"), (126, reported)])
            m = await c.recv()
            while m.msg_type == "0":
                m = await c.recv()
            assert m.msg_type == "8" and m[39] == "E", f"126={reported} as reported: {m}"
    run(body())
