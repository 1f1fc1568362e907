"""TWAP (TargetStrategy 847=1000) on the paper venue: a parent worked in slices over a window of
two to three seconds. The client sees the parent only; the store has every child; the slices are
sent on schedule, merged when too small, given back when a child ends unfilled, cancelled at the
end, and never sent twice across a restart.

The waits are reads of the next message, or bounded polls of a condition; the end time of a
TWAP is waited for with a bound."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from server.fixclient import Value
from server.harness import run

from connectors.base import Instrument
from connectors.paper.market import BTC_USDT
from gateway.fix.custom import TWAP
from gateway.orders.model import Order
from gateway.orders.scheduled import JITTER, Plan
from gateway.orders.slicing import minimum_quantity, slice_quantity
from gateway.orders.twap import Twap, plan
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
    until,
    venue_survives,
)

FAST = {TWAP: functools.partial(Twap, slice_seconds=0.5)}
"""One slice per half second of the window when the order does not say (FIX 4.4)."""

_NS = 1_000_000_000


def _fixtime(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _ms(ns: int) -> int:
    """``ns`` as the millisecond UTCTimestamp sent carries it."""
    return ns // 1_000_000 * 1_000_000


async def _twap(c: OrderClient, cl: str, *, qty: str, price: Decimal | str, seconds: float,
                start_in: float | None = None, extra: Iterable[tuple[int, Value]] = (),
                ) -> tuple[int | None, int]:
    """A TWAP buy over ``seconds`` from now (or from ``start_in`` seconds from now); returns
    (start, end) as sent."""
    now = time.time_ns()
    start = None if start_in is None else _ms(now + int(start_in * _NS))
    end = _ms((start or now) + int(seconds * _NS))
    fields: list[tuple[int, Value]] = [(847, TWAP), (126, _fixtime(end)), *extra]
    if start is not None:
        fields.append((168, _fixtime(start)))
    await c.order(cl, qty=qty, price=price, tif="6", extra=fields)
    return start, end


def _marketable(r: Run) -> Decimal:
    ask = r.venue().exchange.book(BTC).best_ask()
    assert ask is not None
    return ask + 100




async def _orders(store: SessionStore) -> tuple[dict[str, Order], list[Order]]:
    """Every stored order (the event log replayed and checked against the snapshots), and the
    children by creation time."""
    every = await assert_replay_matches(store)
    children = sorted((o for o in every.values() if o.parent_id is not None),
                      key=lambda o: o.created_ns)
    return every, children


def _on_schedule(p: Plan, children: list[Order]) -> None:
    """Each child is created within one slice interval of its slice's planned time."""
    for i, child in enumerate(children):
        even = p.start_ns + i * p.interval_ns
        assert p.due_ns(i) <= child.created_ns < p.due_ns(i) + p.interval_ns, (i, child)
        assert even <= child.created_ns < even + p.interval_ns, i


# ---- the schedule and the slice sizes, without a gateway -------------------------------------


def _lots(lot: str, min_notional: str = "0") -> Instrument:
    return Instrument("X/USDT", "X-USDT", "X", "USDT", lot_size=D(lot), min_qty=D(lot),
                      min_notional=D(min_notional))


def _sizes(qty: str, slices: int, inst: Instrument, price: Decimal | None) -> list[Decimal]:
    """The slices of a TWAP of ``qty`` whose children all fill."""
    left, out = D(qty), []
    for i in range(slices):
        q = slice_quantity(left, slices - i, inst, price)
        out.append(q)
        left -= q
    return out


def test_a_quantity_smaller_than_its_slices_is_merged_into_fewer() -> None:
    # 3 lots in 5 slices (nautilus_trader #1442): no zero-quantity child, nothing lost
    assert _sizes("3", 5, _lots("1"), None) == [0, 0, 1, 1, 1]
    # at the venue's minimum notional (hummingbot #3696): 5 USDT at 97100 is 0.00006 BTC
    assert minimum_quantity(BTC_USDT, D("97100")) == D("0.00006")
    assert _sizes("0.00012", 5, BTC_USDT, D("97100")) == [0, 0, 0, D("0.00006"), D("0.00006")]
    # even slices on the lot grid, the last takes the rest
    assert _sizes("1", 3, _lots("0.001"), None) == [D("0.333"), D("0.333"), D("0.334")]
    # a remainder under the minimum is not sent
    assert slice_quantity(D("0.00003"), 1, BTC_USDT, D("97100")) == 0


