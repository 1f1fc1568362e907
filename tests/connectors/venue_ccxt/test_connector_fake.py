"""CcxtConnector over a fake ccxt exchange: capability flags, precision, exception mapping,
429 retries, polling with deduplication, the dead-man switch and the watch loop."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from venue_common.support import drain, run, until

from connectors.base import (
    AmendRequest,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderFilled,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueAmbiguous,
    VenueRejected,
    VenueStatus,
    VenueUnavailable,
)
from connectors.ccxt import KIND, CcxtConnector
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings

from .fake import FakeExchange


def settings(**kw: Any) -> VenueSettings:
    kw.setdefault("dead_man_s", None)
    return VenueSettings(name="fake", credentials=Credentials("key", "secret"), **kw)


async def started(fake: FakeExchange | None = None, *, options: dict[str, Any] | None = None,
                  **kw: Any) -> tuple[CcxtConnector, FakeExchange]:
    fake = fake or FakeExchange()
    opts = {"poll_interval_s": 3600, "events": "poll"}
    opts.update(options or {})
    conn = CcxtConnector(settings(**kw), "fake", opts, exchange=fake)
    await conn.start()
    return conn, fake


def limit(coid: str = "c1", qty: str = "0.01", price: str = "97000.5",
          **kw: Any) -> OrderRequest:
    return OrderRequest(coid, "BTC/USDT", Side.BUY, OrderType.LIMIT, Decimal(qty),
                        Decimal(price), **kw)


def test_kind_and_capabilities() -> None:
    assert KIND == "ccxt"
    conn = CcxtConnector(settings(), "fake", {"events": "poll"}, exchange=FakeExchange())
    caps = conn.capabilities
    assert caps.order_types == frozenset({OrderType.MARKET, OrderType.LIMIT})
    assert caps.time_in_force == frozenset({TimeInForce.GTC, TimeInForce.IOC})
    assert caps.post_only and caps.bulk_cancel and not caps.batch_place  # not wired
    assert not caps.amend  # editOrder of an unknown venue may be cancel-and-replace
    assert not caps.reduce_only  # spot only
    rules = conn.info.client_order_id_rules
    assert rules.max_length == 32 and rules.pattern == r"^[A-Za-z0-9]+$"
    perp = CcxtConnector(settings(markets=frozenset({"perpetual"})), "fake",
                         {"events": "poll", "amend": True}, exchange=FakeExchange())
    assert perp.capabilities.amend and perp.capabilities.reduce_only


def test_binance_build_and_url_override() -> None:
    async def go() -> None:
        conn = CcxtConnector(settings(urls={"rest": "http://127.0.0.1:9"}), "binance",
                             {"fetchCurrencies": False})
        api = conn.exchange.urls["api"]
        assert api["public"] == "http://127.0.0.1:9/api/v3"
        assert api["sapi"] == "http://127.0.0.1:9/sapi/v1"
        assert api["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"
        assert not conn.streaming  # REST overridden, no WebSocket override: polling
        assert conn.info.client_order_id_rules.max_length == 36
        assert conn.exchange.options["recvWindow"] == 5000
        assert conn.exchange.enableRateLimit
        await conn.close()
    run(go())


def test_start_clock_and_instruments() -> None:
    async def go() -> None:
        fake = FakeExchange()
        conn, _ = await started(fake)
        assert abs(conn.clock_offset_ms - (fake.server_ms - time.time_ns() // 1_000_000)) < 2000
        assert fake.options["timeDifference"] == -conn.clock_offset_ms
        insts = await conn.instruments()
        assert [i.symbol for i in insts] == ["BTC/USDT"]
        await conn.close()
        assert fake.closed
        conn2, _ = await started(markets=frozenset({"perpetual"}))
        (perp,) = await conn2.instruments()
        assert perp.symbol == "BTC/USDT:USDT" and perp.settle == "USDT"
        assert perp.tick_size == Decimal("0.1") and perp.min_notional == Decimal("100")
        await conn2.close()
    run(go())


def test_place_sends_precise_strings_and_acks() -> None:
    async def go() -> None:
        conn, fake = await started()
        ack = await conn.place(limit(post_only=True))
        name, args = fake.calls[-1]
        assert name == "create_order"
        assert args[:5] == ("BTC/USDT", "limit", "buy", "0.01", "97000.5")
        assert args[5] == {"clientOrderId": "c1", "timeInForce": "GTC", "postOnly": True}
        assert ack.client_order_id == "c1" and ack.venue_order_id == "100"
        assert drain(conn) == [ack]
        assert conn.tracked == {"c1": "BTC/USDT"}
        await conn.close()
    run(go())


@pytest.mark.parametrize(("req", "reason"), [
    (limit(qty="0.000011"), RejectReason.LOT_FILTER),
    (limit(price="97000.555"), RejectReason.PRICE_FILTER),
    (limit(time_in_force=TimeInForce.FOK), RejectReason.UNSUPPORTED),
    (OrderRequest("c1", "DOGE/USDT", Side.BUY, OrderType.LIMIT, Decimal(1), Decimal(1)),
     RejectReason.UNKNOWN_SYMBOL),
])
def test_refused_before_sending(req: OrderRequest, reason: RejectReason) -> None:
    async def go() -> None:
        conn, fake = await started()
        with pytest.raises(VenueRejected) as ei:
            await conn.place(req)
        assert ei.value.reason is reason
        assert not any(c[0] == "create_order" for c in fake.calls)
        assert conn.tracked == {}
        await conn.close()
    run(go())


def _connect_error() -> Exception:
    exc = ccxt_async.ExchangeNotAvailable("fake GET http://x connection refused")
    key = aiohttp.client_reqrep.ConnectionKey("x", 1, False, None, None, None, None)
    exc.__cause__ = aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (ccxt_async.InsufficientFunds("fake Account has insufficient balance"),
     RejectReason.INSUFFICIENT_BALANCE),
    (ccxt_async.BadSymbol("fake Invalid symbol."), RejectReason.UNKNOWN_SYMBOL),
    (ccxt_async.InvalidOrder('fake {"code":-2010,"msg":"Duplicate order sent."}'),
     RejectReason.DUPLICATE_ORDER),
    (ccxt_async.DuplicateOrderId("fake"), RejectReason.DUPLICATE_ORDER),
    (ccxt_async.OrderImmediatelyFillable("fake Order would immediately match and take."),
     RejectReason.POST_ONLY_WOULD_TAKE),
    (ccxt_async.InvalidOrder("fake Filter failure: NOTIONAL"), RejectReason.MIN_NOTIONAL),
    (ccxt_async.ExchangeError('fake {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
     RejectReason.LOT_FILTER),
    (ccxt_async.InvalidOrder("fake something else"), RejectReason.OTHER),
    (ccxt_async.RequestTimeout("fake timed out"), VenueAmbiguous),
    (ccxt_async.ExchangeNotAvailable("fake 503"), VenueAmbiguous),
    (_connect_error(), VenueUnavailable),
    (ccxt_async.AuthenticationError('fake {"code":-1022,"msg":"Signature ..."}'),
     VenueUnavailable),
])
def test_place_exception_mapping(exc: Exception, expected: Any) -> None:
    async def go() -> None:
        conn, fake = await started()
        fake.fail["create_order"] = [exc]
        if isinstance(expected, RejectReason):
            with pytest.raises(VenueRejected) as ei:
                await conn.place(limit())
            assert ei.value.reason is expected
            assert ("c1" in conn.tracked) == (expected is RejectReason.DUPLICATE_ORDER)
        else:
            with pytest.raises(expected):
                await conn.place(limit())
            assert "c1" in conn.tracked  # an unknown outcome stays watched
        await conn.close()
    run(go())


def test_rate_limit_retried_then_placed_once() -> None:
    async def go() -> None:
        conn, fake = await started()
        fake.fail["create_order"] = [ccxt_async.RateLimitExceeded("fake 429 Too many"),
                                     ccxt_async.DDoSProtection("fake 429 Too Many Requests")]
        await conn.place(limit())
        assert sum(c[0] == "create_order" for c in fake.calls) == 3
        assert len(fake.orders) == 1 and conn.rate_limited == 2
        fake.fail["create_order"] = [ccxt_async.RateLimitExceeded("x")] * 10
        with pytest.raises(VenueRejected) as ei:
            await conn.place(limit("c2"))
        assert ei.value.reason is RejectReason.RATE_LIMIT
        assert len(fake.orders) == 1
        await conn.close()
    run(go())


def test_ban_stops_sending() -> None:
    async def go() -> None:
        conn, fake = await started()
        fake.last_response_headers = {"Retry-After": "300"}
        fake.fail["create_order"] = [ccxt_async.DDoSProtection("binance 418 I'm a teapot {}")]
        with pytest.raises(VenueUnavailable):
            await conn.place(limit())
        n = len(fake.calls)
        with pytest.raises(VenueUnavailable, match="banned"):
            await conn.balances()
        assert len(fake.calls) == n
        assert not (await conn.health()).connected
        await conn.close()
    run(go())


def test_polling_emits_each_fill_once_then_terminal() -> None:
    async def go() -> None:
        conn, fake = await started()
        ack = await conn.place(limit(qty="0.03", price="97000"))
        drain(conn)
        fake.fill(ack.venue_order_id, 0.01, 97000.0, "t1")
        fake.fill(ack.venue_order_id, 0.01, 97000.0, "t2", maker=False)
        await conn.poll_once()
        await conn.poll_once()
        evs = drain(conn)
        assert [e.trade_id for e in evs if isinstance(e, OrderFilled)] == ["t1", "t2"]
        f1 = evs[0]
        assert isinstance(f1, OrderFilled) and f1.fee == Decimal("0.01")
        assert f1.quantity == Decimal("0.01") and f1.price == Decimal("97000")
        assert conn.last_price("BTC/USDT") == Decimal("97000")
        fake.fill(ack.venue_order_id, 0.01, 97001.0, "t3")
        await conn.poll_once()
        evs = drain(conn)
        assert [type(e) for e in evs] == [OrderFilled]
        assert conn.tracked == {}  # filled: no longer watched
        await conn.poll_once()
        assert drain(conn) == []
        await conn.close()
    run(go())


def test_polling_holds_terminal_status_until_its_fills() -> None:
    async def go() -> None:
        conn, fake = await started()
        ack = await conn.place(limit(qty="0.03", price="97000"))
        drain(conn)
        fake.fill(ack.venue_order_id, 0.01, 97000.0, "t1")
        fake.orders[ack.venue_order_id]["status"] = "canceled"
        hidden = fake.trades.pop()  # the trade history lags behind the order
        await conn.poll_once()
        assert drain(conn) == []
        fake.trades.append(hidden)
        await conn.poll_once()
        evs = drain(conn)
        assert [type(e) for e in evs] == [OrderFilled, OrderCanceled]
        canceled = evs[1]
        assert isinstance(canceled, OrderCanceled)
        assert canceled.filled_quantity == Decimal("0.01")
        await conn.close()
    run(go())


def test_fill_of_an_order_placed_elsewhere_is_resolved_by_query() -> None:
    async def go() -> None:
        conn, fake = await started()
        raw = await fake.create_order("BTC/USDT", "limit", "sell", "0.01", "97000",
                                      {"clientOrderId": "other1"})
        fake.fill(raw["id"], 0.01, 97000.0, "t9")
        fills = await conn.fills_since(0)
        assert fills == []  # no symbol of interest yet
        conn2, _ = await started(fake, symbols=("BTC/USDT",))
        (f,) = await conn2.fills_since(0)
        assert f.client_order_id == "other1" and f.trade_id == "t9"
        await conn.close()
        await conn2.close()
    run(go())


def test_cancel_query_open_orders_cancel_all() -> None:
    async def go() -> None:
        conn, fake = await started()
        a = await conn.place(limit("a"))
        await conn.place(limit("b"))
        await conn.place(limit("c"))
        drain(conn)
        assert {s.client_order_id for s in await conn.open_orders()} == {"a", "b", "c"}
        await conn.cancel("BTC/USDT", "a")
        (ev,) = drain(conn)
        assert isinstance(ev, OrderCanceled) and ev.venue_order_id == a.venue_order_id
        with pytest.raises(VenueRejected) as ei:
            await conn.cancel("BTC/USDT", "a")
        assert ei.value.reason is RejectReason.TOO_LATE
        st = await conn.query_order("BTC/USDT", "a")
        assert st is not None and st.status is VenueStatus.CANCELED
        assert await conn.cancel_all("BTC/USDT") == 2
        assert {type(e) for e in drain(conn)} == {OrderCanceled}
        assert await conn.open_orders() == []
        # an order never seen: the scan finds nothing (fake is no known venue)
        assert await conn.query_order("BTC/USDT", "zzz") is None
        await conn.close()
    run(go())


def test_query_by_scan_finds_an_order_by_client_id() -> None:
    async def go() -> None:
        conn, fake = await started()
        await fake.create_order("BTC/USDT", "limit", "buy", "0.01", "1", {"clientOrderId": "x"})
        st = await conn.query_order("BTC/USDT", "x")
        assert st is not None and st.venue_order_id == "100"
        assert ("fetch_open_orders", ("BTC/USDT",)) in fake.calls
        await conn.close()
    run(go())


def test_amend() -> None:
    async def go() -> None:
        conn, fake = await started(options={"amend": True})
        await conn.place(limit())
        drain(conn)
        await conn.amend(AmendRequest("c1", "BTC/USDT", quantity=Decimal("0.02"),
                                      new_client_order_id="c1v1"))
        name, args = fake.calls[-1]
        assert name == "edit_order" and args[4:6] == ("0.02", "97000.5")
        (ev,) = drain(conn)
        assert isinstance(ev, OrderAmended) and ev.quantity == Decimal("0.02")
        assert ev.new_client_order_id == "c1v1" and conn.tracked == {"c1v1": "BTC/USDT"}
        await conn.close()
    run(go())


def test_balances_positions_health() -> None:
    async def go() -> None:
        conn, _ = await started(markets=frozenset({"spot", "perpetual"}))
        bals = {b.asset: b for b in await conn.balances()}
        assert set(bals) == {"USDT", "BTC"}
        assert bals["USDT"].free == Decimal("900.5") and bals["USDT"].locked == Decimal("100")
        (pos,) = await conn.positions()
        assert pos.quantity == Decimal("-0.5") and pos.entry_price == Decimal("97000.5")
        assert (await conn.health()).connected
        await conn.close()
    run(go())


def test_dead_man_switch_armed_and_refreshed() -> None:
    async def go() -> None:
        fake = FakeExchange(cancelAllOrdersAfter=True)
        conn, _ = await started(fake, dead_man_s=0.6)
        assert conn.dead_man_armed and fake.dead_man == [600]
        await until(lambda: len(fake.dead_man) >= 3)
        loops = list(conn._tasks)
        await conn.stop_tasks()  # a crash: nothing refreshes it any more
        assert loops and all(t.done() for t in loops)
        await conn.close()
    run(go())


class WatchingFake(FakeExchange):
    """watch_orders / watch_my_trades fed by queues; an exception put there is raised."""

    def __init__(self) -> None:
        super().__init__(watchOrders=True, watchMyTrades=True)
        self.order_q: asyncio.Queue[Any] = asyncio.Queue()
        self.trade_q: asyncio.Queue[Any] = asyncio.Queue()

    async def watch_orders(self) -> list[dict[str, Any]]:
        item = await self.order_q.get()
        if isinstance(item, Exception):
            raise item
        return [item]

    async def watch_my_trades(self) -> list[dict[str, Any]]:
        item = await self.trade_q.get()
        if isinstance(item, Exception):
            raise item
        return [item]


def test_watch_streams_and_catch_up_after_a_drop() -> None:
    async def go() -> None:
        fake = WatchingFake()
        conn = CcxtConnector(settings(reconnect_base_s=0.01, reconnect_cap_s=0.02), "fake",
                             {"events": "stream"}, exchange=fake)
        assert conn.streaming
        await conn.start()
        ack = await conn.place(limit(qty="0.03", price="97000"))
        drain(conn)
        fake.fill(ack.venue_order_id, 0.01, 97000.0, "t1")
        fake.trade_q.put_nowait(fake.trades[-1])
        fake.trade_q.put_nowait(fake.trades[-1])  # pushed twice
        await until(lambda: not conn._events.empty())
        # the socket drops; meanwhile a second fill and the cancel happen unseen
        fake.trade_q.put_nowait(ccxt_async.NetworkError("fake connection closed"))
        fake.fill(ack.venue_order_id, 0.01, 97000.0, "t2")
        fake.orders[ack.venue_order_id]["status"] = "canceled"
        fake.trade_q.put_nowait(fake.trades[-1])  # the reconnect replays the last one
        await until(lambda: "c1" not in conn.tracked)
        await until(lambda: conn._events.qsize() >= 3)
        evs = drain(conn)
        fills = [e.trade_id for e in evs if isinstance(e, OrderFilled)]
        assert fills == ["t1", "t2"]
        assert any(isinstance(e, OrderCanceled) for e in evs)
        assert not any(isinstance(e, OrderAccepted) for e in evs)
        await conn.close()
    run(go())


def test_errors_never_carry_signatures_or_keys() -> None:
    async def go() -> None:
        conn, fake = await started()
        fake.fail["fetch_balance"] = [ccxt_async.ExchangeNotAvailable(
            "binance GET http://h/api/v3/account?timestamp=1&signature=deadbeef99 503 "
            '{"X-MBX-APIKEY": "vmPUZE6mv9"}')] * 3
        with pytest.raises(VenueUnavailable) as ei:
            await conn.balances()
        text = str(ei.value)
        assert "deadbeef99" not in text and "vmPUZE6mv9" not in text
        assert "signature=***" in text
        await conn.close()
    run(go())
