"""Batch Place / Batch Cancel Order (docs/v5/order/batch-place.mdx, batch-cancel.mdx):
BybitConnector against BybitEmulator over loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.base import (
    OrderAccepted,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    VenueAmbiguous,
    VenueRejected,
    VenueStatus,
)

from .helpers import pair, run

BTC = "BTC/USDT"
PERP = "BTC/USDT:USDT"


def bid(coid: str, qty: str = "0.01", price: str = "96000", symbol: str = BTC) -> OrderRequest:
    return OrderRequest(coid, symbol, Side.BUY, OrderType.LIMIT, Decimal(qty), Decimal(price))


def test_one_good_one_bad() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            assert c.info.capabilities.batch_place
            out = await c.place_batch([
                bid("good"),
                bid("poor", qty="1000"),  # 96M USDT of 10M
                bid("odd", qty="0.000001"),  # below one basePrecision step
            ])
            assert isinstance(out[0], OrderAccepted) and out[0].client_order_id == "good"
            assert out[0].venue_order_id and out[0].ts_ns > 0
            assert isinstance(out[1], VenueRejected)
            assert out[1].reason is RejectReason.INSUFFICIENT_BALANCE
            assert "170131" in out[1].text
            assert isinstance(out[2], VenueRejected)
            assert out[2].reason is RejectReason.LOT_FILTER
            assert [o.client_order_id for o in p.core.exchange.orders()] == ["good"]
            assert set(c.tracked) == {"good"}
            assert p.core.requests.count(("POST", "/v5/order/create-batch")) == 1
    run(go())


def test_fifteen_are_chunked_then_cancelled_in_batches() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            reqs = [bid(f"b{n:02}", price=str(96000 - n)) for n in range(15)]
            out = await c.place_batch(reqs)
            assert [type(o) for o in out] == [OrderAccepted] * 15
            assert [o.client_order_id for o in out] == [r.client_order_id for r in reqs]
            assert p.core.requests.count(("POST", "/v5/order/create-batch")) == 2
            assert len(p.core.exchange.open_orders()) == 15
            done = await c.cancel_batch(BTC, [r.client_order_id for r in reqs] + ["nope"])
            assert done == 15
            assert p.core.requests.count(("POST", "/v5/order/cancel-batch")) == 2
            assert p.core.exchange.open_orders() == []
            state = await c.query_order(BTC, "b07")
            assert state is not None and state.status is VenueStatus.CANCELED
    run(go())


def test_linear_batch_and_one_request_per_category() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            out = await c.place_batch([bid("p1", "0.01", symbol=PERP),
                                       bid("p2", "0.02", symbol=PERP)])
            assert all(isinstance(o, OrderAccepted) for o in out)
            assert await c.cancel_batch(PERP, ["p1", "p2"]) == 2
            # spot and linear orders of one call go in one request per category, answered
            # in the caller's order
            sent = p.core.requests.count(("POST", "/v5/order/create-batch"))
            out = await c.place_batch([bid("m1"), bid("m2", symbol=PERP), bid("m3")])
            assert [o.client_order_id for o in out if isinstance(o, OrderAccepted)] == [
                "m1", "m2", "m3"]
            assert p.core.requests.count(("POST", "/v5/order/create-batch")) == sent + 2
            assert await c.place_batch([]) == []
    run(go())


def test_batch_sizes_follow_the_category() -> None:
    # batch-place: "20 orders (linear), 10 orders (spot) can be placed per request"; the
    # create-batch window takes 10 linear orders a second, so the connector sends 10 at most
    from emulators.bybit import BybitError

    async def go() -> None:
        async with pair() as p:
            c = p.connector
            out = await c.place_batch([bid(f"l{n:02}", "0.001", str(96000 - n), PERP)
                                       for n in range(10)])
            assert [type(o) for o in out] == [OrderAccepted] * 10
            assert p.core.requests.count(("POST", "/v5/order/create-batch")) == 1
            body = {"category": "linear", "request": [{}] * 20}
            assert len(p.emulator._batch_items(body, True)[1]) == 20
            with pytest.raises(BybitError, match="at most 20"):
                p.emulator._batch_items({**body, "request": [{}] * 21}, True)
            with pytest.raises(BybitError, match="at most 10"):
                p.emulator._batch_items({**body, "category": "spot"}, True)
    run(go())


def test_timed_out_batch_is_ambiguous_and_the_orders_are_there() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            p.core.faults.timeout_next = 1
            out = await c.place_batch([bid("t1"), bid("t2"), bid("t3")])
            assert [type(o) for o in out] == [VenueAmbiguous] * 3  # each, not a reject
            for coid in ("t1", "t2", "t3"):
                state = await c.query_order(BTC, coid)
                assert state is not None and state.status is VenueStatus.NEW
            assert set(c.tracked) == {"t1", "t2", "t3"}
            again = await c.place_batch([bid("t1")])  # a retry does not place it twice
            assert isinstance(again[0], VenueRejected)
            assert again[0].reason is RejectReason.DUPLICATE_ORDER
            assert len(list(p.core.exchange.orders())) == 3
    run(go())


def test_orders_beyond_the_window_fail_one_by_one() -> None:
    # "Instructions for batch endpoints": with 3 left in the second, a batch of 5 places the
    # first 3 and the last 2 fail with "Too many visits!".
    async def go() -> None:
        async with pair() as p:
            p.emulator.limits["create_batch:spot"] = 3
            out = await p.connector.place_batch([bid(f"r{n}") for n in range(5)])
            assert [type(o) for o in out[:3]] == [OrderAccepted] * 3
            rejected = [o for o in out[3:] if isinstance(o, VenueRejected)]
            assert [r.reason for r in rejected] == [RejectReason.RATE_LIMIT] * 2
            assert sorted(o.client_order_id for o in p.core.exchange.orders()) == [
                "r0", "r1", "r2"]
    run(go())


def test_emulator_refuses_more_than_ten_per_request() -> None:
    async def go() -> None:
        async with pair() as p:
            c = p.connector
            items = [{k: v for k, v in c.order_body(bid(f"x{n}")).items() if k != "category"}
                     for n in range(11)]
            with pytest.raises(VenueRejected) as exc:
                await c._batch("/v5/order/create-batch", "spot", items)
            assert exc.value.text.startswith("10001 ")
            assert list(p.core.exchange.orders()) == []
    run(go())


def test_a_per_order_server_error_is_resolved_by_query_not_rejected() -> None:
    # 10016 "Server error." for one order of the batch: the venue does not know. The connector
    # asks for the order; found -> accepted; not found -> VenueAmbiguous, never a reject.
    from emulators.bybit import BybitError

    async def go() -> None:
        async with pair() as p:
            emu = p.emulator
            create = emu._create

            def flaky(item: dict[str, object]) -> object:
                if item.get("orderLinkId") == "lost":
                    raise BybitError(10016, "Server error.")
                out = create(item)  # type: ignore[arg-type]
                if item.get("orderLinkId") == "late":
                    raise BybitError(10016, "Server error.")
                return out

            emu._create = flaky  # type: ignore[method-assign]
            out = await p.connector.place_batch([bid("fine"), bid("late")])
            assert [type(o) for o in out] == [OrderAccepted, OrderAccepted]
            assert out[1].venue_order_id
            out = await p.connector.place_batch([bid("fine2"), bid("lost")])
            assert isinstance(out[0], OrderAccepted)
            assert isinstance(out[1], VenueAmbiguous) and "lost" in str(out[1])
            assert "lost" in p.connector.tracked
    run(go())