def test_the_schedule_is_even_with_a_small_delay_and_the_same_after_a_restart() -> None:
    p = Plan("42", 10 * _NS, 20 * _NS, 4)
    due = [p.due_ns(i) for i in range(4)]
    for i, t in enumerate(due):
        even = p.start_ns + i * p.interval_ns
        assert even <= t < even + JITTER * p.interval_ns
    assert due == [Plan("42", 10 * _NS, 20 * _NS, 4).due_ns(i) for i in range(4)]
    assert due != [Plan("43", 10 * _NS, 20 * _NS, 4).due_ns(i) for i in range(4)]
    assert p.due_by(p.start_ns, 0) == 0 and p.due_by(due[2], 1) == 2 and p.due_by(due[3], 0) == 3


# ---- at the paper venue ----------------------------------------------------------------------


def test_a_twap_fills_in_slices_on_schedule(tmp_path: Path) -> None:
    """Five slices over 2.5 s from EffectiveTime: five fills of a fifth each, each child sent
    within its slice interval, none before the start; the client sees the parent only."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            start, end = await _twap(c, "t1", qty="0.005", price=_marketable(r), seconds=2.5,
                                     start_in=0.3)
            new = await c.er(t11="t1", t39="0", t150="0", t14="0", t151="0.005")
            fills = [await c.er(t11="t1", t150="F", t37=new[37]) for _ in range(5)]
            assert [D(f[32]) for f in fills] == [D("0.001")] * 5
            assert all(f[30] == "paper" for f in fills)  # LastMkt
            assert fills[-1][39] == "2" and D(fills[-1][14]) == D("0.005")
            for m in (new, *fills):
                consistent(m)
            await c.quiet()
            every, children = await _orders(r.store)
            parent = every[new[37]]
            assert parent.effective_time_ns == start and parent.expire_time_ns == end
            assert parent.strategy_step == 5
            assert len(children) == 5 and all(ch.status.value == "2" for ch in children)
            p = plan(parent, 0.5)
            assert p.slices == 5 and start is not None and p.start_ns == start
            _on_schedule(p, children)
            assert r.orders.book.empty()
    run(body())


def test_a_twap_smaller_than_its_slices_sends_fewer_children(tmp_path: Path) -> None:
    """0.00012 BTC in five slices: a fifth is under the minimum notional (0.00006 at the
    price), so the slices merge into two children of the minimum; all of it fills."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            price = _marketable(r)
            await _twap(c, "t1", qty="0.00012", price=price, seconds=2.5)
            new = await c.er(t11="t1", t39="0")
            least = minimum_quantity(BTC_USDT, price)
            want = [q for q in _sizes("0.00012", 5, BTC_USDT, price) if q]
            assert 1 < len(want) < 5
            fills = [await c.er(t11="t1", t150="F") for _ in want]
            assert [D(f[32]) for f in fills] == want
            assert fills[-1][39] == "2"
            _, children = await _orders(r.store)
            assert [ch.quantity for ch in children] == want
            assert all(ch.quantity >= least for ch in children)
            assert (await _orders(r.store))[0][new[37]].strategy_step == 5
    run(body())


