"""The whole path against each native exchange connector: FIX client -> gateway -> connector
-> the venue's emulator (its documented REST and WebSocket protocol on loopback) -> fills back
as ExecutionReports, with the venue failures every connector must survive.

Every wait is a bounded read of the next FIX message or a bounded poll of the emulator's state.
"""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Side
from connectors.common.credentials import Credentials
from connectors.common.venue import StreamingConnector
from emulators import emulator_class
from emulators.core import EmulatorServer
from gateway.app import build_gateway
from gateway.store.store import SessionStore

from .support import BTC, OrderClient, Run, fields, list_lines, running, session, until
from .support import config as support_config

KINDS = ("binance", "okx", "bybit")
CREDS = Credentials("e2e-test-key-0001", "e2e-test-secret-0001", passphrase="e2e-Pass-1")
D = Decimal
GTC = "1"  # crypto venues have no Day orders (FIX's default): every order says GTC


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("E2E_API_KEY", CREDS.api_key)
    monkeypatch.setenv("E2E_API_SECRET", CREDS.secret)
    assert CREDS.passphrase is not None
    monkeypatch.setenv("E2E_API_PASSPHRASE", CREDS.passphrase)
    return "E2E"


@asynccontextmanager
async def emulated(kind: str) -> AsyncIterator[EmulatorServer]:
    emu = emulator_class(kind)(CREDS)  # type: ignore[call-arg]
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()


def venue_entry(kind: str, emu: EmulatorServer, **kw: Any) -> dict[str, Any]:
    return {"name": kind, "kind": kind, "credentials_env": "E2E", "urls": emu.urls,
            "symbols": [BTC], "dead_man_switch": 0, "request_timeout": 0.5, **kw}


def best_bid(emu: EmulatorServer) -> Decimal:
    bid = emu.core.exchange.book(BTC).best_bid()
    assert bid is not None
    return bid




def open_at(emu: EmulatorServer) -> list[str]:
    return [s.client_order_id for s in emu.core.exchange.open_orders()]


async def resting_buy(c: OrderClient, emu: EmulatorServer, cl: str, qty: str = "0.01"
                      ) -> Decimal:
    """A buy at the top of the book (better than the market maker's bid): it rests, and is the
    first to fill when an outside seller comes."""
    price = best_bid(emu) + D("0.01")
    await c.order(cl, qty=qty, price=price, tif=GTC)
    await c.er(t11=cl, t150="0", t39="0")
    return price


def gateway(tmp_path: Path, kind: str, emu: EmulatorServer, *, store: SessionStore | None = None,
            session_kw: dict[str, Any] | None = None, **venue_kw: Any
            ) -> Any:
    return running(tmp_path, [session(default_venue=kind, **(session_kw or {}))],
                   [venue_entry(kind, emu, **venue_kw)], store=store)


@asynccontextmanager
async def trading(tmp_path: Path, kind: str, begin: str = "FIX.4.4"
                  ) -> AsyncIterator[tuple[EmulatorServer, Run, OrderClient]]:
    """The venue's emulator, a gateway trading there, and a logged-on FIX client."""
    sender = "CLIENT1" if begin == "FIX.4.4" else "CLIENT50"
    async with emulated(kind) as emu, running(
            tmp_path, [session(sender, begin, default_venue=kind)],
            [venue_entry(kind, emu)]) as run:
        yield emu, run, await run.client(sender, begin)


