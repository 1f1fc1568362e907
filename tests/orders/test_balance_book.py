"""Balances kept from the venues' account streams (issue 10, "Balances and positions"): per
native venue against its emulator, and for the simulated venue, a fill moves the balances and
the gateway's book (and CollateralReport over FIX) shows the new figures without a REST call;
a reconnect reads them over REST again. Plus the book's own rules (REST answer and stream
updates crossing).

Every wait is bounded and on a condition (no sleep decides an outcome).
"""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import Balance, BalanceUpdate, Side
from connectors.paper.venue import PaperConnector
from emulators.core import EmulatorServer
from gateway.positions.balance_book import BalanceBook

from .support import BTC, OrderClient, running, session
from .test_exchange_venues import CREDS, KINDS, emulated, gateway, resting_buy, until

D = Decimal


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("E2E_API_KEY", CREDS.api_key)
    monkeypatch.setenv("E2E_API_SECRET", CREDS.secret)
    monkeypatch.setenv("E2E_API_PASSPHRASE", CREDS.passphrase or "")
    return "E2E"

BALANCE_PATHS = {"binance": "/api/v3/account", "okx": "/api/v5/account/balance",
                 "bybit": "/v5/account/wallet-balance"}
"""Each emulator's REST balance endpoint (what the gateway must not call per question)."""


def rest_reads(emu: EmulatorServer, kind: str) -> int:
    return sum(1 for _, path in emu.core.requests if path == BALANCE_PATHS[kind])


def at_venue(emu: EmulatorServer) -> dict[str, Balance]:
    return {b.asset: b for b in emu.core.exchange.balances()}


def kept(book: BalanceBook, venue: str) -> dict[str, tuple[Decimal, Decimal]]:
    return {a: (h.free, h.locked) for a, h in book.held(venue).items()}


def shows(book: BalanceBook, venue: str, want: dict[str, Balance], *assets: str) -> bool:
    have = kept(book, venue)
    return all(have.get(a) == (want[a].free, want[a].locked) for a in assets)


async def collateral(c: OrderClient, inquiry: str) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """CollateralInquiry (BB) -> currency -> (TotalNetValue, AvailableBalance, LockedBalance)."""
    await c.send("BB", [(909, inquiry)])
    out = {}
    while True:
        m = await c.expect("BA", t909=inquiry)
        out[m[15]] = (D(m[900]), D(m[20010]), D(m[20011]))
        if m.get(912) == "Y":
            return out


