"""VWAP (TargetStrategy 847=1) on the paper venue: a parent worked in buckets that follow a
volume profile over windows of one to three seconds. The profile's shape, the bucket sizes on
the lot grid (merged when too small), fills that follow the profile within one bucket, the
average price against the market's VWAP over the window, refusals, cancel, the end, a child
rejected or filled late, the kill switch and cancel-on-disconnect, and a restart that never
sends a bucket twice.

The waits are reads of the next message, or bounded polls of a condition; the end time of a
VWAP is waited for with a bound."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from server.fixclient import FixMessage, Value
from server.harness import run

from connectors.base import Instrument, PublicTrade, Side
from connectors.paper.market import BTC_USDT
from gateway.app import build_gateway, configured
from gateway.config import ConfigError, load_config
from gateway.orders.scheduled import Plan
from gateway.orders.slicing import minimum_quantity
from gateway.orders.vwap import DAY_NS, VWAP, VolumeProfile, Vwap, VwapSchedule, plan
from gateway.store.store import SessionStore

from .support import (
    BTC,
    D,
    OrderClient,
    Run,
    config,
    consistent,
    restart,
    running,
    session,
    sid,
    until,
    venue,
    venue_survives,
)
from .test_twap import _NS, _fixtime, _marketable, _ms, _orders
from .test_twap_holds import _parent

FAST = {VWAP: functools.partial(Vwap, bucket_seconds=0.5)}
"""One bucket per half second of the window, the profile flat."""

SHAPE_PERIOD = 1_600_000_000
"""A profile over 1.6 s in four bins of 0.4 s, weights 1, 3, 0, 4 (a "day" short enough to
test): a window of one period in buckets of 0.4 s sends 1/8, 3/8, nothing, then 4/8."""
SHAPE = VolumeProfile((D(1), D(3), D(0), D(4)), SHAPE_PERIOD)


async def _vwap(c: OrderClient, cl: str, *, qty: str, price: Decimal | str | None,
                seconds: float, start_ns: int | None = None,
                extra: Iterable[tuple[int, Value]] = ()) -> tuple[int | None, int]:
    """A VWAP buy over ``seconds`` from now (or from ``start_ns``); returns (start, end) as
    sent. ``price`` None: a market order."""
    now = time.time_ns()
    start = None if start_ns is None else _ms(start_ns)
    end = _ms((start or now) + int(seconds * _NS))
    fields: list[tuple[int, Value]] = [(847, VWAP), (126, _fixtime(end)), *extra]
    if start is not None:
        fields.append((168, _fixtime(start)))
    if price is None:
        await c.order(cl, qty=qty, ord_type="1", tif="1", extra=fields)
    else:
        await c.order(cl, qty=qty, price=price, tif="1", extra=fields)
    return start, end


async def done(c: OrderClient, order_id: str, within: float) -> FixMessage:
    """The ExecutionReport that ends order ``order_id`` (37: Filled, Canceled, Expired), the
    reports before it read."""
    deadline = time.monotonic() + within
    while True:
        m = await c.er(t37=order_id, timeout=max(0.1, deadline - time.monotonic()))
        if m[39] in ("2", "4", "C"):
            return m


def _bucket_of(p: Plan, ns: int) -> int:
    return min(p.slices - 1, (ns - p.start_ns) // p.interval_ns)


# ---- the profile and the bucket sizes, without a gateway -------------------------------------


def test_a_flat_profile_is_the_time_elapsed() -> None:
    flat = VolumeProfile()
    start, end = 5 * DAY_NS + 3 * _NS, 5 * DAY_NS + 13 * _NS
    assert flat.fraction(start, end, start) == 0 and flat.fraction(start, end, end) == 1
    assert flat.fraction(start, end, start + 4 * _NS) == D("0.4")
    assert flat.fraction(start, end, start - _NS) == 0 and flat.fraction(start, end, end + 1) == 1


def test_hourly_weights_shape_the_fraction_across_hours_and_days() -> None:
    hourly = VolumeProfile(tuple(D(2) if h == 10 else D(1) for h in range(24)))
    hour = DAY_NS // 24
    day = 20_000 * DAY_NS  # some UTC midnight
    # 09:30 to 10:30: half an hour of weight 1, then half an hour of weight 2
    start, end = day + 9 * hour + hour // 2, day + 10 * hour + hour // 2
    assert hourly.fraction(start, end, day + 10 * hour) == D(1) / D(3)
    assert hourly.fraction(start, end, day + 10 * hour + hour // 4) == D(2) / D(3)
    # across midnight: the curve repeats every day
    assert hourly.cumulative(day + DAY_NS) - hourly.cumulative(day) == 25
    assert hourly.cumulative(day + DAY_NS + 11 * hour) - hourly.cumulative(day) == 25 + 12


def test_a_window_without_expected_volume_is_worked_flat() -> None:
    quiet_night = VolumeProfile(tuple(D(0) if h < 6 else D(1) for h in range(24)))
    start = 20_000 * DAY_NS + 3600 * _NS
    end = start + 3600 * _NS
    assert quiet_night.fraction(start, end, start + 900 * _NS) == D("0.25")


def test_a_profile_from_recorded_volumes_sums_them_per_bin() -> None:
    hour = DAY_NS // 24
    day = 20_000 * DAY_NS
    points = [(day + 10 * hour + 5, D("3")), (day + 10 * hour + hour - 1, D("1")),
              (day + DAY_NS + 10 * hour, D("2")), (day + 23 * hour, D("4"))]
    p = VolumeProfile.from_volumes(points)
    assert p.weights[10] == 6 and p.weights[23] == 4 and sum(p.weights) == 10
    with pytest.raises(ValueError, match="add up to nothing"):
        VolumeProfile.from_volumes([(day, D(0))])
    for bad in ((), (D(-1), D(2)), (D(0), D(0))):
        with pytest.raises(ValueError):
            VolumeProfile(bad)


def _sizes(qty: str, buckets: int, profile: VolumeProfile, inst: Instrument,
           price: Decimal | None) -> list[Decimal]:
    """The children of a VWAP of ``qty`` whose children all fill, one list per bucket."""
    o = _parent(strategy=VWAP, quantity=D(qty))
    p = Plan("1", 0, buckets * _NS, buckets)
    schedule, left, out = VwapSchedule(profile), D(qty), []
    for i in range(buckets):
        sizes = schedule.quantities(o, p, i, left, inst, price)
        out.append(sum(sizes, D(0)))
        left -= sum(sizes, D(0))
    return out


def test_bucket_sizes_follow_the_profile_on_the_lot_grid() -> None:
    lots = Instrument("X/USDT", "X-USDT", "X", "USDT", lot_size=D("1"), min_qty=D("1"))
    shape = VolumeProfile((D(1), D(3), D(0), D(4)), 4 * _NS)
    assert _sizes("8", 4, shape, lots, None) == [1, 3, 0, 4]
    # a quantity smaller than the number of buckets: nothing lost, nothing under a lot
    assert _sizes("3", 5, VolumeProfile(), lots, None) == [0, 1, 0, 1, 1]
    # under the venue's minimum notional (0.00006 BTC at 97100): merged into later buckets
    price = D("97100")
    assert minimum_quantity(BTC_USDT, price) == D("0.00006")
    got = _sizes("0.00013", 5, VolumeProfile(), BTC_USDT, price)
    assert got == [0, 0, D("0.00007"), 0, D("0.00006")]
    # a child never leaves less than the minimum behind it (it could never be sent)
    got = _sizes("0.00012", 5, VolumeProfile(), BTC_USDT, price)
    assert got == [0, 0, D("0.00006"), 0, D("0.00006")]


def test_what_does_not_fit_a_vwap_is_refused_before_it_is_worked() -> None:
    from gateway.orders.scheduled import BadParameters
    with pytest.raises(BadParameters, match="needs its end time in ExpireTime"):
        plan(_parent(strategy=VWAP, expire_time_ns=None))
    with pytest.raises(BadParameters, match="Slices is not a VWAP parameter"):
        plan(_parent(strategy=VWAP, strategy_parameters={"Slices": "4"}))


# ---- at the paper venue ----------------------------------------------------------------------


def test_a_vwap_fills_along_its_profile_within_a_bucket(tmp_path: Path) -> None:
    """Weights 1, 3, 0, 4 over one period: children of 1/8, 3/8 and 4/8 of the order, each
    sent and filled within its bucket, nothing in the bucket of weight 0; the cumulative fills
    at each bucket's end are the profile's target."""
    strategies = {VWAP: functools.partial(Vwap, profile=SHAPE, bucket_seconds=0.4)}

    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=strategies) as r:
            c = await r.client("C1")
            # the window is one period of the profile, from a period boundary
            start = (time.time_ns() + _NS // 5 + SHAPE_PERIOD) // SHAPE_PERIOD * SHAPE_PERIOD
            await _vwap(c, "v1", qty="0.008", price=_marketable(r), seconds=1.6,
                        start_ns=start)
            new = await c.er(t11="v1", t39="0", t151="0.008")
            fills = [await c.er(t11="v1", t150="F", t37=new[37], timeout=4) for _ in range(3)]
            assert [D(f[32]) for f in fills] == [D("0.001"), D("0.003"), D("0.004")]
            assert fills[-1][39] == "2"
            for m in (new, *fills):
                consistent(m)
            every, children = await _orders(r.store)
            p = plan(every[new[37]], 0.4)
            assert p.slices == 4 and p.start_ns == start
            assert [_bucket_of(p, ch.created_ns) for ch in children] == [0, 1, 3]
            assert [_bucket_of(p, ch.updated_ns) for ch in children] == [0, 1, 3]  # filled
            cum = D(0)
            for i, target in enumerate((D("0.001"), D("0.004"), D("0.004"), D("0.008"))):
                cum += sum((ch.cum_qty for ch in children
                            if _bucket_of(p, ch.updated_ns) == i), D(0))
                assert cum == target, i
            assert every[new[37]].strategy_step == 4
    run(body())


async def _market_trades(r: Run, into: list[tuple[int, PublicTrade]]) -> None:
    """Every public trade of BTC/USDT at the paper venue, with when it was received."""
    feed = r.venue().market_data(BTC)
    try:
        async for ev in feed:
            if isinstance(ev, PublicTrade):
                into.append((time.time_ns(), ev))
    finally:
        await feed.aclose()


TRACKING_BP = 5
"""The VWAP's average price is within this many basis points of the market's VWAP over its
window, ours included (a market of 20 synthetic trades a second of 0.01 BTC on average, the mid
moving 0.2 bp a tick, 20 ticks a second; the venue's seed 1: measured 0.25 bp, the same every
run; scripts/bench_algos.py measures 0.04-0.22 bp over 20 s on seeds 1-3)."""


def test_a_vwap_smaller_than_its_buckets_sends_fewer_children(tmp_path: Path) -> None:
    """0.00012 BTC in five buckets: a fifth is under the minimum notional (0.00006 at the
    price), so the buckets merge into two children of the minimum; all of it fills."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            price = _marketable(r)
            await _vwap(c, "v1", qty="0.00012", price=price, seconds=2.5)
            new = await c.er(t11="v1", t39="0")
            fills = [await c.er(t11="v1", t150="F") for _ in range(2)]
            assert [D(f[32]) for f in fills] == [D("0.00006")] * 2 and fills[-1][39] == "2"
            every, children = await _orders(r.store)
            assert [ch.quantity for ch in children] == [D("0.00006")] * 2
            assert minimum_quantity(BTC_USDT, price) == D("0.00006")
            assert every[new[37]].strategy_step == 5
    run(body())


