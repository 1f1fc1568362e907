"""Smart order routing across two simulated venues with different prices, depths and fees
(``[[venue.market]]``): the routed order goes where the price after fees is best, a large one
is split, a venue that fails is left out and the rest re-routed, an IOC ends with what it
found, cancel reaches every child, a restart in the middle of a split loses and duplicates
nothing, and every routing is stored with what it saw.

The waits are reads of the next message, or bounded polls of a condition."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from server.harness import run

from connectors.base import TimeInForce
from gateway import cli
from gateway.app import build_gateway
from gateway.config import load_config
from gateway.fix.custom import ICEBERG, SOR, TWAP
from gateway.marketview import FeedView
from gateway.orders.iceberg import Iceberg
from gateway.orders.model import Order
from gateway.orders.sor import SmartRouter
from gateway.orders.twap import Twap
from gateway.store.store import SessionStore

from .support import BTC, D, Run, config, consistent, running, session, sid, until, venue

# "a": best ask 97000.01, deep, 2 bp taker fee; "b": best ask 97000.01 too, 0.2 a level,
# 1 bp: b is cheaper after fees at every price it shows
A = venue("a", taker_fee="0.0002", market=[{"symbol": BTC, "mid": "97000", "volatility": "0",
                                            "level_size": "5"}])
B = venue("b", taker_fee="0.0001", market=[{"symbol": BTC, "mid": "97000", "volatility": "0",
                                            "level_size": "0.2"}])
ROUTED = session("C1", default_venue="a", venues=["a", "b"], routing="sor")


def _runs(tmp_path: Path, **kw: Any) -> Any:
    return running(tmp_path, [ROUTED], [A, B], **kw)


async def _children(r: Run) -> list[Order]:
    return sorted((o for o in (await _stored(r.store)).values() if o.parent_id is not None),
                  key=lambda o: o.created_ns)


async def _stored(store: SessionStore) -> dict[str, Order]:
    from .support import assert_replay_matches
    return await assert_replay_matches(store)


def test_a_routed_order_goes_to_the_venue_cheapest_after_fees(tmp_path: Path) -> None:
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="97000.05", tif="1")
            new = await c.er(t11="s1", t39="0", t150="0")
            fill = await c.er(t11="s1", t150="F", t39="2", t37=new[37])
            assert fill[30] == "b" and D(fill[32]) == D("0.1")
            assert D(fill[31]) == D("97000.01")
            consistent(fill)
            await c.quiet()
            kids = await _children(r)
            assert [(k.venue, k.quantity, k.price) for k in kids] == [
                ("b", D("0.1"), D("97000.05"))]
    run(body())


def test_a_large_order_is_split_across_venues_and_reported_as_one(tmp_path: Path) -> None:
    """1 BTC at up to 97000.03: b shows 0.2 at each of .01 .02 .03 (cheaper after fees), a
    shows 5 at .01 (2 bp): b's three levels first (0.6), then a for 0.4."""
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            await c.order("s1", qty="1", price="97000.03", tif="1")
            new = await c.er(t11="s1", t39="0")
            fills = []
            while not fills or fills[-1][39] != "2":
                fills.append(await c.er(t11="s1", t150="F", t37=new[37]))
            by_venue: dict[str, Decimal] = {}
            for f in fills:
                by_venue[f[30]] = by_venue.get(f[30], D(0)) + D(f[32])
                consistent(f)
            assert by_venue == {"a": D("0.4"), "b": D("0.6")}
            assert D(fills[-1][14]) == D("1") and D(fills[-1][151]) == 0
            notional = sum(D(f[31]) * D(f[32]) for f in fills)
            assert D(fills[-1][6]) == notional / D("1")
            every = await _stored(r.store)
            parent = every[new[37]]
            assert parent.strategy_step == 1  # routed once
            decisions = await r.orders.store.order_events(new[37], "routed")
            assert len(decisions) == 1
            d = decisions[0].data
            assert {s["venue"]: D(s["quantity"]) for s in d["shares"]} == {
                "a": D("0.4"), "b": D("0.6")}
            assert d["venues"]["b"]["taker_fee"] == "0.0001"
            assert d["venues"]["b"]["levels"][0] == ["97000.01", "0.2"]
    run(body())


