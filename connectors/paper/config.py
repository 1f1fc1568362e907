"""Configuration of the paper venue: its markets, the account, fees, and injected faults."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from connectors.paper.market import MarketConfig, default_markets


@dataclass(frozen=True, slots=True)
class Faults:
    """Failures the paper venue injects, all off by default and reproducible with the seed.

    ``reject_*`` and ``timeout_*`` apply to the calls that change something (place, cancel,
    amend, cancel_all); ``latency_s`` and ``unavailable`` to every call; the ``*_event_*``
    faults to the event stream only (the order book, queries and ``fills_since`` stay true).
    """

    latency_s: float = 0.0
    """Awaited before each call is carried out."""
    reject_next: int = 0
    """The next n calls raise VenueRejected(OTHER, "injected"); nothing happens at the venue."""
    reject_rate: float = 0.0
    timeout_next: int = 0
    """The next n calls raise VenueAmbiguous (after the reject faults had their say)."""
    timeout_rate: float = 0.0
    timeout_mode: Literal["accepted", "lost"] = "lost"
    """"accepted": the call IS carried out, then VenueAmbiguous; "lost": it is not."""
    drop_event_rate: float = 0.0
    """An event is not put on the stream."""
    duplicate_event_rate: float = 0.0
    """An event is put on the stream twice."""
    reorder_window: int = 0
    """Events are held until n are waiting, then released shuffled (held ones are also released
    on every market tick and on close)."""
    unavailable: bool = False
    """Every call raises VenueUnavailable; health reports not connected."""

    def __post_init__(self) -> None:
        for name in ("reject_rate", "timeout_rate", "drop_event_rate", "duplicate_event_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {rate}")
        if self.latency_s < 0 or self.reject_next < 0 or self.timeout_next < 0:
            raise ValueError("latency_s, reject_next and timeout_next must not be negative")
        if self.reorder_window < 0:
            raise ValueError("reorder_window must not be negative")
        if self.timeout_mode not in ("accepted", "lost"):
            raise ValueError(
                f"timeout_mode must be 'accepted' or 'lost', not {self.timeout_mode!r}"
            )


def default_balances() -> dict[str, Decimal]:
    return {
        "BTC": Decimal("10"),
        "ETH": Decimal("100"),
        "SOL": Decimal("1000"),
        "USDT": Decimal("1000000"),
    }


@dataclass(frozen=True, slots=True)
class PaperConfig:
    markets: tuple[MarketConfig, ...] = field(default_factory=default_markets)
    balances: Mapping[str, Decimal] = field(default_factory=default_balances)
    """Starting free balance per asset."""
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    """Fee rates, charged in the asset received: a spot buy pays ``qty x rate`` of the base
    asset, a spot sell ``qty x price x rate`` of the quote; a perpetual pays the notional times
    the rate in its settle asset."""
    seed: int = 0
    tick_interval_s: float = 0.1
    """How often :meth:`PaperConnector.start`'s task advances the markets."""
    leverage: Decimal = Decimal("10")
    """Perpetuals: initial margin is notional / leverage (isolated per position)."""
    market_protection: Decimal = Decimal("0.05")
    """A market order trades no further than this fraction from the best price it saw (a buy
    reserves quantity x best ask x (1 + this))."""
    faults: Faults = field(default_factory=Faults)
    clock: Callable[[], int] = time.time_ns
    """UTC nanoseconds; the timestamps of calls made through the connector."""
    name: str = "paper"
    history: int = 20_000
    """Closed orders the venue keeps answering queries about (the oldest go beyond, with the
    fills made before the oldest order it still knows)."""

    def __post_init__(self) -> None:
        if self.maker_fee < 0 or self.taker_fee < 0:
            raise ValueError("fee rates must not be negative")
        if self.leverage <= 0 or not 0 <= self.market_protection < 1:
            raise ValueError("leverage > 0 and 0 <= market_protection < 1")
        if self.tick_interval_s <= 0:
            raise ValueError("tick_interval_s must be positive")
        symbols = [m.instrument.symbol for m in self.markets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"a symbol is configured twice: {symbols}")