def test_a_rejected_child_gives_its_quantity_to_the_later_slices(tmp_path: Path) -> None:
    """The venue rejects the first slice: the four others take a quarter each and the parent
    fills. Then a TWAP whose last slice is rejected ends at its ExpireTime with what filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            r.venue().update_faults(reject_next=1)
            await _twap(c, "t1", qty="0.005", price=_marketable(r), seconds=2.5)
            new = await c.er(t11="t1", t39="0")
            fills = [await c.er(t11="t1", t150="F") for _ in range(4)]
            assert [D(f[32]) for f in fills] == [D("0.00125")] * 4
            assert fills[-1][39] == "2"
            _, children = await _orders(r.store)
            assert [ch.status.value for ch in children] == ["8", "2", "2", "2", "2"]
            assert children[0].quantity == D("0.001")

            # the last slice rejected: nothing is left to give it to, the TWAP expires
            _, end = await _twap(c, "t2", qty="0.005", price=_marketable(r), seconds=2.5)
            await c.er(t11="t2", t39="0")
            for _ in range(4):
                await c.er(t11="t2", t150="F")
            r.venue().update_faults(reject_next=1)
            done = await c.er(t11="t2", t39="C", t150="C", timeout=5)
            assert time.time_ns() >= end
            assert D(done[14]) == D("0.004") and D(done[151]) == 0
            assert "TWAP ended" in done[58] and "0.004 of 0.005 filled" in done[58]
            consistent(done)
            assert new[37] != done[37]
    run(body())


def test_cancelling_a_twap_midway_cancels_its_children_and_stops_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _twap(c, "t1", qty="0.005", price="90000", seconds=2.5)
            new = await c.er(t11="t1", t39="0")
            opened: list[str] = []

            async def two() -> bool:
                opened[:] = await r.open_at_venue()
                return len(opened) >= 2
            deadline = time.monotonic() + 5
            while not await two():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            # a replace (more, at a new price): the children are cancelled, the parent is
            # Replaced, and the TWAP goes on from its new terms
            await c.replace("t2", "t1", qty="0.006", price="90001", extra=[(59, "6")])
            await c.er(t11="t2", t39="E")
            done = await c.er(t11="t2", t41="t1", t150="5", t39="0", t38="0.006", t44="90001",
                              t37=new[37])
            consistent(done)
            _, replaced = await _orders(r.store)
            assert all(ch.status.value == "4" for ch in replaced[:len(opened)])
            await until(lambda: any(o.parent_id == new[37] and o.price == D("90001")
                                    for o in r.orders.book.orders.values()))
            await c.cancel("t3", "t2", qty="0.006")
            await c.er(t11="t3", t41="t2", t39="6", t150="6")
            gone = await c.er(t11="t3", t41="t2", t39="4", t150="4", t37=new[37])
            assert "TWAP canceled" in gone[58]
            assert await r.open_at_venue() == []
            _, sent = await _orders(r.store)
            # nothing more is sent, up to the end time and after it
            await c.quiet(max(0.3, (end - time.time_ns()) / _NS + 0.3))
            _, children = await _orders(r.store)
            assert len(children) == len(sent) and len(children) > len(opened)
            assert all(ch.status.value == "4" for ch in children)
            assert {ch.price for ch in children[len(opened):]} == {D("90001")}
            assert await r.open_at_venue() == []
    run(body())


def test_at_its_end_time_a_twap_cancels_what_rests_and_expires(tmp_path: Path) -> None:
    """A limit far from the market: the four slices rest; at the ExpireTime they are
    cancelled, and the parent is Expired saying so, with nothing filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _twap(c, "t1", qty="0.004", price="90000", seconds=2.0)
            new = await c.er(t11="t1", t39="0")
            done = await c.er(t11="t1", t39="C", t150="C", t37=new[37], timeout=5)
            assert time.time_ns() >= end
            assert D(done[14]) == 0 and D(done[151]) == 0
            assert "TWAP ended at its ExpireTime: 0 of 0.004 filled" in done[58]
            assert await r.open_at_venue() == []
            every, children = await _orders(r.store)
            assert [ch.quantity for ch in children] == [D("0.001")] * 4
            assert all(ch.status.value == "4" for ch in children)
            _on_schedule(plan(every[new[37]], 0.5), children)
            await c.quiet()
    run(body())


