"""The simulated venue's markets from the configuration (``[[venue.market]]``): parameters of
the synthetic market per instrument, or a recorded market replayed from a CSV file."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from server.harness import run

from connectors.paper.market import read_recorded
from gateway.app import build_connector, paper_markets
from gateway.config import ConfigError, VenueConfig, load_config

from .support import BTC, running, venue

T0 = 1_700_000_000_000_000_000


def test_recorded_lines_are_shifted_to_the_start() -> None:
    lines = ["timestamp,mid", "", "# a comment", "1000,97000.5",
             "2023-11-14T22:13:20.000001Z,97001", "1700000000000002000,97002"]
    points = read_recorded(lines, T0)
    # 1000 ns, then 1_700_000_000.000001 s, then 1_700_000_000.000002 s after the epoch
    first = 1000
    assert points == [
        (T0, Decimal("97000.5")),
        (T0 + 1_700_000_000_000_001_000 - first, Decimal("97001")),
        (T0 + 1_700_000_000_000_002_000 - first, Decimal("97002")),
    ]


@pytest.mark.parametrize(("lines", "why"), [
    (["1000,97000", "999,97001"], "line 2: timestamps must not go back in time"),
    (["1000,97000", "2000,-1"], "line 2: mid must be a positive number"),
    (["1000,97000", "2000"], "line 2: expected two cells"),
    (["1000,97000", "2026-11-20T10:00:00,1"], "line 2: a timestamp needs its UTC offset"),
    (["timestamp,mid"], "no points"),
])
def test_a_bad_recording_is_refused_naming_the_line(lines: list[str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        read_recorded(lines, T0)


def test_a_configured_market_sets_the_book(tmp_path: Path) -> None:
    recorded = tmp_path / "eth.csv"
    recorded.write_text("timestamp,mid\n2026-11-20T10:00:00Z,2500\n2026-11-20T11:00:00Z,2600\n")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(
        '[[venue]]\nname = "paper"\ntick_interval = 3600\n'
        '[[venue.market]]\nsymbol = "BTC/USDT"\nmid = "50000"\nvolatility = "0"\nlevels = 3\n'
        'level_size = "0.25"\n'
        '[[venue.market]]\nsymbol = "ETH/USDT"\nrecorded = "eth.csv"\n'
    )
    v = load_config(cfg).venue[0]
    assert v.market[1].recorded == recorded  # relative to the configuration file
    markets = {m.instrument.symbol: m for m in paper_markets(v)}
    assert markets["BTC/USDT"].mid == Decimal("50000") and markets["BTC/USDT"].levels == 3
    assert markets["SOL/USDT"].mid == Decimal("180")  # not configured: the default
    path = markets["ETH/USDT"].path
    assert path is not None and [mid for _, mid in path] == [Decimal("2500"), Decimal("2600")]
    assert path[1][0] - path[0][0] == 3600 * 10**9  # the recorded pace
    conn = build_connector(v)

    async def body() -> None:
        await conn.start()
        try:
            book = conn.exchange.book(BTC)  # type: ignore[attr-defined]
            assert (book.best_bid(), book.best_ask()) == (Decimal("49999.99"),
                                                          Decimal("50000.01"))
            eth = conn.exchange.book("ETH/USDT")  # type: ignore[attr-defined]
            assert eth.best_bid() == Decimal("2499.99")  # the recording's first point
        finally:
            await conn.close()
    run(body())


@pytest.mark.parametrize(("market", "why"), [
    ({"symbol": "DOGE/USDT"}, "'DOGE/USDT' is not simulated (one of BTC/USDT"),
    ({"symbol": "BTC/USDT", "recorded": "absent.csv"}, "recorded market"),
    ({"symbol": "BTC/USDT", "level_size": "0.0000001"}, "level_size rounds to zero lots"),
    ({"symbol": "BTC/USDT", "trade_rate": "-1"}, "trade_rate"),
])
def test_a_bad_market_is_a_configuration_error(
    tmp_path: Path, market: dict[str, str], why: str
) -> None:
    if "recorded" in market:
        market = {**market, "recorded": str(tmp_path / market["recorded"])}
    with pytest.raises((ConfigError, ValidationError), match=re.escape(why)):
        build_connector(VenueConfig.model_validate({"name": "paper", "market": [market]}))


def test_a_configured_trade_flow_reaches_the_market() -> None:
    v = VenueConfig.model_validate({"name": "paper", "market": [
        {"symbol": "BTC/USDT", "trade_rate": "1.5", "trade_size": "0.02"}]})
    markets = {m.instrument.symbol: m for m in paper_markets(v)}
    assert markets["BTC/USDT"].trade_rate == Decimal("1.5")
    assert markets["BTC/USDT"].trade_size == Decimal("0.02")
    assert markets["ETH/USDT"].trade_rate == 0  # off unless configured


def test_orders_trade_against_a_configured_market(tmp_path: Path) -> None:
    async def body() -> None:
        market = {"symbol": "BTC/USDT", "mid": "50000", "volatility": "0"}
        async with running(tmp_path, venues=[venue(market=[market])]) as r:
            c = await r.client()
            await c.order("a", price="50100", qty="0.01")
            await c.er(t11="a", t150="0")
            m = await c.er(t11="a", t150="F", t39="2")
            assert Decimal(m[31]) == Decimal("50000.01")
    run(body())