@pytest.mark.parametrize("kind", KINDS)
def test_order_fill_and_cancel(tmp_path: Path, creds_env: str, kind: str) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            price = await resting_buy(c, emu, "o1", "0.02")
            emu.core.trade_against(BTC, Side.SELL, D("0.005"), price)
            m = await c.er(t11="o1", t150="F", t39="1")
            assert D(fields(m)[32]) == D("0.005") and D(fields(m)[31]) == price
            assert fields(m)[198]  # the venue's order id
            # each venue takes a spot buy's fee from the base asset received (0.1 % of
            # 0.005 BTC): Commission (12) in CommCurrency (479) BTC, absolute (13=3)
            assert (D(fields(m)[12]), fields(m)[479], fields(m)[13]) == (D("0.000005"), "BTC",
                                                                        "3")
            emu.core.trade_against(BTC, Side.SELL, D("0.015"), price)
            m = await c.er(t11="o1", t150="F", t39="2")
            assert D(fields(m)[14]) == D("0.02") and D(fields(m)[151]) == 0
            await c.order("o2", qty="0.01", price=best_bid(emu) - 1000, tif=GTC)
            await c.er(t11="o2", t150="0")
            await c.cancel("c2", "o2", qty="0.01")
            await c.er(t11="c2", t150="6")
            await c.er(t11="c2", t150="4", t39="4")
            assert open_at(emu) == []
            await c.quiet()
            conn = run.orders.connectors[kind]
            assert isinstance(conn, StreamingConnector)
            assert conn.tracked == {}  # filled and canceled orders are no longer watched

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_replace_then_fill(tmp_path: Path, creds_env: str, kind: str) -> None:
    """A replace goes by the venue's amend (Binance: cancelReplace, a new venue order with a
    client order id of its own); fills of the order before and after it add up."""

    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            price = await resting_buy(c, emu, "o1", "0.03")
            emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)
            await c.er(t11="o1", t150="F", t39="1")
            new_price = price  # still the best bid: the outside seller below meets it first
            await c.replace("r1", "o1", qty="0.05", price=new_price, extra=[(59, GTC)])
            await c.er(t11="r1", t150="E", t39="E")
            m = await c.er(t11="r1", t150="5")
            assert D(fields(m)[38]) == D("0.05") and D(fields(m)[14]) == D("0.01")
            assert D(fields(m)[151]) == D("0.04")
            (coid,) = open_at(emu)
            # Binance's cancelReplace placed a new venue order: the next version's client id
            assert coid.endswith("v1") == (kind == "binance"), coid
            emu.core.trade_against(BTC, Side.SELL, D("0.04"), new_price)
            m = await c.er(t11="r1", t150="F", t39="2")
            assert D(fields(m)[14]) == D("0.05") and D(fields(m)[31]) == new_price
            assert open_at(emu) == []
            await c.quiet(0.3)

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_an_amend_whose_answer_timed_out_is_resolved_by_query(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            price = await resting_buy(c, emu, "o1", "0.02")
            emu.core.faults.timeout_next = 1  # the amend is executed, its answer never comes
            await c.replace("r1", "o1", qty="0.03", price=price, extra=[(59, GTC)])
            await c.er(t11="r1", t150="E")
            m = await c.er(t11="r1", t150="5", t39="0", timeout=15)
            assert D(fields(m)[38]) == D("0.03")
            (state,) = emu.core.exchange.open_orders()
            assert state.quantity - state.filled_quantity == D("0.03")
            emu.core.trade_against(BTC, Side.SELL, D("0.03"), price)
            await c.er(t11="r1", t150="F", t39="2")
            await c.quiet(0.3)

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_venue_refusals_are_clear_rejects_and_no_secret_is_logged(
    tmp_path: Path, creds_env: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            # far beyond the balance
            await c.order("big", qty="500", price=best_bid(emu) - 500, tif=GTC)
            m = await c.er(t11="big", t150="8", t39="8")
            assert "balance" in (m.get(58) or "").lower(), str(m)
            assert open_at(emu) == []

    asyncio.run(main())
    text = caplog.text
    assert CREDS.secret not in text and CREDS.passphrase not in text  # type: ignore[operator]


@pytest.mark.parametrize("kind", KINDS)
def test_a_fill_while_the_stream_is_down_is_reported_once(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            price = await resting_buy(c, emu, "o1")
            emu.core.faults.streams_down = True
            assert await emu.drop_streams() >= 1
            emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)  # nobody hears of it
            emu.core.faults.streams_down = False  # the connector reconnects and catches up
            await c.er(t11="o1", t150="F", t39="2", timeout=15)
            await c.quiet(0.5)
            fills = [m for m in c.received if m.get(150) == "F"]
            assert len(fills) == 1

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_duplicated_and_reordered_events_report_each_fill_once(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            price = await resting_buy(c, emu, "o1", "0.03")
            emu.core.faults.duplicate_events = True
            emu.core.faults.reorder_events = True
            for _ in range(3):
                emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)
            cums = [D(fields(await c.er(t11="o1", t150="F"))[14]) for _ in range(3)]
            assert cums == [D("0.01"), D("0.02"), D("0.03")]
            await c.quiet(0.5)
            assert sum(m.get(150) == "F" for m in c.received) == 3

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_an_order_whose_answer_timed_out_is_found_not_duplicated(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            emu.core.faults.timeout_next = 1  # executed at the venue, the answer never comes
            await c.order("o1", qty="0.01", price=best_bid(emu) - 500, tif=GTC)
            await c.er(t11="o1", t150="0", t39="0", timeout=15)
            assert len(open_at(emu)) == 1
            await c.quiet(0.5)

    asyncio.run(main())


PLACE_REQUESTS = {
    "okx": (("POST", "/api/v5/trade/batch-orders"), ("POST", "/api/v5/trade/order")),
    "bybit": (("POST", "/v5/order/create-batch"), ("POST", "/v5/order/create")),
    "binance": (None, ("POST", "/api/v3/order")),
}
"""Each venue's batch-place request (None: it has none) and its single-order one."""


@pytest.mark.parametrize("kind", KINDS)
def test_an_order_list_goes_by_the_batch_endpoint(tmp_path: Path, creds_env: str,
                                                  kind: str) -> None:
    """A NewOrderList reaches OKX and Bybit in one batch-place request (one outcome per
    order: a refusal inside the batch rejects that order alone), Binance spot (no batch
    endpoint) one order at a time; a batch whose answer timed out is resolved by query, each
    order found once at the venue."""

    async def main() -> None:
        batch, single = PLACE_REQUESTS[kind]
        async with trading(tmp_path, kind) as (emu, run, c):
            bid = best_bid(emu)
            await c.order_list("L1", [
                {11: "b1", 38: "0.01", 44: bid - 500, 59: GTC},
                {11: "b2", 38: "1000", 44: bid - 500, 59: GTC},  # far more than the account has
                {11: "b3", 38: "0.01", 44: bid - 501, 59: GTC},
            ])
            ers = [await c.er(t66="L1", timeout=10) for _ in range(3)]
            by_cl = {m[11]: m for m in ers}
            assert (by_cl["b1"][39], by_cl["b2"][39], by_cl["b3"][39]) == ("0", "8", "0")
            assert by_cl["b2"][103] == "3"  # exceeds limit: insufficient balance
            status = await c.expect("N", t66="L1", t429="1", t431="3", t68="3")
            assert [(ln[11], ln[39]) for ln in list_lines(status)] == [
                ("b1", "0"), ("b2", "8"), ("b3", "0")]
            if batch is not None:
                assert (emu.core.requests.count(batch), emu.core.requests.count(single)) == (1, 0)
            else:
                assert emu.core.requests.count(single) == 3
            assert len(open_at(emu)) == 2

            emu.core.faults.timeout_next = 1  # executed at the venue, the answer never comes
            await c.order_list("L2", [{11: f"t{n}", 38: "0.01", 44: bid - 600 - n, 59: GTC}
                                      for n in range(3)])
            ers = [await c.er(t66="L2", t39="0", timeout=15) for _ in range(3)]
            assert sorted(m[11] for m in ers) == ["t0", "t1", "t2"]
            status = await c.expect("N", t66="L2", t429="1", t431="3", timeout=15)
            assert [ln[39] for ln in list_lines(status)] == ["0", "0", "0"]
            assert len(open_at(emu)) == 5  # found by query, never placed twice
            if batch is not None:
                assert emu.core.requests.count(batch) == 2
            await c.quiet(0.5)

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_storm_of_429s_loses_no_order(tmp_path: Path, creds_env: str, kind: str) -> None:
    async def main() -> None:
        async with trading(tmp_path, kind) as (emu, run, c):
            emu.core.faults.rate_limit_next = 8
            emu.core.faults.retry_after_s = 0
            for i in range(3):
                await c.order(f"o{i}", qty="0.01", price=best_bid(emu) - 500 - i, tif=GTC)
            for _ in range(3):
                await c.er(t150="0", timeout=15)
            assert len(open_at(emu)) == 3 and emu.core.faults.rate_limit_next == 0
            await c.quiet(0.3)

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_on_disconnect_cancels_at_the_venue(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        async with emulated(kind) as emu, gateway(
            tmp_path, kind, emu, session_kw={"cancel_on_disconnect": "disconnect"}
        ) as run:
            c = await run.client()
            for i in range(3):
                await c.order(f"o{i}", qty="0.01", price=best_bid(emu) - 500 - i, tif=GTC)
                await c.er(t11=f"o{i}", t150="0")
            assert len(open_at(emu)) == 3
            await c.close()  # dropped, no Logout
            await until(lambda: open_at(emu) == [], 10)
            c2 = await run.reconnect(c)
            got = [(await c2.er(t150="4", t39="4")).get(11) for _ in range(3)]
            assert sorted(got) == ["o0", "o1", "o2"]  # type: ignore[type-var]

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_restart_reconciles_what_happened_meanwhile(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    async def main() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with emulated(kind) as emu:
                async with gateway(tmp_path, kind, emu, store=store) as run:
                    c = await run.client()
                    price = await resting_buy(c, emu, "o1")
                    await c.order("o2", qty="0.01", price=best_bid(emu) - 700, tif=GTC)
                    await c.er(t11="o2", t150="0")
                    next_seq = c.next_seq
                # the gateway is down: o1 fills, o2 is cancelled by someone at the venue
                emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)
                coid = next(s.client_order_id for s in emu.core.exchange.open_orders())
                emu.core.run(lambda now: emu.core.exchange.cancel(BTC, coid, now))
                # symbols not configured: the connector must find the fills of a symbol it
                # only learns of from the gateway's open orders
                async with gateway(tmp_path, kind, emu, store=store, symbols=None) as run2:
                    c2 = await run2.client(reset=False, next_seq=next_seq)
                    got = {m.get(11): m.get(150) for m in
                           [await c2.er(timeout=15), await c2.er(timeout=15)]}
                    assert got == {"o1": "F", "o2": "4"}
        finally:
            await store.close()

    asyncio.run(main())




def test_a_restart_finds_a_binance_order_cancelled_meanwhile_by_its_venue_order_id(
    tmp_path: Path, creds_env: str
) -> None:
    """While the gateway is down, o1 fills in part and is then cancelled through Binance's API,
    which gives it the cancel's clientOrderId: the venue no longer knows it by the id the
    gateway placed it with (-2013). The next start asks by the venue order id the gateway
    stored, and reports the partial fill, then the cancel with its cumulative quantity."""

    async def main() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with emulated("binance") as emu:
                async with gateway(tmp_path, "binance", emu, store=store) as run:
                    c = await run.client()
                    price = await resting_buy(c, emu, "o1", "0.02")
                    next_seq = c.next_seq
                emu.core.trade_against(BTC, Side.SELL, D("0.005"), price)
                (coid,) = open_at(emu)
                binance: Any = emu
                order = binance._paper(coid)
                emu.core.run(lambda now: binance._do_cancel(order, now, "byHand1"))
                async with gateway(tmp_path, "binance", emu, store=store) as run2:
                    c2 = await run2.client(reset=False, next_seq=next_seq)
                    m = await c2.er(t11="o1", t150="F", timeout=15)
                    assert D(fields(m)[32]) == D("0.005")
                    m = await c2.er(t11="o1", t150="4", t39="4", timeout=15)
                    assert D(fields(m)[14]) == D("0.005")
                    assert "not found" not in fields(m).get(58, "")
        finally:
            await store.close()

    asyncio.run(main())


def test_the_generic_ccxt_connector_end_to_end(tmp_path: Path, creds_env: str) -> None:
    """kind = "ccxt": ccxt's own binance client against the Binance emulator, events polled."""

    async def main() -> None:
        async with emulated("binance") as emu:
            entry = venue_entry("ccxt", emu, exchange_id="binance", poll_interval=0.05,
                                ccxt_options={"fetchCurrencies": False, "rateLimit": 5,
                                              "fetchMargins": False,
                                              "fetchMarkets": {"types": ["spot"]},
                                              "events": "poll"})
            async with running(tmp_path, [session(default_venue="ccxt")], [entry]) as run:
                c = await run.client()
                price = await resting_buy(c, emu, "o1")
                emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)
                m = await c.er(t11="o1", t150="F", t39="2", timeout=10)
                assert D(fields(m)[31]) == price
                await c.order("o2", qty="0.01", price=best_bid(emu) - 900, tif=GTC)
                await c.er(t11="o2", t150="0")
                await c.cancel("c2", "o2", qty="0.01")
                await c.er(t11="c2", t150="6")
                await c.er(t11="c2", t150="4", timeout=10)
                assert open_at(emu) == []

    asyncio.run(main())


def test_a_restart_during_a_binance_amend_finds_the_new_order(
    tmp_path: Path, creds_env: str
) -> None:
    """Binance executes a cancelReplace but its answer never comes, and the venue then stops
    answering queries: the replace stays pending (never guessed) until the gateway stops. The
    next start finds the new venue order by the next version's client order id and reports the
    replace, not the old venue order's cancellation."""

    async def main() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with emulated("binance") as emu:
                gw = build_gateway(support_config(
                    [session(default_venue="binance")],
                    [venue_entry("binance", emu, request_timeout=0.5)]), store)
                host, port = await gw.start()
                c = await OrderClient.connect(host, port, sender="CLIENT1", begin="FIX.4.4")
                assert (await c.logon()).msg_type == "A"
                price = await resting_buy(c, emu, "o1", "0.02")
                emu.core.faults.timeout_next = 1  # executed; the answer never comes
                await c.replace("r1", "o1", qty="0.03", price=price, extra=[(59, GTC)])
                await c.er(t11="r1", t150="E")
                replace = ("POST", "/api/v3/order/cancelReplace")
                await until(lambda: replace in emu.core.requests, 10)
                emu.core.faults.error_5xx_next = 10**6  # and nothing more is answered
                await c.quiet(1.5)  # no reject: the outcome is unknown
                next_seq = c.next_seq
                await c.close()
                await gw.stop()
                emu.core.faults.error_5xx_next = 0
                async with gateway(tmp_path, "binance", emu, store=store) as run2:
                    c2 = await run2.client(reset=False, next_seq=next_seq)
                    m = await c2.er(t11="r1", t150="5", timeout=15)
                    assert D(fields(m)[38]) == D("0.03")
                    (st,) = emu.core.exchange.open_orders()
                    assert st.client_order_id.endswith("v1")
                    emu.core.trade_against(BTC, Side.SELL, D("0.03"), price)
                    await c2.er(t11="r1", t150="F", t39="2")
        finally:
            await store.close()

    asyncio.run(main())


def test_an_order_without_time_in_force_follows_the_session_default(
    tmp_path: Path, creds_env: str
) -> None:
    """FIX's default is Day, which crypto venues do not have: refused with the reason, unless
    the session says an order without 59 means GTC (the report then carries 59=1)."""

    async def main() -> None:
        async with emulated("bybit") as emu:
            sessions = [session(default_venue="bybit"),
                        session("GTCDESK", default_venue="bybit", default_time_in_force="gtc")]
            async with running(tmp_path, sessions, [venue_entry("bybit", emu)]) as run:
                day = await run.client()
                await day.order("d1", qty="0.01", price=best_bid(emu) - 500)
                m = await day.er(t11="d1", t39="8", t59="0")
                assert "TimeInForce" in (m.get(58) or "")
                gtc = await run.client("GTCDESK")
                await gtc.order("g1", qty="0.01", price=best_bid(emu) - 500)
                await gtc.er(t11="g1", t150="0", t39="0", t59="1")
                assert len(open_at(emu)) == 1

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_venue_down_at_start_is_refused_until_it_comes_up(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    """The gateway starts without the venue (it serves its clients; orders for the venue are
    refused with the reason), keeps trying, and trades there once the venue answers."""

    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        emu = emulator_class(kind)(CREDS)  # type: ignore[call-arg]
        emu.port = port  # its URLs, before it listens
        async with gateway(tmp_path, kind, emu, request_timeout=0.3) as run:
            assert kind in run.orders.down
            c = await run.client()
            await c.order("o1", qty="0.01", price="90000", tif=GTC)
            m = await c.er(t11="o1", t39="8", t103="2")
            assert f"venue {kind} is unavailable" in (m.get(58) or "")
            await emu.start(port)
            try:
                await until(lambda: kind not in run.orders.down, 15)
                await c.order("o2", qty="0.01", price=best_bid(emu) - 500, tif=GTC)
                await c.er(t11="o2", t150="0", t39="0")
                assert len(open_at(emu)) == 1
            finally:
                await emu.stop()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_venue_check_does_an_order_round_trip(tmp_path: Path, creds_env: str, kind: str) -> None:
    """``fixgw venue-check --place``: start, rules, prices, balances, then a post-only order far
    below the market placed, acknowledged, queried and canceled; nothing left open."""
    from gateway.app import build_connector
    from gateway.config import VenueConfig
    from gateway.venuecheck import check_venue

    async def main() -> None:
        async with emulated(kind) as emu:
            conn = build_connector(VenueConfig.model_validate(venue_entry(kind, emu)))
            lines: list[str] = []
            await check_venue(conn, BTC, place=True, say=lines.append)
            text = "\n".join(lines)
            for part in ("started: connected", "BTC/USDT (", "last price 9", "placed fgwcheck",
                         "acknowledged on the private stream", "query: new", "canceled"):
                assert part in text, text
            assert open_at(emu) == []
            (order,) = emu.core.exchange.orders()
            assert order.post_only and order.price is not None
            assert order.price < best_bid(emu) / 2 + 1

    asyncio.run(main())


def test_venue_check_command(tmp_path: Path, creds_env: str) -> None:
    async def main() -> None:
        async with emulated("okx") as emu:
            urls = ", ".join(f'{k} = "{v}"' for k, v in emu.urls.items())
            cfg = tmp_path / "okx.toml"
            cfg.write_text(f'[[venue]]\nname = "okx-test"\nkind = "okx"\n'
                           f'credentials_env = "E2E"\nurls = {{ {urls} }}\n'
                           f'symbols = ["BTC/USDT"]\ndead_man_switch = 0\n')
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("fixgw")), "venue-check", "--config",
                str(cfg), "--place", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            assert "venue okx-test: OK" in out.decode()
            assert CREDS.secret not in out.decode() + err.decode()
            bad = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("fixgw")), "venue-check", "--config",
                str(cfg), "--venue", "nope", stderr=asyncio.subprocess.PIPE)
            _, err = await asyncio.wait_for(bad.communicate(), 60)
            assert bad.returncode == 2 and "no [[venue]] named 'nope'" in err.decode()

    asyncio.run(main())


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
@pytest.mark.parametrize("kind", KINDS)
def test_market_data_through_the_venues_public_feed(tmp_path: Path, creds_env: str,
                                                    kind: str, begin: str) -> None:
    """MarketDataRequest for the venue's book: the snapshot and the updates the client gets
    (through the connector's public feed from the emulator) rebuild the emulator's own book."""
    from .test_market_data import ClientBook, Inbox, _request

    def venue_book(emu: EmulatorServer, depth: int) -> dict[tuple[str, str, Decimal], Decimal]:
        out = {}
        for entry_type, side in (("0", Side.BUY), ("1", Side.SELL)):
            for price, size in emu.core.exchange.book(BTC).levels(side)[:depth]:
                out[(entry_type, kind, price)] = size
        return out

    async def main() -> None:
        async with trading(tmp_path, kind, begin) as (emu, run, c):
            inbox = Inbox(c)
            await _request(c, "md", exchange=kind, depth=5, types=("0", "1"))
            book = ClientBook()
            book.full(await inbox.get("W", 10.0, t262="md", t207=kind))
            assert book.levels == venue_book(emu, 5)
            price = best_bid(emu) + D("0.01")
            await c.order("r1", qty="0.01", price=price, tif=GTC)
            await inbox.report("r1", "0")
            for _ in range(50):
                if book.levels == venue_book(emu, 5):
                    break
                book.incremental(await inbox.get("X", 10.0))
            assert book.levels == venue_book(emu, 5)
            assert ("0", kind, price) in book.levels

    asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIXT.1.1"])
@pytest.mark.parametrize("kind", KINDS)
def test_instruments_balances_and_positions_over_fix(tmp_path: Path, creds_env: str,
                                                     kind: str, begin: str) -> None:
    """SecurityList, CollateralReport and PositionReport answered from each native venue
    (through its connector and emulator), strictly validated."""
    from .test_market_data import Inbox
    from .test_positions import _ask, _fills, _report

    async def main() -> None:
        async with trading(tmp_path, kind, begin) as (emu, run, c):
            inbox = Inbox(c)
            await c.send("x", [(320, "i"), (559, "0"), (55, BTC)])
            y = await inbox.get("y", 10.0, t320="i", t560="0")
            inst = next(i for i in await run.orders.connectors[kind].instruments()
                        if i.symbol == BTC)
            assert (y[207], D(y[969]), D(y[561])) == (kind, inst.tick_size, inst.lot_size)
            ask = emu.core.exchange.book(BTC).best_ask()
            assert ask is not None
            await c.order("b1", qty="0.01", price=ask, tif=GTC)
            await _fills(inbox, "b1")
            await c.send("BB", [(909, "bal")])
            held = {b.asset: b for b in emu.core.exchange.balances()}
            for _ in held:
                m = await inbox.get("BA", 10.0, t909="bal")
                b = held[m[15]]
                assert (D(m[900]), D(m[20010]), D(m[20011])) == (b.total, b.free, b.locked)
            await _ask(c, "pos")
            await inbox.get("AO", 10.0, t710="pos", t728="0", t727="1")
            report = _report(await inbox.get("AP", 10.0, t710="pos"))
            fee = sum((D(m[12]) for m in c.received if m.msg_type == "8" and m.get(11) == "b1"
                       and m.get(150) == "F" and m.get(479) == "BTC"), D(0))
            assert fee > 0  # a spot buy's fee is paid out of what it bought
            assert (report["venue"], report["long"]) == (kind, D("0.01") - fee)

    asyncio.run(asyncio.wait_for(main(), 60))
