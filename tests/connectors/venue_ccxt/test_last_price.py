"""CcxtConnector's last-price poll over the fake exchange: known right after start(), then
updated by the background poll, with each of the unified calls it can use (fetchLastPrices,
fetchTickers, fetchTicker); and the recorded price structures through the schemas."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from venue_common.support import run, until

from connectors.base import OrderRequest, OrderType, Side
from connectors.ccxt import CcxtConnector
from connectors.ccxt.schemas import LAST_PRICE, TICKER

from .fake import FakeExchange
from .test_connector_fake import settings

FIXTURES = Path(__file__).parent / "fixtures"
BOTH = frozenset({"spot", "perpetual"})
CALL = {"fetchLastPrices": "fetch_last_prices", "fetchTickers": "fetch_tickers",
        "fetchTicker": "fetch_ticker"}


def connector(fake: FakeExchange, price_poll_s: float = 0.02, **kw: Any) -> CcxtConnector:
    return CcxtConnector(settings(**kw), "fake", {"poll_interval_s": 3600, "events": "poll",
                                                  "price_poll_s": price_poll_s}, exchange=fake)


def price_calls(fake: FakeExchange) -> list[tuple[str, tuple[Any, ...]]]:
    return [c for c in fake.calls if c[0] in CALL.values()]


def test_price_structures_parse() -> None:
    lp = LAST_PRICE.decode((FIXTURES / "last_price.json").read_bytes())
    assert lp.symbol == "BTC/USDT" and lp.to_price() == Decimal("97000.01")
    t = TICKER.decode((FIXTURES / "ticker.json").read_bytes())
    assert t.symbol == "BTC/USDT" and t.to_price() == Decimal("97000.01")
    # from ccxt's floats: through their repr, never binary arithmetic
    assert TICKER.convert({"symbol": "X/Y", "last": 0.1 + 0.2}).to_price() == \
        Decimal("0.30000000000000004")
    assert TICKER.convert({"symbol": "X/Y", "last": None, "close": 2.5}).to_price() == \
        Decimal("2.5")
    assert LAST_PRICE.convert({"symbol": "X/Y", "price": None}).to_price() is None


@pytest.mark.parametrize("method", list(CALL))
def test_known_after_start_then_updated(method: str) -> None:
    async def go() -> None:
        fake = FakeExchange(**{method: True})
        conn = connector(fake, markets=BOTH, symbols=("BTC/USDT", "BTC/USDT:USDT"))
        await conn.start()
        try:
            assert conn.last_price("BTC/USDT") == Decimal("97000.01")
            assert conn.last_price("BTC/USDT:USDT") == Decimal("97010.5")
            calls = price_calls(fake)
            assert {c[0] for c in calls} == {CALL[method]}
            if method != "fetchTicker":  # one market type per request, as ccxt wants
                assert sorted(c[1][0] for c in calls[:2]) == [["BTC/USDT"], ["BTC/USDT:USDT"]]
            fake.prices["BTC/USDT"] = 96500.25
            await until(lambda: conn.last_price("BTC/USDT") == Decimal("96500.25"))
            assert isinstance(conn.last_price("BTC/USDT"), Decimal)
        finally:
            await conn.close()
        assert not conn._tasks  # the loop is cancelled on close
    run(go())


def test_no_symbols_bulk_polls_every_instrument() -> None:
    async def go() -> None:
        fake = FakeExchange(fetchLastPrices=True)
        conn = connector(fake)  # spot only, no symbols configured, no orders yet
        await conn.start()
        try:
            assert conn.last_price("BTC/USDT") == Decimal("97000.01")
            assert conn.last_price("BTC/USDT:USDT") is None  # not a market loaded
        finally:
            await conn.close()
    run(go())


def test_per_symbol_polls_only_the_symbols_traded() -> None:
    async def go() -> None:
        fake = FakeExchange(fetchTicker=True)
        conn = connector(fake)
        await conn.start()
        try:
            assert conn.last_price("BTC/USDT") is None and not price_calls(fake)
            await conn.place(OrderRequest("c1", "BTC/USDT", Side.BUY, OrderType.LIMIT,
                                          Decimal("0.01"), Decimal("90000")))
            await until(lambda: conn.last_price("BTC/USDT") == Decimal("97000.01"))
            assert {c[1] for c in price_calls(fake)} == {("BTC/USDT",)}
        finally:
            await conn.close()
    run(go())


def test_failed_poll_at_start_does_not_stop_start() -> None:
    async def go() -> None:
        fake = FakeExchange(fetchLastPrices=True)
        fake.fail["fetch_last_prices"] = [ccxt_async.ExchangeError("fake down for a moment")]
        conn = connector(fake, symbols=("BTC/USDT",))
        await conn.start()
        try:
            assert conn.last_price("BTC/USDT") is None
            await until(lambda: conn.last_price("BTC/USDT") == Decimal("97000.01"))
        finally:
            await conn.close()
    run(go())


def test_price_poll_off() -> None:
    async def go() -> None:
        fake = FakeExchange(fetchLastPrices=True)
        conn = connector(fake, price_poll_s=0)
        await conn.start()
        try:
            assert conn.last_price("BTC/USDT") is None and not price_calls(fake)
        finally:
            await conn.close()
    run(go())
