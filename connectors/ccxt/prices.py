"""Last prices for :meth:`~connectors.ccxt.connector.CcxtConnector.last_price`, polled with the
cheapest unified call the exchange has (ccxt Manual, "fetchLastPrices" and "Ticker structure"):
``fetchLastPrices`` (binance: GET /api/v3/ticker/price), else ``fetchTickers``, else
``fetchTicker`` per symbol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from decimal import Decimal
from typing import Any

from connectors.base import Instrument
from connectors.ccxt.schemas import LAST_PRICE, TICKER

PRICE_POLL_S = 5.0
"""How often last prices are polled (the Binance native connector's ticker poll period)."""


def price_method(has: Mapping[str, Any]) -> str | None:
    """The cheapest unified call for last prices the exchange ``has``: one request for many
    symbols (``fetchLastPrices``, else ``fetchTickers``), else one per symbol."""
    for name in ("fetchLastPrices", "fetchTickers", "fetchTicker"):
        if has.get(name):
            return name
    return None


def price_symbols(configured: Sequence[str] | None, in_use: Iterable[str],
                  instruments: Mapping[str, Instrument], *, bulk: bool) -> list[str]:
    """The ``configured`` symbols, else those ``in_use`` (of the orders watched or placed in
    this session); with none of those, every loaded instrument when one request gives them all
    (``bulk``: the gateway's pre-trade checks need a price before the first order), else
    none."""
    wanted = configured or in_use
    syms = sorted(s for s in wanted if s in instruments)
    if not syms and not configured and bulk:
        syms = sorted(instruments)
    return syms


async def fetch_last_prices(exchange: Any, call: Callable[..., Awaitable[Any]], method: str,
                            symbols: Sequence[str], instruments: Mapping[str, Instrument],
                            into: MutableMapping[str, Decimal]) -> None:
    """One round of the price poll with ``method`` through ``call`` (the connector's, with its
    priorities and retries), each price put ``into`` as soon as its request answered. ccxt
    wants one market type per multi-symbol call (``market_symbols(..., sameTypeOnly,
    sameSubTypeOnly)``), so spot and perpetual symbols go in separate requests."""
    if method == "fetchTicker":
        for sym in symbols:
            raw = await call(method, exchange.fetch_ticker, sym)
            _put(into, sym, TICKER.convert(raw).to_price())
        return
    groups: dict[bool, list[str]] = {}
    for sym in symbols:
        groups.setdefault(instruments[sym].settle is None, []).append(sym)
    for group in groups.values():
        if method == "fetchLastPrices":
            raws = await call(method, exchange.fetch_last_prices, group)
            prices = {k: LAST_PRICE.convert(v).to_price() for k, v in (raws or {}).items()}
        else:
            raws = await call(method, exchange.fetch_tickers, group)
            prices = {k: TICKER.convert(v).to_price() for k, v in (raws or {}).items()}
        wanted = set(group)
        for sym, price in prices.items():
            if sym in wanted:
                _put(into, sym, price)


def _put(into: MutableMapping[str, Decimal], symbol: str, price: Decimal | None) -> None:
    if price is not None:
        into[symbol] = price