def test_a_vwaps_average_price_tracks_the_markets_vwap(tmp_path: Path) -> None:
    market = {"symbol": BTC, "trade_rate": "1", "trade_size": "0.01"}
    venues = [venue(tick_interval=0.05, market=[market])]
    strategies = {VWAP: functools.partial(Vwap, bucket_seconds=0.25)}

    async def body() -> None:
        async with running(tmp_path, [session("C1")], venues, strategies=strategies) as r:
            trades: list[tuple[int, PublicTrade]] = []
            reader = asyncio.get_running_loop().create_task(_market_trades(r, trades))
            c = await r.client("C1")
            mid = r.venue().exchange.market(BTC).mid
            cap = (mid * D("1.01")).quantize(D("0.01"))
            start, end = await _vwap(c, "v1", qty="0.02", price=cap, seconds=3.0,
                                     start_ns=time.time_ns() + _NS // 5)
            assert start is not None
            new = await c.er(t11="v1", t39="0")
            last = await done(c, new[37], 6)
            assert last[39] == "2"
            await until(lambda: bool(trades) and trades[-1][0] >= end, 3)
            reader.cancel()
            window = [t for at, t in trades if start <= at <= end]
            volume = sum((t.size for t in window), D(0))
            market_vwap = sum((t.price * t.size for t in window), D(0)) / volume
            ours = D(last[6])
            error_bp = abs(ours - market_vwap) / market_vwap * 10_000
            print(f"VWAP {ours} vs market VWAP {market_vwap:.2f} over {len(window)} trades: "
                  f"{error_bp:.2f} bp")
            assert error_bp < TRACKING_BP
            assert volume > D("0.1")  # the market traded (ours is 0.02 of it)
    run(body())


def test_a_vwap_without_a_proper_window_or_with_parameters_is_rejected(tmp_path: Path) -> None:
    async def body() -> None:
        begin = "FIXT.1.1"
        async with running(tmp_path, [session("C1"), session("C2", begin)],
                           strategies=FAST) as r:
            c = await r.client("C1")
            await c.order("a", price="90000", tif="1", extra=[(847, VWAP)])
            m = await c.er(t11="a", t39="8", t150="8", t103="99")
            assert "a VWAP needs its end time in ExpireTime (126)" in m[58]
            now = time.time_ns()
            await c.order("b", price="90000", tif="1", extra=[(847, VWAP),
                                                                (126, _fixtime(now - _NS))])
            assert "in the past" in (await c.er(t11="b", t39="8"))[58]
            await _vwap(c, "c", qty="0.002", price="90000", seconds=2,
                        extra=[(849, "0.1")])
            m = await c.er(t11="c", t39="8")
            assert "ParticipationRate is not a VWAP parameter (it takes none)" in m[58]
            await c.order("d", price="90000", tif="3",
                          extra=[(847, VWAP), (126, _fixtime(now + 2 * _NS))])
            assert "a VWAP cannot be TimeInForce" in (await c.er(t11="d", t39="8"))[58]
            await c.order("e", ord_type="3", stop="99000", tif="1",
                          extra=[(847, VWAP), (126, _fixtime(now + 2 * _NS))])
            assert "a VWAP is a market or limit order" in (await c.er(t11="e", t39="8"))[58]
            c2 = await r.client("C2", begin)
            slices = [(957, "1"), (958, "Slices"), (959, "1"), (960, "4")]
            await _vwap(c2, "f", qty="0.002", price="90000", seconds=2, extra=slices)
            m = await c2.er(t11="f", t39="8")
            assert "Slices is not a VWAP parameter" in m[58]
            await c.quiet()
            assert await r.open_at_venue() == []
    run(body())


def test_a_vwap_is_replaced_then_cancelled_midway(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _vwap(c, "v1", qty="0.005", price="90000", seconds=2.5)
            new = await c.er(t11="v1", t39="0")
            await until(lambda: len(r.orders.book.children(r.orders.orders[new[37]])) >= 2)
            # a replace: its children cancelled, the parent Replaced, worked on from it
            await c.replace("v2", "v1", qty="0.006", price="90000", extra=[(59, "1")])
            await c.er(t11="v2", t39="E")
            await c.er(t11="v2", t41="v1", t150="5", t38="0.006", t37=new[37])
            await c.cancel("v3", "v2", qty="0.006")
            await c.er(t11="v3", t41="v2", t39="6", t150="6")
            gone = await c.er(t11="v3", t41="v2", t39="4", t150="4", t37=new[37])
            assert "VWAP canceled" in gone[58]
            assert await r.open_at_venue() == []
            _, sent = await _orders(r.store)
            await c.quiet(max(0.3, (end - time.time_ns()) / _NS + 0.3))
            _, children = await _orders(r.store)
            assert len(children) == len(sent) and len(children) >= 2
            assert all(ch.status.value == "4" for ch in children)
    run(body())


def test_at_its_end_a_vwap_cancels_what_rests_and_expires_with_what_filled(
    tmp_path: Path,
) -> None:
    """A market VWAP whose first child fills; a limit far from the market rests until the
    end, when it is cancelled and the parent Expired saying how much filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            _, end = await _vwap(c, "v1", qty="0.004", price="90000", seconds=2.0)
            new = await c.er(t11="v1", t39="0")
            done = await c.er(t11="v1", t39="C", t150="C", t37=new[37], timeout=5)
            assert time.time_ns() >= end
            assert "VWAP ended at its ExpireTime: 0 of 0.004 filled" in done[58]
            _, children = await _orders(r.store)
            assert [ch.quantity for ch in children] == [D("0.001")] * 4
            assert await r.open_at_venue() == []
            # a market VWAP: children are market orders IOC, and it fills
            await _vwap(c, "v2", qty="0.002", price=None, seconds=1.0)
            await c.er(t11="v2", t39="0")
            fills = [await c.er(t11="v2", t150="F") for _ in range(2)]
            assert fills[-1][39] == "2"
            every, children = await _orders(r.store)
            assert [ch.type.value for ch in children[-2:]] == ["market"] * 2
            assert [ch.time_in_force.value for ch in children[-2:]] == ["ioc"] * 2
    run(body())


def test_a_rejected_child_gives_its_quantity_to_the_later_buckets(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            r.venue().update_faults(reject_next=1)
            await _vwap(c, "v1", qty="0.004", price=_marketable(r), seconds=2.0)
            await c.er(t11="v1", t39="0")
            fills = [await c.er(t11="v1", t150="F") for _ in range(3)]
            assert [D(f[32]) for f in fills] == [D("0.002"), D("0.001"), D("0.001")]
            assert fills[-1][39] == "2"
            _, children = await _orders(r.store)
            assert [ch.status.value for ch in children] == ["8", "2", "2", "2"]
    run(body())


def test_a_fill_after_a_childs_cancel_is_counted(tmp_path: Path) -> None:
    """At the end the child's cancel is slow to reach the venue; meanwhile the market fills
    half of it: the parent is Expired with that half filled."""
    async def body() -> None:
        async with running(tmp_path, [session("C1")], strategies=FAST) as r:
            c = await r.client("C1")
            book = r.venue().exchange.book(BTC)
            bid = book.best_bid()
            assert bid is not None
            price = bid + D("0.01")  # the best bid: an outside seller takes it first
            await _vwap(c, "v1", qty="0.002", price=price, seconds=1.0)
            new = await c.er(t11="v1", t39="0")
            parent = r.orders.orders[new[37]]
            await until(lambda: sum(ch.quantity for ch in r.orders.book.children(parent)
                                    if ch.status.value == "0") == D("0.002"))
            v = r.venue()
            v.update_faults(latency_s=0.3)
            await until(lambda: any(ch.pending is not None
                                    for ch in r.orders.book.children(parent)), 3)
            v.exchange.trade_against(BTC, Side.SELL, D("0.001"), price, time.time_ns())
            v._publish()
            fill = await c.er(t11="v1", t150="F", t37=new[37])
            assert D(fill[32]) == D("0.001")
            done = await c.er(t11="v1", t39="C", t150="C", timeout=5)
            assert D(done[14]) == D("0.001") and "0.001 of 0.002 filled" in done[58]
    run(body())


def test_a_vwap_resumes_after_a_restart_without_sending_a_bucket_twice(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("C1")]
        try:
            async with running(tmp_path, sessions, store=store, strategies=FAST) as r:
                c = await r.client("C1")
                _, end = await _vwap(c, "v1", qty="0.006", price="90000", seconds=3.0)
                new = await c.er(t11="v1", t39="0")
                await until(lambda: len(r.orders.book.children(r.orders.orders[new[37]])) >= 2)
                opened = await r.open_at_venue()
                await c.logout()
                venue_survives(r)
                first = r
            gw = restart(first, store, sessions, strategies=FAST)
            host, port = await gw.start()
            try:
                orders = gw.orders
                assert orders is not None
                parent = orders.orders[new[37]]
                assert parent.strategy_step >= 2
                adopted = {ch.venue_client_order_id for ch in orders.book.children(parent)}
                assert set(opened) <= adopted
                c = await OrderClient.connect(host, port, sender="C1", begin="FIX.4.4",
                                              next_seq=first.clients[0].next_seq)
                assert isinstance(c, OrderClient)
                await c.logon(reset=False)
                done = await c.er(t11="v1", t39="C", t150="C", t37=new[37], timeout=6)
                assert time.time_ns() >= end and "VWAP ended" in done[58]
                await until(orders.book.empty)
                await asyncio.wait_for(orders.idle(), 5)
                await c.close()
            finally:
                await gw.stop()
            every, children = await _orders(store)
            assert len(children) == 6 and every[new[37]].strategy_step == 6
            assert len({ch.venue_client_order_id for ch in children}) == 6
            assert [ch.quantity for ch in children] == [D("0.001")] * 6
        finally:
            await store.close()
    run(body())


def test_kill_switch_and_cancel_on_disconnect_cancel_a_vwap(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("C1"), session("C2", cancel_on_disconnect="disconnect")]
        async with running(tmp_path, sessions, strategies=FAST) as r:
            c = await r.client("C1")
            await _vwap(c, "v1", qty="0.004", price="90000", seconds=3)
            new = await c.er(t11="v1", t39="0")
            await until(lambda: len(r.orders.book.children(r.orders.orders[new[37]])) >= 1)
            await r.orders.kill_switch(sid("C1"), True, "test")
            gone = await c.er(t11="v1", t39="4", timeout=5)
            assert "VWAP canceled" in gone[58]

            c2 = await r.client("C2")
            await _vwap(c2, "w1", qty="0.004", price="90000", seconds=3)
            new = await c2.er(t11="w1", t39="0")
            await until(lambda: len(r.orders.book.children(r.orders.orders[new[37]])) >= 1)
            await c2.close()
            await r.logged_out(sid("C2"))
            await until(lambda: new[37] not in r.orders.orders)
            c2 = await r.reconnect(c2)
            gone = await c2.er(t11="w1", t39="4", timeout=5)
            assert gone[58].startswith("cancel on disconnect")
            assert await r.open_at_venue() == []
    run(body())


def test_the_gateway_offers_vwap_with_its_configured_profile(tmp_path: Path) -> None:
    volumes = tmp_path / "volumes.csv"
    volumes.write_text("timestamp,volume\n2026-11-20T10:15:00Z,30\n2026-11-20T11:15:00Z,10\n")
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[vwap]\nbucket_seconds = 30\nrecorded = "volumes.csv"\n')
    factory = configured(load_config(cfg_file))[VWAP]
    assert isinstance(factory, functools.partial)
    profile = factory.keywords["profile"]
    assert factory.keywords["bucket_seconds"] == 30
    assert profile.weights[10] == 30 and profile.weights[11] == 10 and len(profile.weights) == 24
    cfg_file.write_text('[vwap]\nprofile = ["1", "2"]\nprofile_period = 60\n')
    profile = configured(load_config(cfg_file))[VWAP].keywords["profile"]  # type: ignore[attr-defined]
    assert profile == VolumeProfile((D(1), D(2)), 60 * _NS)
    cfg_file.write_text('[vwap]\nrecorded = "absent.csv"\n')
    with pytest.raises(ConfigError, match=r"\[vwap\] recorded profile"):
        configured(load_config(cfg_file))
    cfg_file.write_text('[vwap]\nprofile = ["0"]\n')
    with pytest.raises(ConfigError, match="at least one above zero"):
        load_config(cfg_file)

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        gw = build_gateway(config([session("C1")]), store)
        await gw.start()
        try:
            assert gw.orders is not None
            assert {"1", "2", "1000"} <= set(gw.orders.new_orders.strategies)
        finally:
            await gw.stop()
            await store.close()
    run(body())

