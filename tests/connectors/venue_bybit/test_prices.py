"""Last prices from GET /v5/market/tickers: the recorded payloads, and the connector's poll
against the emulator over loopback."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import Side, VenueUnavailable
from connectors.bybit import BybitConnector, schemas

from .helpers import pair, run, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
BTC = "BTC/USDT"
ETH = "ETH/USDT"
PERP = "BTC/USDT:USDT"
TICKERS = ("GET", "/v5/market/tickers")


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# ---- recorded payloads (docs/v5/market/tickers.mdx, "Response Example") -----------------------


def test_tickers_spot() -> None:
    env = schemas.TICKERS.decode(load("rest_tickers_spot.json"))
    assert env.retCode == 0 and env.result.category == "spot"
    (t,) = env.result.list
    assert t.symbol == "BTCUSDT"
    assert t.to_last_price() == Decimal("20533.13")
    assert (Decimal(t.bid1Price), Decimal(t.ask1Price)) == (Decimal("20517.96"),
                                                             Decimal("20527.77"))
    assert t.markPrice == ""  # spot has none


def test_tickers_linear_inverse_shape() -> None:
    # The docs' "Linear/Inverse" tab documents one shape; its only example is category=inverse.
    env = schemas.TICKERS.decode(load("rest_tickers_inverse.json"))
    (t,) = env.result.list
    assert t.symbol == "BTCUSD"
    assert t.to_last_price() == Decimal("120635.50")
    assert Decimal(t.markPrice) == Decimal("114898.43")
    assert Decimal(t.bid1Size) == Decimal("1063")


def test_last_price_falls_back_to_the_mid_then_none() -> None:
    assert schemas.Ticker("X", lastPrice="", bid1Price="10", ask1Price="11").to_last_price() == (
        Decimal("10.5"))
    assert schemas.Ticker("X", lastPrice="0", bid1Price="10", ask1Price="").to_last_price() is None
    assert schemas.Ticker("X").to_last_price() is None


# ---- connector <-> emulator -----------------------------------------------------------------


@pytest.fixture
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BybitConnector, "PRICE_POLL_S", 0.05)


@pytest.fixture
def no_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BybitConnector, "PRICE_POLL_S", 3600.0)


@pytest.mark.usefixtures("no_poll")
def test_start_polls_every_category_once() -> None:
    async def go() -> None:
        async with pair() as p:
            c, exchange = p.connector, p.core.exchange
            assert p.core.requests.count(TICKERS) == 2  # spot and linear
            for symbol in (BTC, ETH, PERP):
                assert c.last_price(symbol) == exchange.last_price(symbol)
            assert c.last_price("DOGE/USDT") is None
    run(go())


@pytest.mark.usefixtures("fast_poll")
@pytest.mark.parametrize(("symbol", "side"), [(BTC, Side.BUY), (PERP, Side.SELL)])
def test_a_later_poll_sees_the_market_trade(symbol: str, side: Side) -> None:
    async def go() -> None:
        async with pair() as p:
            c, exchange = p.connector, p.core.exchange
            before = exchange.last_price(symbol)
            assert c.last_price(symbol) == before
            traded, ours = p.core.trade_against(symbol, side, Decimal("0.2"))
            assert traded > 0 and ours == 0  # only the market maker's quotes: no fill of ours
            after = exchange.last_price(symbol)
            assert after != before
            polls = p.core.requests.count(TICKERS)
            await wait_until(lambda: c.last_price(symbol) == after, what="the polled price")
            assert p.core.requests.count(TICKERS) > polls
    run(go())


@pytest.mark.usefixtures("fast_poll")
def test_a_failed_poll_is_logged_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with pair(markets=frozenset({"spot"})) as p:
            c = p.connector
            p.core.faults.error_5xx_next = 3  # the first try and both retries of one GET
            await wait_until(lambda: p.core.faults.error_5xx_next == 0, what="the 503s")
            await wait_until(lambda: "polling spot tickers failed" in caplog.text,
                             what="the warning")
            p.core.trade_against(BTC, Side.SELL, Decimal("0.2"))
            after = p.core.exchange.last_price(BTC)
            await wait_until(lambda: c.last_price(BTC) == after, what="a poll after the failure")
            assert not c._tasks[-1].done()
    with caplog.at_level(logging.WARNING, logger="connectors.bybit.connector"):
        run(go())


@pytest.mark.usefixtures("no_poll")
def test_one_configured_symbol_is_asked_for_alone() -> None:
    async def go() -> None:
        async with pair(symbols=(BTC,), markets=frozenset({"spot"})) as p:
            assert p.connector.last_price(BTC) == p.core.exchange.last_price(BTC)
            assert p.connector.last_price(ETH) is None
    run(go())


def test_emulator_answers_the_documented_shape() -> None:
    async def go() -> None:
        import aiohttp

        async with pair() as p, aiohttp.ClientSession() as http:
            base = p.emulator.urls["rest"]
            async with http.get(f"{base}/v5/market/tickers?category=linear") as resp:
                body = await resp.json()
            assert body["retCode"] == 0 and body["retMsg"] == "OK"
            assert body["result"]["category"] == "linear"
            (t,) = body["result"]["list"]
            book = p.core.exchange.book(PERP)
            assert t["symbol"] == "BTCUSDT"
            assert Decimal(t["lastPrice"]) == p.core.exchange.last_price(PERP)
            assert Decimal(t["bid1Price"]) == book.best_bid()
            assert Decimal(t["ask1Price"]) == book.best_ask()
            assert Decimal(t["bid1Size"]) > 0 and t["markPrice"] and t["fundingRate"]
            async with http.get(f"{base}/v5/market/tickers?category=spot&symbol=NOPE") as resp:
                body = await resp.json()
            assert body["retCode"] == 10001
    run(go())


@pytest.mark.usefixtures("no_poll")
def test_tickers_count_in_the_ip_limit() -> None:
    async def go() -> None:
        async with pair() as p:
            p.emulator.ip_limit = 1
            p.emulator._ip_window = (-1, 0)
            await p.connector.poll_prices("spot")  # the first of the window passes
            with pytest.raises(VenueUnavailable):
                await p.connector.poll_prices("spot")  # 403: over the IP limit
            assert p.connector.limiter.banned
    run(go())