def test_a_twap_resumes_after_a_restart_without_sending_a_slice_twice(
    tmp_path: Path,
) -> None:
    """The gateway stops after two of six slices (the children rest at the venue, which
    stays up); the next gateway adopts them, sends the four others on schedule, and ends the
    TWAP at its ExpireTime: six children, one per slice (bfx-hf-algo #63, nautilus #4786)."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store, strategies=FAST) as r:
                c = await r.client("C1")
                _, end = await _twap(c, "t1", qty="0.006", price="90000", seconds=3.0)
                new = await c.er(t11="t1", t39="0")
                opened: list[str] = []
                deadline = time.monotonic() + 5
                while len(opened) < 2:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
                    opened = await r.open_at_venue()
                await c.logout()
                venue_survives(r)
                first = r
            assert len(opened) == 2
            gw = restart(first, store, sessions, strategies=FAST)
            host, port = await gw.start()
            try:
                orders = gw.orders
                assert orders is not None
                parent = orders.orders[new[37]]
                assert parent.strategy_step >= 2
                adopted = {ch.venue_client_order_id for ch in orders.book.children(parent)}
                assert set(opened) <= adopted  # the live children are the TWAP's again
                c = await OrderClient.connect(host, port, sender="C1", begin="FIX.4.4",
                                              next_seq=first.clients[0].next_seq)
                assert isinstance(c, OrderClient)
                await c.logon(reset=False)
                done = await c.er(t11="t1", t39="C", t150="C", t37=new[37], timeout=6)
                assert time.time_ns() >= end and "TWAP ended" in done[58]
                await until(orders.book.empty)
                await asyncio.wait_for(orders.idle(), 5)
                assert await first.venue().open_orders() == []
                await c.close()
            finally:
                await gw.stop()
            every, children = await _orders(store)
            assert len(children) == 6 and every[new[37]].strategy_step == 6
            assert len({ch.venue_client_order_id for ch in children}) == 6
            assert [ch.quantity for ch in children] == [D("0.001")] * 6
            assert all(ch.status.value == "4" for ch in children)
            _on_schedule(plan(every[new[37]], 0.5), children)
        finally:
            await store.close()
    run(body())


def test_a_twap_without_a_proper_window_is_rejected(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            await c.order("a", price="90000", extra=[(847, TWAP)])
            no_end = await c.er(t11="a", t39="8", t150="8", t103="99")
            assert "needs its end time in ExpireTime (126)" in no_end[58]
            now = time.time_ns()
            await c.order("b", price="90000", extra=[
                (847, TWAP), (126, _fixtime(now + 2 * _NS)), (168, _fixtime(now + 3 * _NS))])
            backwards = await c.er(t11="b", t39="8", t150="8")
            assert "must be after its start" in backwards[58]
            await c.order("c", price="90000", extra=[(847, TWAP), (126, _fixtime(now - _NS))])
            past = await c.er(t11="c", t39="8", t150="8")
            assert "in the past" in past[58]
            # EffectiveTime without a strategy is not ignored either
            await c.order("d", price="90000", extra=[(168, _fixtime(now))])
            plain = await c.er(t11="d", t39="8", t150="8")
            assert "TargetStrategy (847)" in plain[58]
            await c.quiet()
            assert await r.open_at_venue() == []
    run(body())


def test_fix50sp2_strategy_parameters_set_the_slices(tmp_path: Path) -> None:
    """On FIX 5.0SP2 the StrategyParametersGrp (957) says how many slices (four here, where
    the window would give five); a parameter the TWAP does not know is refused."""
    async def body() -> None:
        begin = "FIXT.1.1"
        async with running(tmp_path, [session("C2", begin)], strategies=FAST) as r:
            c = await r.client("C2", begin)
            slices = [(957, "1"), (958, "Slices"), (959, "1"), (960, "4")]
            await _twap(c, "t1", qty="0.004", price=_marketable(r), seconds=2.5, extra=slices)
            new = await c.er(t11="t1", t39="0")
            fills = [await c.er(t11="t1", t150="F") for _ in range(4)]
            assert [D(f[32]) for f in fills] == [D("0.001")] * 4 and fills[-1][39] == "2"
            every, children = await _orders(r.store)
            parent = every[new[37]]
            assert parent.strategy_parameters == {"Slices": "4"}
            p = plan(parent, 0.5)
            assert p.slices == 4
            _on_schedule(p, children)

            unknown = [(957, "1"), (958, "Aggression"), (959, "1"), (960, "3")]
            await _twap(c, "t2", qty="0.004", price="90000", seconds=2.5, extra=unknown)
            refused = await c.er(t11="t2", t39="8", t150="8")
            assert "Aggression is not a TWAP parameter" in refused[58]
            bad = [(957, "1"), (958, "Slices"), (959, "1"), (960, "0")]
            await _twap(c, "t3", qty="0.004", price="90000", seconds=2.5, extra=bad)
            refused = await c.er(t11="t3", t39="8", t150="8")
            assert "Slices must be an integer from 1 to 100" in refused[58]
            await c.quiet()
            assert await r.open_at_venue() == []
    run(body())


def test_the_gateway_offers_twap_by_default(tmp_path: Path) -> None:
    """``fixgw run`` (build_gateway without strategies) offers TWAP: one slice per 10 s by
    default, so a 2 s TWAP is one child."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")]) as r:
            c = await r.client("C1")
            await _twap(c, "t1", qty="0.002", price=_marketable(r), seconds=2.0)
            await c.er(t11="t1", t39="0")
            done = await c.er(t11="t1", t150="F")
            assert done[39] == "2" and D(done[32]) == D("0.002")
    run(body())


def test_a_replace_moves_the_end_time_of_a_twap(tmp_path: Path) -> None:
    """ExpireTime (126) in a replace: the TWAP works on to its new end and expires then. An
    order at a venue cannot have its ExpireTime replaced (refused, saying so)."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _twap(c, "t1", qty="0.004", price="90000", seconds=1.5)
            new = await c.er(t11="t1", t39="0")
            later = _ms(end + _NS)
            await c.replace("t2", "t1", qty="0.004", price="90000",
                            extra=[(59, "6"), (126, _fixtime(later))])
            await c.er(t11="t2", t39="E")
            await c.er(t11="t2", t150="5", t126=_fixtime(later)[:21])
            done = await c.er(t11="t2", t39="C", t150="C", t37=new[37], timeout=6)
            assert time.time_ns() >= later
            assert "TWAP ended at its ExpireTime" in done[58]
            assert (await _orders(r.store))[0][new[37]].expire_time_ns == later

            await c.order("v1", qty="0.001", price="90000", tif="6",
                          extra=[(126, _fixtime(later + 60 * _NS))])
            await c.er(t11="v1", t39="0")
            await c.replace("v2", "v1", qty="0.001", price="90000",
                            extra=[(59, "6"), (126, _fixtime(later + 120 * _NS))])
            refused = await c.expect("9", t11="v2", t41="v1", t434="2")
            assert "ExpireTime (126) of an order at a venue" in refused[58]
    run(body())