def test_a_venue_that_fails_is_left_out_and_the_rest_rerouted(tmp_path: Path) -> None:
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            r.venue("b").update_faults(reject_next=1)
            await c.order("s1", qty="0.1", price="97000.05", tif="1")
            new = await c.er(t11="s1", t39="0")
            fill = await c.er(t11="s1", t150="F", t39="2", t37=new[37])
            assert fill[30] == "a"
            kids = await _children(r)
            assert [(k.venue, k.status.value) for k in kids] == [("b", "8"), ("a", "2")]
            decisions = await r.orders.store.order_events(new[37], "routed")
            assert [d.data["round"] for d in decisions] == [1, 2]
            assert "b" in decisions[1].data["left_out"]
            assert "b" not in decisions[1].data["venues"]
    run(body())


def test_a_venue_down_at_the_start_is_not_a_candidate(tmp_path: Path) -> None:
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            r.orders.down["b"] = "not started (test)"
            await c.order("s1", qty="0.1", price="97000.05", tif="1")
            await c.er(t11="s1", t39="0")
            assert (await c.er(t11="s1", t150="F", t39="2"))[30] == "a"
            r.orders.down["a"] = "not started (test)"
            await c.order("s2", qty="0.1", price="97000.05", tif="1")
            rej = await c.er(t11="s2", t39="8", t103="2")
            assert "no venue is available" in rej[58]
    run(body())


def test_an_ioc_ends_with_what_the_venues_had(tmp_path: Path) -> None:
    """An IOC for 1 at 97000.01: b has 0.2 and a 5 at that price: all of it; then an IOC at a
    price nobody offers ends Canceled with nothing filled."""
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            await c.order("s1", qty="0.5", price="96000", tif="3")
            await c.er(t11="s1", t39="0")
            done = await c.er(t11="s1", t39="4", t150="4")
            assert D(done[14]) == 0 and "no more liquidity" in done[58]
            assert all(k.status.value == "4" for k in await _children(r))
    run(body())


def test_balances_cap_a_venue_and_cancel_reaches_every_child(tmp_path: Path) -> None:
    """A buy under the market: nothing is visible within its limit, so it rests at the home
    venue (b, the cheapest after fees) -- as far as the account's USDT there pays for; the
    rest rests at a. A cancel cancels both children, then the parent."""
    async def body() -> None:
        poor_b = {**B, "balances": {"USDT": "100000", "BTC": "1"}}
        async with running(tmp_path, [ROUTED], [A, poor_b]) as r:
            c = await r.client("C1")
            await until(lambda: r.orders.children.market.available("b", "USDT") is not None)
            await c.order("s1", qty="2", price="90000", tif="1")
            new = await c.er(t11="s1", t39="0")

            def kids() -> list[Order]:
                return r.orders.book.children(r.orders.book.orders[new[37]])

            await until(lambda: len(kids()) == 2 and all(k.venue_order_id for k in kids()))
            # 100000 / (90000 x 1.0001) = 1.111000988..: 1.111 on b's lot grid
            assert {k.venue: k.quantity for k in kids()} == {"b": D("1.111"), "a": D("0.889")}
            await c.cancel("s1c", "s1", qty="2")
            await c.er(t11="s1c", t39="6")
            done = await c.er(t11="s1c", t39="4", t150="4", t41="s1")
            assert D(done[14]) == 0
            assert not await r.open_at_venue("a") and not await r.open_at_venue("b")
    run(body())


