"""Every injected fault, reproducible with the seed."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from connectors.base import (
    OrderAccepted,
    OrderFilled,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueEvent,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.paper import Faults, PaperConnector

from .helpers import SPOT, D, async_test, connector, limit

BUY, SELL = Side.BUY, Side.SELL


async def _trade(venue: PaperConnector, n: int, prefix: str = "o") -> list[VenueEvent]:
    """``n`` self-trades (4 events each: two OrderAccepted, two OrderFilled), drained."""
    for i in range(n):
        await venue.place(limit(f"{prefix}s{i}", SELL, "1", "100"))
        await venue.place(limit(f"{prefix}b{i}", BUY, "1", "100"))
    return venue.drain_nowait()


@async_test
async def test_reject_next_rejects_that_many_calls_and_changes_nothing() -> None:
    venue = connector(faults=Faults(reject_next=2))
    for call in (venue.place(limit("a", BUY, "1", "99")), venue.cancel_all()):
        with pytest.raises(VenueRejected) as info:
            await call
        assert (info.value.reason, info.value.text) == (RejectReason.OTHER, "injected")
    assert await venue.query_order(SPOT, "a") is None and venue.drain_nowait() == []
    await venue.place(limit("a", BUY, "1", "99"))  # the third call goes through
    venue.update_faults(reject_next=1)
    with pytest.raises(VenueRejected):
        await venue.cancel(SPOT, "a")
    assert (await venue.query_order(SPOT, "a")).status is VenueStatus.NEW  # type: ignore[union-attr]


async def _reject_pattern(seed: int) -> list[bool]:
    venue = connector(seed=seed, faults=Faults(reject_rate=0.5))
    out = []
    for i in range(40):
        try:
            await venue.place(limit(f"r{i}", BUY, "0.1", "99"))
            out.append(False)
        except VenueRejected:
            out.append(True)
    assert len(await venue.open_orders()) == out.count(False)
    return out


@async_test
async def test_reject_rate_is_reproducible_with_the_seed() -> None:
    first, again, other = (
        await _reject_pattern(1),
        await _reject_pattern(1),
        await _reject_pattern(2),
    )
    assert first == again and first != other
    assert 5 < sum(first) < 35


@async_test
async def test_timeout_accepted_places_the_order_and_a_retry_finds_it() -> None:
    venue = connector(faults=Faults(timeout_next=1, timeout_mode="accepted"))
    with pytest.raises(VenueAmbiguous):
        await venue.place(limit("t", BUY, "1", "99"))
    state = await venue.query_order(SPOT, "t")
    assert state is not None and state.status is VenueStatus.NEW
    assert [type(e) for e in venue.drain_nowait()] == [OrderAccepted]
    with pytest.raises(VenueRejected) as info:  # the gateway's retry with the same id
        await venue.place(limit("t", BUY, "1", "99"))
    assert info.value.reason is RejectReason.DUPLICATE_ORDER


@async_test
async def test_timeout_lost_places_nothing_and_a_retry_succeeds() -> None:
    venue = connector(faults=Faults(timeout_next=1, timeout_mode="lost"))
    with pytest.raises(VenueAmbiguous):
        await venue.place(limit("t", BUY, "1", "99"))
    assert await venue.query_order(SPOT, "t") is None and venue.drain_nowait() == []
    await venue.place(limit("t", BUY, "1", "99"))
    assert (await venue.query_order(SPOT, "t")).status is VenueStatus.NEW  # type: ignore[union-attr]


@async_test
async def test_timeout_on_cancel_in_both_modes() -> None:
    venue = connector()
    await venue.place(limit("a", BUY, "1", "99"))
    await venue.place(limit("b", BUY, "1", "98"))
    venue.update_faults(timeout_next=1, timeout_mode="lost")
    with pytest.raises(VenueAmbiguous):
        await venue.cancel(SPOT, "a")
    assert (await venue.query_order(SPOT, "a")).status is VenueStatus.NEW  # type: ignore[union-attr]
    venue.update_faults(timeout_next=1, timeout_mode="accepted")
    with pytest.raises(VenueAmbiguous):
        await venue.cancel(SPOT, "a")
    assert (await venue.query_order(SPOT, "a")).status is VenueStatus.CANCELED  # type: ignore[union-attr]
    venue.update_faults(timeout_next=1)
    with pytest.raises(VenueAmbiguous):
        await venue.cancel_all()
    assert await venue.open_orders() == []


@async_test
async def test_timeout_rate_is_reproducible() -> None:
    async def pattern(seed: int) -> list[bool]:
        venue = connector(seed=seed, faults=Faults(timeout_rate=0.3, timeout_mode="lost"))
        out = []
        for i in range(30):
            try:
                await venue.place(limit(f"x{i}", BUY, "0.1", "99"))
                out.append(False)
            except VenueAmbiguous:
                out.append(True)
        return out

    assert await pattern(3) == await pattern(3)
    assert any(await pattern(3))


@async_test
async def test_dropped_events_are_still_visible_through_queries() -> None:
    venue = connector(faults=Faults(drop_event_rate=1.0))
    await venue.place(limit("s", SELL, "1", "100"))
    await venue.place(limit("b", BUY, "1", "100"))
    assert venue.drain_nowait() == []
    assert (await venue.query_order(SPOT, "b")).status is VenueStatus.FILLED  # type: ignore[union-attr]
    assert [f.client_order_id for f in await venue.fills_since(0)] == ["s", "b"]
    venue.update_faults(drop_event_rate=0.5)
    events = await _trade(venue, 20)
    assert 0 < len(events) < 80


@async_test
async def test_duplicated_events_come_twice() -> None:
    venue = connector(faults=Faults(duplicate_event_rate=1.0))
    events = await _trade(venue, 2)
    assert len(events) == 16
    assert events[0::2] == events[1::2]  # each event immediately followed by its copy
    venue.update_faults(duplicate_event_rate=0.0)
    assert len(await _trade(venue, 2, "p")) == 8


@async_test
async def test_reorder_window_shuffles_within_the_window_and_tick_releases_the_rest() -> None:
    async def run(seed: int) -> tuple[list[VenueEvent], list[VenueEvent]]:
        plain = connector(seed=seed)
        venue = connector(seed=seed, faults=Faults(reorder_window=5))
        expected = await _trade(plain, 3)  # 12 events
        got = await _trade(venue, 3)
        assert len(got) == 10  # two windows of 5 released, 2 held
        venue.tick()
        got += venue.drain_nowait()
        return expected, got

    expected, got = await run(4)
    assert Counter(map(repr, got)) == Counter(map(repr, expected))
    assert got != expected
    for start in (0, 5):  # never moved out of its window
        assert Counter(map(repr, got[start : start + 5])) == Counter(
            map(repr, expected[start : start + 5])
        )
    assert (await run(4))[1] == got  # reproducible


@async_test
async def test_unavailable_refuses_every_call_until_cleared() -> None:
    venue = connector()
    await venue.place(limit("a", BUY, "1", "99"))
    venue.update_faults(unavailable=True)
    calls = [
        venue.place(limit("b", BUY, "1", "99")),
        venue.cancel(SPOT, "a"),
        venue.cancel_all(),
        venue.query_order(SPOT, "a"),
        venue.open_orders(),
        venue.fills_since(0),
        venue.balances(),
        venue.positions(),
        venue.instruments(),
    ]
    for call in calls:
        with pytest.raises(VenueUnavailable):
            await call
    health = await venue.health()
    assert not health.connected
    venue.update_faults(unavailable=False)
    assert (await venue.health()).connected
    assert [o.client_order_id for o in await venue.open_orders()] == ["a"]


@async_test
async def test_latency_delays_the_answer() -> None:
    venue = connector(faults=Faults(latency_s=0.05))
    placing = asyncio.create_task(venue.place(limit("a", BUY, "1", "99")))
    await asyncio.sleep(0)  # the call has started: it waits out the latency first
    assert not placing.done() and venue.exchange.order("a") is None
    await placing
    assert venue.exchange.order("a") is not None
    assert (await venue.health()).latency_ms == 50.0


def test_faults_are_validated() -> None:
    with pytest.raises(ValueError):
        Faults(reject_rate=1.5)
    with pytest.raises(ValueError):
        Faults(timeout_mode="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Faults(reorder_window=-1)


@async_test
async def test_faults_do_not_change_the_market() -> None:
    quiet = connector(levels=3, volatility="0.001")
    noisy = connector(
        levels=3, volatility="0.001", faults=Faults(reject_rate=0.5, drop_event_rate=0.5)
    )
    for i in range(10):
        quiet.tick(i)
        noisy.tick(i)
        assert quiet.exchange.market(SPOT).mid == noisy.exchange.market(SPOT).mid
    fills = [e for e in quiet.drain_nowait() if isinstance(e, OrderFilled)]
    assert fills == []
    assert quiet.exchange.book(SPOT).levels(BUY)[0][1] == D("1")
