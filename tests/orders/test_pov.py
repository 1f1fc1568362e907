"""POV (TargetStrategy 847=2, ParticipationRate 849) on the paper venue with synthetic market
trades: the realised participation over the window against the target, the rate as 849 or as
a FIX 5.0SP2 strategy parameter, refusals (the rate, the window, a venue without public
trades), a limit's volume, cancel and replace, a rejected child, the kill switch, and a restart
that goes on from the volume it stored without sending a child twice.

The waits are reads of the next message, or bounded polls of a condition."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server.fixclient import Value
from server.harness import run

from connectors.base import PublicTrade
from gateway.fix.custom import SOR
from gateway.marketview import FeedView
from gateway.orders.pov import POV, VOLUME_UNIT, Pov, participation
from gateway.orders.scheduled import BadParameters
from gateway.orders.sor import SmartRouter
from gateway.store.store import SessionStore

from .support import (
    BTC,
    D,
    OrderClient,
    Run,
    restart,
    running,
    session,
    sid,
    until,
    venue,
    venue_survives,
)
from .test_twap import _NS, _fixtime, _ms, _orders
from .test_twap_holds import _parent
from .test_vwap import _market_trades, done

FAST = {POV: functools.partial(Pov, interval=0.2)}
"""A child at most every 0.2 s."""

FLOW = [venue(tick_interval=0.05, market=[{"symbol": BTC, "trade_rate": "1",
                                           "trade_size": "0.01"}])]
"""The paper venue with 20 synthetic trades a second of 0.01 BTC on average."""

BAND = D("0.02")
"""The realised participation is within this of the rate (0.1 +- 0.02; measured 0.094-0.095
over three seconds: the POV lags the market by up to one interval and a lot at the end;
scripts/bench_algos.py measures 0.099-0.100 over 20 s)."""


async def _pov(c: OrderClient, cl: str, *, qty: str, price: Decimal | str | None,
               rate: str | None = "0.1", seconds: float | None = None,
               extra: Iterable[tuple[int, Value]] = ()) -> int | None:
    """A POV buy at ``rate`` (849) until ``seconds`` from now (None: no ExpireTime); returns
    the end as sent. ``price`` None: a market order."""
    end = None if seconds is None else _ms(time.time_ns() + int(seconds * _NS))
    fields: list[tuple[int, Value]] = [(847, POV), *extra]
    if rate is not None:
        fields.append((849, rate))
    if end is not None:
        fields.append((126, _fixtime(end)))
    if price is None:
        await c.order(cl, qty=qty, ord_type="1", tif="1", extra=fields)
    else:
        await c.order(cl, qty=qty, price=price, tif="1", extra=fields)
    return end


def _watched(r: Run) -> int:
    market = r.orders.children.market
    assert isinstance(market, FeedView)
    return len(market._relays)


# ---- the parameters, without a gateway -------------------------------------------------------


def _pov_order(**kw: Any) -> Any:
    base: dict[str, Any] = {"strategy": POV, "strategy_parameters": {"ParticipationRate": "0.1"},
                            "expire_time_ns": None}
    base.update(kw)
    return _parent(**base)


def test_the_rate_is_a_fraction_above_zero_and_at_most_one_half() -> None:
    assert participation(_pov_order())[0] == D("0.1")
    assert participation(_pov_order(strategy_parameters={"ParticipationRate": "0.5"}))[0] == D(
        "0.5")
    for bad in ("0", "-0.1", "0.51", "10", "abc", "NaN", "Infinity"):
        with pytest.raises(BadParameters, match="must be above 0 and at most 0.5"):
            participation(_pov_order(strategy_parameters={"ParticipationRate": bad}))
    with pytest.raises(BadParameters, match="needs its rate in ParticipationRate"):
        participation(_pov_order(strategy_parameters={}))
    with pytest.raises(BadParameters, match="Aggression is not a POV parameter"):
        participation(_pov_order(strategy_parameters={"ParticipationRate": "0.1",
                                                      "Aggression": "1"}))
    rate, start, end = participation(_pov_order())
    assert end is None  # until filled or canceled


# ---- at the paper venue ----------------------------------------------------------------------


def test_a_pov_trades_at_its_rate_of_the_markets_volume(tmp_path: Path) -> None:
    """10% of what the market trades (our own fills included) over three seconds, then
    Expired at its ExpireTime with what it filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            trades: list[tuple[int, PublicTrade]] = []
            reader = asyncio.get_running_loop().create_task(_market_trades(r, trades))
            c = await r.client("C1")
            end = await _pov(c, "p1", qty="1", price=None, seconds=3.0)
            assert end is not None
            new = await c.er(t11="p1", t39="0")
            start = r.orders.orders[new[37]].created_ns
            last = await done(c, new[37], 6)
            assert last[39] == "C"
            assert f"POV ended at its ExpireTime: {D(last[14])} of 1 filled" in last[58]
            reader.cancel()
            market = sum((t.size for at, t in trades if start <= at <= end), D(0))
            ours = D(last[14])
            realised = ours / market
            print(f"POV filled {ours} of a market volume of {market}: {realised:.4f}")
            assert abs(realised - D("0.1")) <= BAND
            every, children = await _orders(r.store)
            assert len(children) >= 5
            assert all(ch.time_in_force.value == "ioc" for ch in children)
            assert every[new[37]].cum_qty <= D("0.1") * every[new[37]].strategy_step * VOLUME_UNIT
            assert _watched(r) == 0  # it ended: the public trades are no longer watched
    run(body())