@pytest.mark.parametrize("kind", KINDS)
def test_a_fill_reaches_the_balances_by_the_account_stream(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    """Binance ``outboundAccountPosition``, OKX ``account``, Bybit ``wallet``: the order's lock
    and then its fill change the book and BA with no REST balance request after the start."""
    async def main() -> None:
        async with emulated(kind) as emu, gateway(tmp_path, kind, emu) as run:
            c = await run.client()
            book = run.gw.balances
            assert book is not None
            await until(lambda: book.seeded(kind))
            reads = rest_reads(emu, kind)
            assert reads == 1  # read once at start
            start = at_venue(emu)
            price = await resting_buy(c, emu, "o1", "0.02")
            locked = at_venue(emu)
            assert locked["USDT"].locked > start["USDT"].locked  # the buy holds quote
            await until(lambda: shows(book, kind, locked, "USDT"))
            emu.core.trade_against(BTC, Side.SELL, D("0.005"), price)
            await c.er(t11="o1", t150="F", t39="1")
            filled = at_venue(emu)
            assert filled["BTC"].free > start["BTC"].free
            await until(lambda: shows(book, kind, filled, "BTC", "USDT"))
            assert {book.held(kind)[a].source for a in ("BTC", "USDT")} == {"stream"}
            got = await collateral(c, "b1")
            for asset in ("BTC", "USDT"):
                b = filled[asset]
                assert got[asset] == (b.total, b.free, b.locked)
            assert rest_reads(emu, kind) == reads  # neither the book nor BA asked over REST

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_reconnect_reads_the_balances_over_rest_again(
    tmp_path: Path, creds_env: str, kind: str
) -> None:
    """A fill while the private stream is down is never pushed: once the stream is back, the
    balances are read over REST and the book shows the fill's figures."""
    async def main() -> None:
        async with emulated(kind) as emu, gateway(tmp_path, kind, emu) as run:
            c = await run.client()
            book = run.gw.balances
            assert book is not None
            await until(lambda: book.seeded(kind))
            price = await resting_buy(c, emu, "o1")
            await until(lambda: shows(book, kind, at_venue(emu), "USDT"))
            reads = rest_reads(emu, kind)
            emu.core.faults.streams_down = True
            assert await emu.drop_streams() >= 1
            emu.core.trade_against(BTC, Side.SELL, D("0.01"), price)  # nobody hears of it
            filled = at_venue(emu)
            emu.core.faults.streams_down = False  # the connector reconnects
            await c.er(t11="o1", t150="F", t39="2", timeout=15)
            await until(lambda: rest_reads(emu, kind) > reads, 15)
            await until(lambda: shows(book, kind, filled, "BTC", "USDT"))

    asyncio.run(main())


def test_the_simulated_venue_pushes_its_balances(tmp_path: Path) -> None:
    """The in-process simulated venue: an order placed locks, its fill moves both assets, and
    the book follows without asking the venue (its ``balances`` is counted)."""
    async def main() -> None:
        async with running(tmp_path, [session()]) as run:
            book = run.gw.balances
            assert book is not None and book.seeded("paper")
            venue = run.venue()
            asked = 0
            balances = venue.balances

            async def counted() -> list[Balance]:
                nonlocal asked
                asked += 1
                return list(await balances())

            venue.balances = counted  # type: ignore[method-assign]
            c = await run.client()
            await c.order("r1", price="90000", tif="1")  # rests far under the market
            await c.er(t11="r1", t39="0")
            now = {b.asset: b for b in venue.exchange.balances()}
            assert now["USDT"].locked > 0
            await until(lambda: shows(book, "paper", now, "USDT"))
            await c.order("m1", ord_type="1", qty="0.01")
            await c.er(t11="m1", t150="0")
            await c.er(t11="m1", t150="F")
            await c.quiet()
            now = {b.asset: b for b in venue.exchange.balances()}
            await until(lambda: shows(book, "paper", now, "BTC", "USDT"))
            got = await collateral(c, "p1")
            assert got["BTC"] == (now["BTC"].total, now["BTC"].free, now["BTC"].locked)
            assert asked == 0

    asyncio.run(main())


# ---- the book's rules --------------------------------------------------------------------------


class _Venue(PaperConnector):
    """A simulated venue whose REST answer the test controls."""

    answer: list[Balance]

    async def balances(self) -> list[Balance]:
        return list(self.answer)


def test_a_rest_answer_does_not_undo_an_update_that_arrived_meanwhile() -> None:
    async def main() -> None:
        venue = _Venue()
        book = BalanceBook({"v": venue}, clock=lambda: 7)
        venue.answer = [Balance("BTC", D(1), D(0)), Balance("USDT", D(100), D(0))]
        await book.seed("v")
        mark = book.mark()  # a second REST request leaves...
        book.apply("v", BalanceUpdate("BTC", D(2), D(0), 10))  # ...an update arrives...
        book.replace("v", [Balance("BTC", D(1), D(0)), Balance("USDT", D(90), D(10))], mark)
        held = book.held("v")  # ...the older answer leaves BTC as the stream said
        assert (held["BTC"].free, held["BTC"].source) == (D(2), "stream")
        assert (held["USDT"].free, held["USDT"].locked, held["USDT"].source) == (
            D(90), D(10), "rest")
        assert not book.apply("v", BalanceUpdate("BTC", D(5), D(0), 9))  # older than held
        assert book.held("v")["BTC"].free == D(2)
        assert [b.asset for b in await book.balances("v")] == ["BTC", "USDT"]
        book.replace("v", [Balance("USDT", D(90), D(10))], book.mark())
        assert "BTC" not in book.held("v")  # no longer listed by the venue

    asyncio.run(main())
