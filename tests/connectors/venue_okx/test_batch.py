"""docs-v5 "Trade / Place multiple orders" (POST /api/v5/trade/batch-orders): OkxConnector's
place_batch against the OKX emulator over loopback -- chunks of 20, one outcome per order
(``code`` "0" all placed, "2" some, "1" none, each order with its ``sCode``), a timed-out
request making each of its orders ambiguous, resolved by query."""

from __future__ import annotations

from typing import Any

from connectors.base import (
    OrderAccepted,
    RejectReason,
    TimeInForce,
    VenueAmbiguous,
    VenueRejected,
    VenueStatus,
)
from connectors.okx import schemas

from .helpers import limit_buy, run, venue

BATCH = ("POST", "/api/v5/trade/batch-orders")


def _answers(emu: Any) -> int:
    return int(emu.core.requests.count(BATCH))


def test_twenty_five_go_in_two_requests_answered_in_order() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            assert conn.capabilities.batch_place
            reqs = [limit_buy(f"fgwa{n:02}", price=str(90000 - n)) for n in range(25)]
            out = await conn.place_batch(reqs)
            assert [type(o) for o in out] == [OrderAccepted] * 25
            assert [o.client_order_id for o in out] == [r.client_order_id for r in reqs]
            assert all(isinstance(o, OrderAccepted) and o.venue_order_id for o in out)
            assert _answers(emu) == 2  # 20 + 5 ("Maximum 20 orders can be placed in bulk")
            assert len(emu.core.exchange.open_orders()) == 25
            assert set(conn.tracked) == {r.client_order_id for r in reqs}
            assert await conn.place_batch([]) == []

    run(go())


def test_partial_failure_each_order_its_own_outcome() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            out = await conn.place_batch([
                limit_buy("fgwgood"),
                limit_buy("fgwpoor", qty="1000"),  # 96M USDT, far more than the account has
                limit_buy("fgwodd", price="96000.001"),  # off the tick
                limit_buy("fgwgood"),  # a clOrdId twice in one request
                limit_buy("fgwtif", time_in_force=TimeInForce.DAY),  # refused before it is sent
            ])
            assert isinstance(out[0], OrderAccepted)
            assert isinstance(out[1], VenueRejected)
            assert out[1].reason is RejectReason.INSUFFICIENT_BALANCE and "51008" in out[1].text
            assert isinstance(out[2], VenueRejected)
            assert out[2].reason is RejectReason.PRICE_FILTER
            assert isinstance(out[3], VenueRejected)
            assert out[3].reason is RejectReason.DUPLICATE_ORDER
            assert isinstance(out[4], VenueRejected)
            assert out[4].reason is RejectReason.UNSUPPORTED
            assert [o.client_order_id for o in emu.core.exchange.orders()] == ["fgwgood"]
            assert set(conn.tracked) == {"fgwgood"}
            assert _answers(emu) == 1  # the day order never left

            # every order refused: the envelope's code is "1", each order still says why
            out = await conn.place_batch([limit_buy("fgwp1", qty="1000"),
                                          limit_buy("fgwp2", qty="2000")])
            assert [o.reason for o in out if isinstance(o, VenueRejected)] == [
                RejectReason.INSUFFICIENT_BALANCE] * 2

    run(go())


def test_timed_out_request_is_ambiguous_for_each_order_and_resolved_by_query() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            emu.core.faults.timeout_next = 1  # the orders are placed; the answer never comes
            out = await conn.place_batch([limit_buy("fgwt1"), limit_buy("fgwt2")])
            assert [type(o) for o in out] == [VenueAmbiguous] * 2
            for cid in ("fgwt1", "fgwt2"):  # Invariant 3: asked, never taken for refused
                state = await conn.query_order("BTC/USDT", cid)
                assert state is not None and state.status is VenueStatus.NEW
            assert set(conn.tracked) == {"fgwt1", "fgwt2"}
            # an answer that leaves an order out: that order is ambiguous, not refused
            env = schemas.ACKS.decode(
                b'{"code":"0","msg":"","data":[{"clOrdId":"fgwx1","ordId":"1","tag":"",'
                b'"ts":"1","sCode":"0","sMsg":"","subCode":""}]}')
            calls = []

            async def answer(*args: Any, **kw: Any) -> Any:
                calls.append(kw["body"])
                return None, env

            conn._call = answer  # type: ignore[method-assign]
            out = await conn.place_batch([limit_buy("fgwx1"), limit_buy("fgwx2"),
                                          limit_buy("fgwx3")])
            assert isinstance(out[0], OrderAccepted)
            assert [type(o) for o in out[1:]] == [VenueAmbiguous] * 2
            assert len(calls) == 1 and len(calls[0]) == 3

    run(go())


def test_more_than_twenty_in_one_request_is_refused_whole() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            bodies = [conn._order_body(limit_buy(f"fgwz{n:02}"))[1] for n in range(21)]
            _, env = await conn._call("POST", "/api/v5/trade/batch-orders", schemas.ACKS,
                                      body=bodies, cost={}, mutating=True)
            assert env.code == "51111" and env.data == []
            assert list(emu.core.exchange.orders()) == []

    run(go())