def test_a_restart_in_the_middle_of_a_split_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    """A split that rests at both venues (each venue's share within its shown depth, the
    rest at home); the gateway stops; a second one on the same store and venues adopts the
    children, sends nothing new, and a cancel then reaches both."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with _runs(tmp_path, store=store) as r:
                c = await r.client("C1")
                # a sell at 97000 or better: nothing bids that high: all of it rests at home
                await c.order("s1", side="2", qty="0.3", price="97100", tif="1")
                new = await c.er(t11="s1", t39="0")
                await until(lambda: len(r.orders.book.children(r.orders.book.orders[new[37]]))
                            == 1 and all(k.venue_order_id for k in r.orders.book.children(
                                r.orders.book.orders[new[37]])))
                venues = {n: r.venue(n) for n in ("a", "b")}
                for v in venues.values():
                    async def stay_open() -> None:
                        return None
                    v.close = stay_open  # type: ignore[method-assign]
                before = await _children(r)
                await c.close()
            gw = build_gateway(config([ROUTED], [A, B]), store)
            assert gw.orders is not None
            gw.orders.connectors.update(venues)
            host, port = await gw.start()
            try:
                r2 = Run(gw, store, host, port)
                await until(lambda: new[37] in gw.orders.book.orders)  # type: ignore[union-attr]
                c2 = await r2.client("C1")
                await c2.cancel("s1c", "s1", side="2", qty="0.3")
                await c2.er(t11="s1c", t39="6")
                await c2.er(t11="s1c", t39="4")
                after = await _children(r2)
                assert [k.order_id for k in after] == [k.order_id for k in before]
                assert all(k.status.value == "4" for k in after)
                for v in venues.values():
                    assert not await v.open_orders()
                await c2.close()
                await asyncio.wait_for(gw.orders.idle(), 10)  # type: ignore[union-attr]
            finally:
                await gw.stop()
        finally:
            await store.close()
    run(body())


def test_a_routed_order_the_router_cannot_take_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="97000", tif="4")  # FOK
            assert "fill-or-kill" in (await c.er(t11="s1", t39="8"))[58]
            await c.order("s3", symbol="DOGE/USDT", qty="1", price="1", tif="1")
            assert "unknown symbol" in (await c.er(t11="s3", t39="8", t103="1"))[58]
    run(body())


def test_sor_by_ex_destination_on_a_static_session(tmp_path: Path) -> None:
    async def body() -> None:
        static = session("C1", default_venue="a", venues=["a", "b"])
        async with running(tmp_path, [static], [A, B]) as r:
            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="97000.05", tif="1", extra=[(100, "SOR")])
            await c.er(t11="s1", t39="0")
            assert (await c.er(t11="s1", t150="F", t39="2"))[30] == "b"
            await c.order("s2", qty="0.1", price="97000.05", tif="1")  # static: the default
            await c.er(t11="s2", t39="0")
            fill = await c.er(t11="s2", t150="F", t39="2")
            assert (await _stored(r.store))[fill[37]].venue == "a"
    run(body())


def test_the_decisions_are_shown_by_the_admin_api_and_fixgw_routing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXGW_TEST_ADMIN_TOKEN", "s3cret")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text(f"""
[gateway]
host = "127.0.0.1"
port = 0
log_dir = "{tmp_path / 'log'}"
[admin]
host = "127.0.0.1"
port = {port}
token_env = "FIXGW_TEST_ADMIN_TOKEN"
[[venue]]
name = "a"
taker_fee = "0.0002"
tick_interval = 3600
market = [{{symbol = "BTC/USDT", mid = "97000", volatility = "0", level_size = "5"}}]
[[venue]]
name = "b"
taker_fee = "0.0001"
tick_interval = 3600
market = [{{symbol = "BTC/USDT", mid = "97000", volatility = "0", level_size = "0.2"}}]
[[session]]
target_comp_id = "C1"
begin_string = "FIX.4.4"
default_venue = "a"
venues = ["a", "b"]
routing = "sor"
""")

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        gw = build_gateway(load_config(cfg_file), store)
        host, fix_port = await gw.start()
        try:
            r = Run(gw, store, host, fix_port)
            c = await r.client("C1")
            await c.order("s1", qty="1", price="97000.03", tif="1")
            new = await c.er(t11="s1", t39="0")
            while (await c.er(t11="s1", t150="F"))[39] != "2":
                pass
            await c.close()
            assert await asyncio.to_thread(
                cli.main, ["routing", new[37], "--config", str(cfg_file)]) == 0
            out = capsys.readouterr().out
            assert f"routing 1 of order {new[37]}: 1 at limit 97000.03" in out
            assert "b            best 0.2 @ 97000.01; taker fee 0.0001" in out
            assert "-> 0.6 at b" in out and "-> 0.4 at a" in out
            assert await asyncio.to_thread(
                cli.main, ["routing", new[37], "--json", "--config", str(cfg_file)]) == 0
            answer = json.loads(capsys.readouterr().out)
            assert answer["decisions"][0]["home"] == "b"
            assert await asyncio.to_thread(
                cli.main, ["routing", "nope", "--config", str(cfg_file)]) == 1
            assert "404" in capsys.readouterr().err
            await asyncio.wait_for(gw.orders.idle(), 10)  # type: ignore[union-attr]
        finally:
            await gw.stop()
            await store.close()
    run(body())


def test_a_replace_reaches_every_child_and_routes_again(tmp_path: Path) -> None:
    """A resting routed buy split by balance (b, then a); a replace to a marketable price:
    both children are cancelled, the parent Replaced, and routed again: it fills."""
    async def body() -> None:
        poor_b = {**B, "balances": {"USDT": "100000", "BTC": "1"}}
        async with running(tmp_path, [ROUTED], [A, poor_b]) as r:
            c = await r.client("C1")
            await until(lambda: r.orders.children.market.available("b", "USDT") is not None)
            await c.order("s1", qty="2", price="90000", tif="1")
            new = await c.er(t11="s1", t39="0")
            parent = r.orders.book.orders[new[37]]
            await until(lambda: len(r.orders.book.children(parent)) == 2 and all(
                k.venue_order_id for k in r.orders.book.children(parent)))
            await c.replace("s2", "s1", qty="1", price="97000.05", extra=[(59, "1")])
            await c.er(t11="s2", t39="E")
            done = await c.er(t11="s2", t41="s1", t150="5", t38="1", t44="97000.05")
            consistent(done)
            fills = []
            while not fills or fills[-1][39] != "2":
                fills.append(await c.er(t11="s2", t150="F"))
            assert D(fills[-1][14]) == D("1")
            kids = await _children(r)
            assert [k.status.value for k in kids[:2]] == ["4", "4"]
            assert sum((k.cum_qty for k in kids), D(0)) == D("1")
            decisions = await r.orders.store.order_events(new[37], "routed")
            assert [d.data["limit"] for d in decisions] == ["90000", "97000.05"]
            assert not await r.open_at_venue("a") and not await r.open_at_venue("b")
    run(body())


def test_a_twap_and_an_iceberg_send_their_children_through_the_router(tmp_path: Path) -> None:
    """A routed TWAP of three slices: each slice is routed (b, the cheapest after fees, shows
    0.2 a level) and fills there; the parent's step counts its slices, each routing is stored.
    A routed iceberg: each child routed."""
    async def body() -> None:
        strategies = {TWAP: functools.partial(Twap, slice_seconds=0.5), SOR: SmartRouter,
                      ICEBERG: Iceberg}
        async with _runs(tmp_path, strategies=strategies) as r:
            c = await r.client("C1")
            end = time.time_ns() + 1_500_000_000
            end -= end % 1_000_000
            stamp = datetime.fromtimestamp(end / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
            await c.order("t1", qty="0.6", price="97000.05", tif="1",
                          extra=[(847, TWAP), (126, stamp)])
            new = await c.er(t11="t1", t39="0")
            fills = [await c.er(t11="t1", t150="F") for _ in range(3)]
            assert [(f[30], D(f[32])) for f in fills] == [("b", D("0.2"))] * 3
            assert fills[-1][39] == "2"
            every = await _stored(r.store)
            assert every[new[37]].strategy_step == 3 and every[new[37]].venue == "SOR"
            decisions = await r.orders.store.order_events(new[37], "routed")
            assert len(decisions) == 3 and all("round" not in d.data for d in decisions)

            await c.order("i1", qty="0.5", price="97000.05", tif="1", extra=[(111, "0.2")])
            new = await c.er(t11="i1", t39="0")
            got = D(0)
            while got < D("0.5"):
                f = await c.er(t11="i1", t150="F")
                got += D(f[32])
            assert f[39] == "2"
            assert len(await r.orders.store.order_events(new[37], "routed")) == 3
    run(body())


def test_an_ambiguous_child_keeps_its_quantity_until_the_venue_says(tmp_path: Path) -> None:
    """b times out on the child (the order did reach it and filled): the router routes
    nothing more while the outcome is not known; the fill resolves it; one child, no
    duplicate."""
    async def body() -> None:
        async with _runs(tmp_path) as r:
            c = await r.client("C1")
            r.venue("b").update_faults(timeout_next=1, timeout_mode="accepted")
            await c.order("s1", qty="0.1", price="97000.05", tif="1")
            new = await c.er(t11="s1", t39="0")
            fill = await c.er(t11="s1", t150="F", t39="2", t37=new[37])
            assert fill[30] == "b" and D(fill[14]) == D("0.1")
            await c.quiet()
            kids = await _children(r)
            assert [(k.venue, k.quantity, k.status.value) for k in kids] == [
                ("b", D("0.1"), "2")]
            assert len(await r.orders.store.order_events(new[37], "routed")) == 1
    run(body())


def test_a_time_in_force_no_venue_supports_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with _runs(tmp_path) as r:
            for name in ("a", "b"):  # (venues without Day orders, as the exchanges are)
                info = r.venue(name).info
                info.capabilities = dataclasses.replace(info.capabilities, time_in_force=(
                    frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})))
            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="97000", tif="0")  # Day
            rej = await c.er(t11="s1", t39="8")
            assert "TimeInForce" in rej[58] and "not supported at a, b" in rej[58]
    run(body())


def test_cancel_on_disconnect_and_the_kill_switch_reach_routed_children(
        tmp_path: Path) -> None:
    """A routed order resting at both venues: the client drops, cancel-on-disconnect cancels
    the parent and its children at both venues. Then, logged on again, a routed order is
    cancelled by the kill switch, and a new one refused while it is engaged."""
    async def body() -> None:
        poor_b = {**B, "balances": {"USDT": "100000", "BTC": "1"}}
        cod = {**ROUTED, "cancel_on_disconnect": "disconnect"}
        async with running(tmp_path, [cod], [A, poor_b]) as r:
            c = await r.client("C1")
            await until(lambda: r.orders.children.market.available("b", "USDT") is not None)

            async def resting_at_both(cl: str) -> str:
                await c.order(cl, qty="2", price="90000", tif="1")
                order_id = (await c.er(t11=cl, t39="0"))[37]
                parent = r.orders.book.orders[order_id]
                await until(lambda: len(r.orders.book.children(parent)) == 2 and all(
                    k.venue_order_id for k in r.orders.book.children(parent)))
                return order_id

            first = await resting_at_both("s1")
            await c.close()
            await r.logged_out(sid("C1"))
            await until(lambda: first not in r.orders.book.orders)
            assert not await r.open_at_venue("a") and not await r.open_at_venue("b")
            assert (await _stored(r.store))[first].status.value == "4"

            c = await r.reconnect(c)
            missed = await c.er(t11="s1", t39="4", t37=first)  # (told at the logon)
            assert "cancel on disconnect" in missed[58]
            second = await resting_at_both("s2")
            await r.orders.kill_switch("*", True, "test")
            done = await c.er(t11="s2", t39="4", t37=second, timeout=5)
            assert "kill switch" in done[58]
            assert not await r.open_at_venue("a") and not await r.open_at_venue("b")
            await c.order("s3", qty="0.1", price="97000.05", tif="1")
            await c.er(t11="s3", t39="8")
    run(body())


def test_the_books_are_released_once_no_routed_order_of_the_symbol_is_open(
        tmp_path: Path) -> None:
    """Watched from the first routed order of the symbol; kept while one is open (a resting
    GTC) however long; released once none has been open for ``book_keep`` seconds (the
    router's clock, looked at as its timer would); watched again by the next routed order."""
    now = [1000.0]
    made: list[SmartRouter] = []

    def router(children: Any) -> SmartRouter:
        made.append(SmartRouter(children, book_keep=600, clock=lambda: now[0]))
        return made[-1]

    async def body() -> None:
        async with _runs(tmp_path, strategies={SOR: router}) as r:
            feeds = cast(FeedView, r.orders.children.market).feeds

            def watched() -> set[str]:
                return {v for v in ("a", "b") if feeds.book(v, BTC) is not None}

            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="90000", tif="1")  # under the asks: rests
            await c.er(t11="s1", t39="0")
            assert watched() == {"a", "b"}
            for _ in range(3):
                now[0] += 10_000
                made[0].release_idle()
            assert watched() == {"a", "b"}  # an open routed order holds them
            await c.cancel("s1c", "s1", qty="0.1")
            await c.er(t11="s1c", t39="6")
            await c.er(t11="s1c", t39="4", t150="4", t41="s1")
            made[0].release_idle()  # finds none open: idle from now
            now[0] += 599
            made[0].release_idle()
            assert watched() == {"a", "b"}
            now[0] += 1
            made[0].release_idle()
            assert watched() == set()

            await c.order("s2", qty="0.1", price="97000.05", tif="1")
            await c.er(t11="s2", t39="0")
            fill = await c.er(t11="s2", t150="F", t39="2")
            assert fill[30] == "b"  # routed on b's book, watched again
            assert watched() == {"a", "b"}
    run(body())