def test_fix50sp2_strategy_parameters_give_the_rate(tmp_path: Path) -> None:
    async def body() -> None:
        begin = "FIXT.1.1"
        async with running(tmp_path, [session("C2", begin)], FLOW, strategies=FAST) as r:
            c = await r.client("C2", begin)
            rate = [(957, "1"), (958, "ParticipationRate"), (959, "11"), (960, "0.2")]
            await _pov(c, "p1", qty="0.01", price=None, rate=None, extra=rate)
            new = await c.er(t11="p1", t39="0")
            await c.er(t11="p1", t150="F", timeout=5)
            parent = r.orders.orders[new[37]]
            assert parent.strategy_parameters == {"ParticipationRate": "0.2"}
            await c.cancel("p2", "p1", qty="0.01")
            await done(c, new[37], 5)
            await _pov(c, "p3", qty="0.01", price=None, rate="0.1", extra=rate)
            m = await c.er(t11="p3", t39="8")
            assert "ParticipationRate is given twice" in m[58]
    run(body())


def test_what_does_not_fit_a_pov_is_rejected_with_the_reason(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            c = await r.client("C1")
            await _pov(c, "a", qty="0.01", price=None, rate=None)
            m = await c.er(t11="a", t39="8", t150="8", t103="99")
            assert "a POV needs its rate in ParticipationRate (849)" in m[58]
            for cl, rate in (("b", "0"), ("c", "0.6"), ("d", "10")):
                await _pov(c, cl, qty="0.01", price=None, rate=rate)
                m = await c.er(t11=cl, t39="8")
                assert "ParticipationRate must be above 0 and at most 0.5" in m[58], m
            await c.order("e", qty="0.01", ord_type="1", tif="3", extra=[(847, POV), (849, "0.1")])
            assert "a POV cannot be TimeInForce" in (await c.er(t11="e", t39="8"))[58]
            await _pov(c, "f", qty="0.01", price=None, seconds=-1)
            assert "ExpireTime (126) of a POV is in the past" in (await c.er(t11="f",
                                                                            t39="8"))[58]
            # ParticipationRate without a strategy is not ignored
            await c.order("g", price="90000", tif="1", extra=[(849, "0.1")])
            assert "TargetStrategy (847)" in (await c.er(t11="g", t39="8"))[58]
            # a venue without public trades: the POV cannot be worked
            conn = r.venue()
            conn.info = dataclasses.replace(conn.info, capabilities=dataclasses.replace(
                conn.capabilities, market_data=False))
            await _pov(c, "h", qty="0.01", price=None)
            m = await c.er(t11="h", t39="8", t150="8")
            assert "a POV needs the public trades of BTC/USDT at paper" in m[58]
            await c.quiet()
            _, children = await _orders(r.store)
            assert children == [] and _watched(r) == 0
    run(body())


def test_a_limit_pov_counts_only_the_volume_within_its_limit(tmp_path: Path) -> None:
    """A buy limit under the market: the market's trades are all above it, none counts, no
    child is sent; it expires with nothing filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            c = await r.client("C1")
            await _pov(c, "p1", qty="0.01", price="90000", seconds=1.5)
            await c.er(t11="p1", t39="0")
            last = await c.er(t11="p1", t39="C", timeout=4)
            assert "0 of 0.01 filled" in last[58]
            _, children = await _orders(r.store)
            assert children == []
    run(body())


def test_a_pov_is_replaced_then_cancelled(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            c = await r.client("C1")
            await _pov(c, "p1", qty="1", price=None)  # no ExpireTime: until canceled
            new = await c.er(t11="p1", t39="0")
            await c.er(t11="p1", t150="F", timeout=5)
            assert _watched(r) == 1
            await c.replace("p2", "p1", qty="2", ord_type="1", extra=[(59, "1")])
            await c.er(t11="p2", t39="E")
            await c.er(t11="p2", t41="p1", t150="5", t38="2", t37=new[37])
            await until(lambda: _watched(r) == 1)  # (worked on: the market watched again)
            await c.cancel("p3", "p2", qty="2")
            gone = await done(c, new[37], 5)
            assert gone[39] == "4" and gone[11] == "p3" and "POV canceled" in gone[58]
            _, sent = await _orders(r.store)
            assert _watched(r) == 0
            await c.quiet(0.6)  # the market trades on: nothing more is sent
            _, children = await _orders(r.store)
            assert len(children) == len(sent)
            assert r.orders.book.empty() and new[37] not in r.orders.orders
    run(body())


def test_a_rejected_child_gives_its_quantity_back(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            c = await r.client("C1")
            r.venue().update_faults(reject_next=1)
            await _pov(c, "p1", qty="1", price=None, seconds=2.0)
            new = await c.er(t11="p1", t39="0")
            last = await done(c, new[37], 5)
            every, children = await _orders(r.store)
            assert children[0].status.value == "8" and children[0].cum_qty == 0
            parent = every[new[37]]
            assert parent.cum_qty == D(last[14]) > children[0].quantity
            # the rejected child's quantity was sent again: the POV kept up with its target
            target = D("0.1") * parent.strategy_step * VOLUME_UNIT
            assert target - D("0.002") <= parent.cum_qty <= target
    run(body())


def test_the_kill_switch_cancels_a_pov(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], FLOW, strategies=FAST) as r:
            c = await r.client("C1")
            await _pov(c, "p1", qty="1", price=None)
            new = await c.er(t11="p1", t39="0")
            await c.er(t11="p1", t150="F", timeout=5)
            await r.orders.kill_switch(sid("C1"), True, "test")
            gone = await done(c, new[37], 5)
            assert gone[39] == "4" and "POV canceled" in gone[58]
            assert _watched(r) == 0
    run(body())


def test_a_pov_resumes_after_a_restart_from_the_volume_it_stored(tmp_path: Path) -> None:
    """The gateway stops after a few children (the venue and its market go on); the next
    gateway takes the stored volume, watches the trades again and works the POV to its end:
    no child sent twice, never more than the rate of the volume counted."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, FLOW, store=store, strategies=FAST) as r:
                c = await r.client("C1")
                end = await _pov(c, "p1", qty="1", price=None, seconds=4.0)
                assert end is not None
                new = await c.er(t11="p1", t39="0")
                parent = r.orders.orders[new[37]]
                await until(lambda: parent.cum_qty >= D("0.01"))  # (a few children)
                await c.send("5")  # Logout, the fills still coming meanwhile
                await c.recv_type("5", skip=("0", "8"))
                await c.expect_closed(5)
                await c.close()
                venue_survives(r)
                first = r
            before = (await _orders(store))[0][new[37]]
            assert before.strategy_step > 0 and before.cum_qty > 0
            gw = restart(first, store, sessions, strategies=FAST)
            host, port = await gw.start()
            try:
                orders = gw.orders
                assert orders is not None
                parent = orders.orders[new[37]]
                # from the stored volume, not from nothing (the market trades on: by the time
                # the started gateway is asked, it may have counted a trade or two more)
                assert before.strategy_step <= parent.strategy_step < 2 * before.strategy_step
                c = await OrderClient.connect(host, port, sender="C1", begin="FIX.4.4",
                                              next_seq=first.clients[0].next_seq)
                assert isinstance(c, OrderClient)
                await c.logon(reset=False)
                last = await done(c, new[37], 6)
                assert last[39] == "C" and "POV ended" in last[58]
                await until(orders.book.empty)
                await asyncio.wait_for(orders.idle(), 5)
                await c.close()
            finally:
                await gw.stop()
            every, children = await _orders(store)
            after = every[new[37]]
            assert after.strategy_step > before.strategy_step  # counted on after the restart
            assert after.cum_qty > before.cum_qty
            assert after.cum_qty <= D("0.1") * after.strategy_step * VOLUME_UNIT
            assert len({ch.venue_client_order_id for ch in children}) == len(children)
            assert sum((ch.cum_qty for ch in children), D(0)) == after.cum_qty
        finally:
            await store.close()
    run(body())


def test_a_routed_pov_follows_every_venues_trades_and_routes_its_children(
        tmp_path: Path) -> None:
    """A POV sent to SOR on two venues with market trades: both venues' trades are watched
    (its market is theirs together), its children are routed; canceled, it unwatches both."""
    async def body() -> None:
        two = [venue(name, tick_interval=0.05, market=[{"symbol": BTC, "trade_rate": "1",
                                                       "trade_size": "0.01"}])
               for name in ("a", "b")]
        routed = session("C1", default_venue="a", venues=["a", "b"], routing="sor")
        strategies = {**FAST, SOR: SmartRouter}
        async with running(tmp_path, [routed], two, strategies=strategies) as r:
            c = await r.client("C1")
            await _pov(c, "p1", qty="1", price=None)
            new = await c.er(t11="p1", t39="0")
            fill = await c.er(t11="p1", t150="F", timeout=5)
            assert fill[30] in ("a", "b")
            assert _watched(r) >= 2  # (a's and b's trades; the router may watch books too)
            decisions = await r.orders.store.order_events(new[37], "routed")
            assert decisions and all("round" not in d.data for d in decisions)
            await c.cancel("p2", "p1", qty="1")
            gone = await done(c, new[37], 5)
            assert gone[39] == "4"
            assert r.orders.book.empty()
    run(body())
