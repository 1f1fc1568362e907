"""A small, still market for tests: TST/USD spot and TST/USD:USD perpetual, a fake clock."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from venue_common.support import run

from connectors.base import (
    Instrument,
    InstrumentKind,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from connectors.paper.config import Faults, PaperConfig
from connectors.paper.exchange import PaperExchange
from connectors.paper.market import MarketConfig
from connectors.paper.venue import PaperConnector

D = Decimal
SPOT = "TST/USD"
PERP = "TST/USD:USD"
T0 = 1_800_000_000_000_000_000  # 2027-01-15T08:00:00Z, in ns
SEC = 1_000_000_000

TST_USD = Instrument(
    symbol=SPOT,
    venue_symbol="TST-USD",
    base="TST",
    quote="USD",
    tick_size=D("0.01"),
    lot_size=D("0.001"),
    min_qty=D("0.001"),
    min_notional=D("1"),
)
TST_USD_PERP = Instrument(
    symbol=PERP,
    venue_symbol="TST-USD-PERP",
    base="TST",
    quote="USD",
    kind=InstrumentKind.PERPETUAL,
    settle="USD",
    tick_size=D("0.1"),
    lot_size=D("0.001"),
    min_qty=D("0.001"),
    min_notional=D("1"),
)


@dataclass
class FakeClock:
    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 1.0) -> int:
        self.now += int(seconds * SEC)
        return self.now


def config(
    *,
    levels: int = 0,
    mid: str = "100",
    path: Sequence[tuple[int, Decimal]] | None = None,
    volatility: str = "0",
    balances: dict[str, Decimal] | None = None,
    faults: Faults | None = None,
    clock: FakeClock | None = None,
    perp_levels: int | None = None,
    seed: int = 7,
    **kwargs: Any,
) -> PaperConfig:
    """Quiet by default: no market maker (``levels=0``), a mid that does not move."""
    markets = (
        MarketConfig(
            TST_USD, D(mid), levels=levels, level_size=D("1"), volatility=D(volatility), path=path
        ),
        MarketConfig(
            TST_USD_PERP,
            D(mid),
            levels=levels if perp_levels is None else perp_levels,
            level_size=D("1"),
            volatility=D(volatility),
            path=path,
        ),
    )
    return PaperConfig(
        markets=markets,
        balances=balances if balances is not None else {"TST": D("100"), "USD": D("100000")},
        seed=seed,
        faults=faults or Faults(),
        clock=clock or FakeClock(),
        **kwargs,
    )


def exchange(**kwargs: Any) -> PaperExchange:
    return PaperExchange(config(**kwargs))


def connector(**kwargs: Any) -> PaperConnector:
    return PaperConnector(config(**kwargs))


def limit(
    cid: str,
    side: Side,
    qty: str,
    price: str,
    *,
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = SPOT,
    **kwargs: Any,
) -> OrderRequest:
    return OrderRequest(
        cid, symbol, side, OrderType.LIMIT, D(qty), D(price), time_in_force=tif, **kwargs
    )


def market(cid: str, side: Side, qty: str, *, symbol: str = SPOT, **kwargs: Any) -> OrderRequest:
    return OrderRequest(cid, symbol, side, OrderType.MARKET, D(qty), **kwargs)


def stop(
    cid: str, side: Side, qty: str, stop_price: str, price: str | None = None, **kwargs: Any
) -> OrderRequest:
    otype = OrderType.STOP if price is None else OrderType.STOP_LIMIT
    return OrderRequest(
        cid,
        kwargs.pop("symbol", SPOT),
        side,
        otype,
        D(qty),
        None if price is None else D(price),
        stop_price=D(stop_price),
        **kwargs,
    )


def balance(ex: PaperExchange, asset: str) -> tuple[Decimal, Decimal]:
    """``(free, locked)``."""
    for b in ex.balances():
        if b.asset == asset:
            return b.free, b.locked
    raise KeyError(asset)


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an ``async def`` test with :func:`run` (pytest-asyncio is not installed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        run(fn(*args, **kwargs))

    return wrapper
