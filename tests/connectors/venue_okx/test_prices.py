"""Last prices: the connector polls OKX "Market Data / Get tickers" and the emulator serves it."""

from __future__ import annotations

import logging
from decimal import Decimal

import aiohttp
import pytest

from connectors.base import Side
from connectors.okx import OkxConnector, schemas
from emulators.okx import OkxEmulator

from .helpers import CREDS, run, venue, wait_for

SYMBOLS = ("BTC/USDT", "ETH/USDT", "BTC/USDT:USDT")


class FastPolling(OkxConnector):
    PRICE_POLL_S = 0.05


def test_prices_known_at_start_and_follow_the_market() -> None:
    async def go() -> None:
        async with venue(cls=FastPolling) as (emu, conn):
            ex = emu.core.exchange
            for sym in SYMBOLS:  # the poll at the end of start()
                assert conn.last_price(sym) == ex.last_price(sym), sym
            before = {sym: ex.last_price(sym) for sym in SYMBOLS}
            # outside takers sweep a few levels: the exchange prints new last prices
            emu.core.trade_against("BTC/USDT", Side.BUY, Decimal("2"))
            emu.core.trade_against("BTC/USDT:USDT", Side.SELL, Decimal("3"))
            spot, swap = ex.last_price("BTC/USDT"), ex.last_price("BTC/USDT:USDT")
            assert spot > before["BTC/USDT"] and swap < before["BTC/USDT:USDT"]
            await wait_for(lambda: conn.last_price("BTC/USDT") == spot
                           and conn.last_price("BTC/USDT:USDT") == swap)
            assert conn.last_price("ETH/USDT") == before["ETH/USDT"]
            polls = [p for _, p in emu.core.requests if p == "/api/v5/market/tickers"]
            assert len(polls) >= 4  # SPOT and SWAP at start, then again in the loop

    run(go())


def test_default_poll_is_slow_and_start_polls_once_per_inst_type() -> None:
    async def go() -> None:
        assert OkxConnector.PRICE_POLL_S == 5.0
        async with venue(markets=frozenset({"spot"})) as (emu, conn):
            assert conn.last_price("BTC/USDT") == emu.core.exchange.last_price("BTC/USDT")
            assert conn.last_price("BTC/USDT:USDT") is None  # not loaded
            polls = [p for _, p in emu.core.requests if p == "/api/v5/market/tickers"]
            assert len(polls) == 1
            assert conn._prices is not None and not conn._prices.done()
        assert conn._prices is None  # close() cancelled the loop

    run(go())


def test_a_failed_poll_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    async def go() -> None:
        async with venue(cls=FastPolling) as (emu, conn):
            conn.rest._backoff.base = 0.01  # the GET retries on 5xx quickly
            emu.core.faults.error_5xx_next = 3  # one poll: the first try and both retries
            await wait_for(lambda: "ticker poll failed" in caplog.text)
            assert emu.core.faults.error_5xx_next == 0
            emu.core.trade_against("BTC/USDT", Side.BUY, Decimal("2"))
            moved = emu.core.exchange.last_price("BTC/USDT")
            await wait_for(lambda: conn.last_price("BTC/USDT") == moved)

    with caplog.at_level(logging.WARNING, logger="connectors.okx.connector"):
        run(go())


def test_own_fill_newer_than_the_poll_wins() -> None:
    async def go() -> None:
        async with venue() as (_emu, conn):
            held = conn._last["BTC/USDT"]
            older = schemas.LastPrice(Decimal("1"), held.ts_ns - 1)
            assert not conn._note_price("BTC/USDT", older)
            assert conn.last_price("BTC/USDT") == held.price
            newer = schemas.LastPrice(Decimal("2"), held.ts_ns + 1)
            assert conn._note_price("BTC/USDT", newer)
            assert conn.last_price("BTC/USDT") == Decimal("2")

    run(go())


def test_emulator_tickers_shape_filter_and_limit() -> None:
    async def go() -> None:
        emu = OkxEmulator(CREDS, limits={"tickers": (3, 60.0)})
        await emu.start()
        try:
            ex = emu.core.exchange
            url = emu.urls["rest"] + "/api/v5/market/tickers"
            async with aiohttp.ClientSession() as s:
                async with s.get(url, params={"instType": "SPOT"}) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                assert body["code"] == "0"
                by_id = {t["instId"]: t for t in body["data"]}
                assert set(by_id) == {"BTC-USDT", "ETH-USDT"}
                t = by_id["BTC-USDT"]
                book = ex.book("BTC/USDT")
                assert t["instType"] == "SPOT"
                assert Decimal(t["last"]) == ex.last_price("BTC/USDT")
                assert Decimal(t["bidPx"]) == book.best_bid()
                assert Decimal(t["askPx"]) == book.best_ask()
                assert int(t["ts"]) == pytest.approx(emu.core.now_ms(), abs=5_000)
                async with s.get(url, params={"instType": "SWAP"}) as resp:
                    swaps = (await resp.json())["data"]
                assert [t["instId"] for t in swaps] == ["BTC-USDT-SWAP"]
                # swap sizes are contracts of 0.01 BTC: level_size 1 BTC = 100 contracts
                assert Decimal(swaps[0]["bidSz"]) == Decimal(100)
                async with s.get(url, params={"instType": "MARGIN"}) as resp:
                    assert resp.status == 400
                    assert (await resp.json())["code"] == "51000"
                async with s.get(url, params={"instType": "SPOT"}) as resp:
                    assert resp.status == 429  # the 4th request in the window
                    assert (await resp.json())["code"] == "50011"
            assert ("GET", "/api/v5/market/tickers") in emu.core.requests
        finally:
            await emu.stop()

    run(go())
