"""Failure scenarios: a fill while the stream is down, an ambiguous place, a storm of 429s,
duplicated and reordered stream events, and the dead-man switch after a crash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueRejected,
    VenueStatus,
)
from connectors.okx import OkxConnector

from .helpers import Collector, limit_buy, run, venue, wait_for


def test_fill_while_stream_down_is_emitted_once_after_reconnect() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            await conn.place(limit_buy("fgwd1", "0.01", "96000"))
            await conn.place(limit_buy("fgwd2", "0.01", "90000"))
            await wait_for(lambda: len(col.of(OrderAccepted)) == 2)
            emu.core.faults.streams_down = True
            assert await emu.drop_streams() == 1
            emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("10"), Decimal("96000"))
            emu.core.run(lambda now: emu.core.exchange.cancel("BTC/USDT", "fgwd2", now))
            assert not col.of(OrderFilled)
            emu.core.faults.streams_down = False
            fills = await wait_for(lambda: col.of(OrderFilled))
            assert fills[0].quantity == Decimal("0.01")
            canceled = await wait_for(lambda: col.of(OrderCanceled))
            assert canceled[0].client_order_id == "fgwd2"
            await wait_for(lambda: emu.logins >= 2)
            # a second reconnect and catch-up must not repeat it
            await emu.drop_streams()
            await wait_for(lambda: emu.logins >= 3)
            await conn.after_reconnect()
            assert len(col.of(OrderFilled)) == 1 and len(col.of(OrderCanceled)) == 1
            assert len(emu.core.exchange.fills()) == 1
            await col.stop()

    run(go())


def test_ambiguous_place_is_resolved_by_query_and_never_doubled() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            emu.core.faults.timeout_next = 1
            req = limit_buy("fgwa1", "0.01", "95000")
            with pytest.raises(VenueAmbiguous):
                await conn.place(req)
            st = await conn.query_order("BTC/USDT", "fgwa1")
            assert st is not None and st.status is VenueStatus.NEW
            with pytest.raises(VenueRejected) as exc:
                await conn.place(req)
            assert exc.value.reason is RejectReason.DUPLICATE_ORDER
            assert [o.client_order_id for o in emu.core.exchange.orders()] == ["fgwa1"]
            assert "fgwa1" in conn.tracked

    run(go())


@pytest.mark.parametrize("retry_after", [0, 1])
def test_429_storm_places_exactly_once_without_a_ban(retry_after: int) -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            emu.core.faults.rate_limit_next = 3 if retry_after else 8
            emu.core.faults.retry_after_s = retry_after
            acc = await conn.place(limit_buy("fgwl1", "0.01", "95000"))
            assert acc.venue_order_id
            assert emu.rate_limited == (3 if retry_after else 8)
            assert [o.client_order_id for o in emu.core.exchange.orders()] == ["fgwl1"]
            assert not conn.limiter.banned and conn.rest.rate_limited == emu.rate_limited

    run(go())


def test_duplicate_and_reordered_events_give_each_fill_once() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            col = Collector(conn)
            emu.core.faults.duplicate_events = True
            emu.core.faults.reorder_events = True
            await conn.place(limit_buy("fgwu1", "0.03", "96000"))
            await conn.place(limit_buy("fgwu2", "0.02", "96000"))
            for _ in range(3):  # partial fills, several per change
                emu.core.trade_against("BTC/USDT", Side.SELL, Decimal("5.02"), Decimal("96000"))
            venue_fills = emu.core.exchange.fills()
            assert len(venue_fills) >= 3
            await wait_for(lambda: len(col.of(OrderFilled)) == len(venue_fills))
            await conn.after_reconnect()  # REST catch-up finds the same fills again
            ids = [f.trade_id for f in col.of(OrderFilled)]
            assert len(ids) == len(set(ids)) == len(venue_fills)
            assert conn.duplicates_dropped >= len(venue_fills)
            assert len(col.of(OrderAccepted)) == 2
            await col.stop()

    run(go())


class FastDeadMan(OkxConnector):
    DEAD_MAN_MIN_S = 1  # OKX's minimum is 10 s; the emulator is told to accept 1 s too


def test_dead_man_timeout_is_within_okx_range() -> None:
    async def go() -> None:
        async with venue(emulator_kw={"dead_man_min_s": 1}, dead_man_s=3) as (emu, conn):
            assert conn.dead_man_timeout_s() == 10  # OKX: 0 or 10..120 s
            assert conn.dead_man_refreshes == 1

    run(go())


def test_dead_man_switch_cancels_everything_after_a_crash() -> None:
    async def go() -> None:
        async with venue(emulator_kw={"dead_man_min_s": 1}, cls=FastDeadMan,
                         dead_man_s=3) as (emu, conn):
            assert conn.dead_man_timeout_s() == 3
            await conn.place(limit_buy("fgwk1", "0.01", "95000"))
            await conn.place(limit_buy("fgwk2", "0.01", "94000"))
            # refreshed while alive: nothing is cancelled past the first 3 s
            await wait_for(lambda: conn.dead_man_refreshes >= 4, within_s=6)
            assert len(emu.core.exchange.open_orders()) == 2 and emu.dead_man_fired == 0
            await conn.kill()  # a crash: no disarm, no refresh
            await wait_for(lambda: not emu.core.exchange.open_orders(), within_s=6)
            assert emu.dead_man_fired == 1
            states = [o.status for o in emu.core.exchange.orders()]
            assert states == [VenueStatus.CANCELED, VenueStatus.CANCELED]

    run(go())


def test_close_disarms_the_dead_man_switch() -> None:
    async def go() -> None:
        async with venue(emulator_kw={"dead_man_min_s": 1}, cls=FastDeadMan,
                         dead_man_s=3) as (emu, conn):
            await conn.place(limit_buy("fgwk3", "0.01", "95000"))
            await conn.close()
            assert emu._dead_man_deadline is None
            assert len(emu.core.exchange.open_orders()) == 1

    run(go())