def test_the_router_looks_for_idle_books_on_its_own_timer(tmp_path: Path) -> None:
    """The same on the real clock, the router's own timer doing the looking: an IOC routed
    and filled, its books released once idle for ``book_keep`` (0.2 s); a routed TWAP's
    parent holds them across its slices (each routed through ``split``) while it works."""
    made: list[SmartRouter] = []

    def router(children: Any) -> SmartRouter:
        made.append(SmartRouter(children, book_keep=0.2))
        return made[-1]

    async def body() -> None:
        strategies = {SOR: router, TWAP: functools.partial(Twap, slice_seconds=0.5)}
        async with _runs(tmp_path, strategies=strategies) as r:
            feeds = cast(FeedView, r.orders.children.market).feeds

            def watched() -> set[str]:
                return {v for v in ("a", "b") if feeds.book(v, BTC) is not None}

            c = await r.client("C1")
            await c.order("s1", qty="0.1", price="97000.05", tif="3")  # IOC
            await c.er(t11="s1", t39="0")
            await c.er(t11="s1", t150="F", t39="2")
            assert watched() == {"a", "b"}
            await until(lambda: not watched(), within=5)

            end = time.time_ns() + 1_500_000_000
            end -= end % 1_000_000
            stamp = datetime.fromtimestamp(end / 1e9, UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
            await c.order("t1", qty="0.6", price="97000.05", tif="1",
                          extra=[(847, TWAP), (126, stamp)])
            await c.er(t11="t1", t39="0")
            fill = await c.er(t11="t1", t150="F")  # the first slice: its books watched
            books = [feeds.book(v, BTC) for v in ("a", "b")]
            assert None not in books
            for _ in range(2):  # the next slices 0.5 s apart, each gap longer than book_keep
                fill = await c.er(t11="t1", t150="F")
                assert fill[30] == "b"
                # the same books all along: not released and watched afresh in a gap
                assert all(feeds.book(v, BTC) is b for v, b in zip("ab", books, strict=True))
            assert fill[39] == "2"
            await until(lambda: not watched(), within=5)
    run(body())


def test_a_watch_canceled_midway_holds_no_feed() -> None:
    """FeedView.watch counts its watcher before it waits for the feed's first book: canceled
    while it waits (the router's watches are tasks), it gives its count back, and the feed it
    started is stopped."""
    from types import SimpleNamespace

    from connectors.base import Capabilities
    from gateway.marketdata.feeds import MarketData
    from gateway.positions.balance_book import BalanceBook

    class Venue:  # lists the symbol, and never sends a book
        name = "v"
        capabilities = Capabilities(market_data=True)

        async def instruments(self) -> list[Any]:
            return [SimpleNamespace(symbol=BTC)]

        async def market_data(self, symbol: str) -> Any:
            await asyncio.Event().wait()
            yield None

    async def body() -> None:
        conn: Any = Venue()
        feeds = MarketData({"v": conn}, first_snapshot_s=30)
        view = FeedView(feeds, BalanceBook({"v": conn}), {})
        task = asyncio.get_running_loop().create_task(view.watch("v", BTC))
        await until(lambda: feeds.book("v", BTC) is not None)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feeds.book("v", BTC) is None  # the count given back, the feed stopped
        assert await view.watch("v", "ETH/USDT") is False  # no such book: False, as before
        await feeds.close()
    run(body())
