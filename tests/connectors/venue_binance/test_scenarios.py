"""Failure scenarios: a fill while the stream is down, an ambiguous place, a 429 storm, a 418
ban, duplicated and reordered stream events, the dead-man switch (none on Binance spot)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from connectors.base import (
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.binance.signing import hmac_sha256_hex

from .helpers import CRED, running, wait_for

D = Decimal


def buy(coid: str, price: str = "96000", qty: str = "0.01") -> OrderRequest:
    return OrderRequest(coid, "BTC/USDT", Side.BUY, OrderType.LIMIT, D(qty), D(price))


def test_fill_while_stream_down_is_emitted_once_after_reconnect() -> None:
    async def main() -> None:
        async with running() as (emu, conn, events):
            await conn.place(buy("fgwS1"))
            emu.core.faults.streams_down = True
            assert await emu.drop_streams() == 1
            await wait_for(lambda: not conn.stream.connected.is_set())
            emu.core.trade_against("BTC/USDT", Side.SELL, D("6"), D("96000"))
            assert not events.of(OrderFilled)
            emu.core.faults.streams_down = False
            await wait_for(lambda: conn.stream.connects >= 2)
            await wait_for(lambda: len(events.of(OrderFilled)) == 1)
            reconciling = conn.stream._reconciling
            if reconciling is not None:
                await reconciling  # the catch-up is complete
            fills = events.of(OrderFilled)
            assert len(fills) == 1 and fills[0].client_order_id == "fgwS1"
            assert fills[0].quantity == D("0.01")
    asyncio.run(main())


def test_place_timeout_is_ambiguous_and_retry_makes_no_second_order() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _events):
            emu.core.faults.timeout_next = 1
            with pytest.raises(VenueAmbiguous):
                await conn.place(buy("fgwT1"))
            state = await conn.query_order("BTC/USDT", "fgwT1")
            assert state is not None and state.status is VenueStatus.NEW
            with pytest.raises(VenueRejected) as err:
                await conn.place(buy("fgwT1"))
            assert err.value.reason is RejectReason.DUPLICATE_ORDER
            assert [o.client_order_id for o in emu.core.exchange.orders()] == ["fgwT1"]
            assert "fgwT1" in conn.tracked
    asyncio.run(main())


@pytest.mark.parametrize("retry_after", [0, 1])
def test_429_storm_places_once_without_ban(retry_after: int) -> None:
    async def main() -> None:
        async with running() as (emu, conn, _events):
            n = 4 if retry_after == 0 else 2
            emu.core.faults.rate_limit_next = n
            emu.core.faults.retry_after_s = retry_after
            accepted = await conn.place(buy("fgwR1"))
            assert accepted.client_order_id == "fgwR1"
            assert len(list(emu.core.exchange.orders())) == 1
            assert emu.statuses.count(429) == n and 418 not in emu.statuses
            assert conn.rest.rate_limited == n and not conn.limiter.banned
    asyncio.run(main())


def test_ignoring_retry_after_earns_a_418_ban() -> None:
    async def main() -> None:
        async with running() as (emu, conn, _events):
            emu.core.faults.rate_limit_next = 1
            emu.core.faults.retry_after_s = 30
            statuses = []
            async with aiohttp.ClientSession() as s:
                for _ in range(4):  # a client that does not back off
                    q = f"timestamp={int(time.time() * 1000)}"
                    q += "&signature=" + hmac_sha256_hex(CRED.secret, q)
                    async with s.get(f"{emu.base_url}/api/v3/account?{q}",
                                     headers={"X-MBX-APIKEY": CRED.api_key}) as r:
                        statuses.append((r.status, r.headers.get("Retry-After")))
            assert [s for s, _ in statuses] == [429, 429, 429, 418]
            assert statuses[-1][1] == "120"
            with pytest.raises(VenueUnavailable):
                await conn.balances()
            assert conn.limiter.banned
            assert not (await conn.health()).connected
    asyncio.run(main())


def test_duplicated_and_reordered_events_emit_each_fill_once() -> None:
    async def main() -> None:
        async with running() as (emu, conn, events):
            emu.core.faults.duplicate_events = True
            emu.core.faults.reorder_events = True
            await conn.place(buy("fgwD1", qty="0.02"))
            emu.core.trade_against("BTC/USDT", Side.SELL, D("5.01"), D("96000"))
            emu.core.trade_against("BTC/USDT", Side.SELL, D("5.01"), D("96000"))
            await wait_for(lambda: len(events.of(OrderFilled)) == 2)
            await wait_for(lambda: conn.duplicates_dropped >= 2)
            fills = events.of(OrderFilled)
            assert len({f.trade_id for f in fills}) == 2
            assert sum(f.quantity for f in fills) == D("0.02")
            state = await conn.query_order("BTC/USDT", "fgwD1")
            assert state is not None and state.status is VenueStatus.FILLED
    asyncio.run(main())


def test_dead_man_switch_is_not_asked_for() -> None:
    """Binance spot has no dead-man switch (countdownCancelAll exists for USD-M futures only):
    with dead_man_s set the connector starts as usual and asks the venue for none."""
    async def main() -> None:
        async with running(dead_man_s=1.0) as (emu, conn, _events):
            assert (await conn.health()).connected
            assert {path for _, path in emu.core.requests} == {
                "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/rateLimit/order", "/ws-api/v3",
                "/api/v3/ticker/price"}
    asyncio.run(main())
