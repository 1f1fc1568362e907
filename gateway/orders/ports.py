"""What the order path needs from the store and from the market (structural interfaces)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from connectors.base import Level, PublicTrade, Side
from gateway.store.records import (
    CopyRecord,
    FillRecord,
    OrderAppend,
    OrderEvent,
    PositionAdjustment,
    Snapshot,
)


@runtime_checkable
class OrderStorePort(Protocol):
    async def append_built(self, append: OrderAppend) -> None: ...

    def append_now(self, append: OrderAppend) -> asyncio.Future[None]: ...

    async def load_open_orders(self) -> list[Snapshot]: ...

    async def load_order(self, order_id: str) -> Snapshot | None: ...

    async def find_order(self, session_id: str, cl_ord_id: str) -> Snapshot | None: ...

    async def order_events(self, order_id: str, kind: str | None = None) -> list[OrderEvent]: ...

    async def find_order_by_past_cl(self, session_id: str, cl_ord_id: str
                                    ) -> Snapshot | None: ...

    async def find_list(self, session_id: str, list_id: str) -> list[Snapshot]: ...

    async def load_list(self, session_id: str, list_id: str
                        ) -> tuple[list[Snapshot], list[list[Any]]]: ...

    async def unreported_events(self, session_id: str) -> list[OrderEvent]: ...

    async def undelivered_copies(
        self, session_id: str, after_event_id: int, limit: int
    ) -> list[CopyRecord]: ...

    async def reserve(self, counter: str, n: int) -> int: ...

    async def release(self, counter: str, first: int, end: int) -> bool: ...

    async def fills_with_orders(self) -> list[tuple[FillRecord, Snapshot]]: ...

    async def save_adjustment(self, adjustment: PositionAdjustment) -> None: ...

    async def load_adjustments(self) -> list[PositionAdjustment]: ...

    def save_cod_override(self, session_id: str, mode: str | None) -> asyncio.Future[None]: ...

    async def load_cod_overrides(self) -> dict[str, str]: ...

    def save_kill_switch(
        self, scope: str, engaged: bool, reason: str = ""
    ) -> asyncio.Future[None]: ...

    async def load_kill_switches(self) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class Tape:
    """The public trades of an instrument seen so far: their total ``size`` and ``notional``
    (size x price) since the run ``tape_id`` began. Between two tapes of one ``tape_id`` the
    market's VWAP is the notional traded over the size traded; a new ``tape_id`` means trades
    may have been missed in between."""

    tape_id: str
    size: Decimal
    notional: Decimal


TradesListener = Callable[[str, Sequence[PublicTrade]], None]
"""Told of a venue's public trades of an instrument: ``(venue, trades)``, on the event loop."""


class MarketView(Protocol):
    """What the router and the strategies see of the market and of the account (composed in
    :mod:`gateway.app` from the market data feeds and the balance book)."""

    def levels(self, venue: str, symbol: str, side: Side) -> Sequence[Level] | None:
        """``venue``'s book of ``symbol`` on ``side`` (BUY: the bids, SELL: the asks), best
        first, while it is watched and in sync; None otherwise."""

    async def watch(self, venue: str, symbol: str,
                    on_trades: TradesListener | None = None) -> bool:
        """Keep ``venue``'s book of ``symbol`` up to date (and tell ``on_trades`` of its public
        trades) until :meth:`unwatch`; True once the book is known, False when it cannot be
        had (no public feed, not listed, no snapshot in time)."""

    def unwatch(self, venue: str, symbol: str, on_trades: TradesListener | None = None) -> None:
        """Stop what :meth:`watch` started with the same arguments."""

    def available(self, venue: str, asset: str) -> Decimal | None:
        """The account's free balance of ``asset`` at ``venue`` as the venue last told it;
        None when it is not known (no balance stream)."""

    def taker_fee(self, venue: str) -> Decimal:
        """The fee rate ``venue`` charges for taking liquidity (a fraction: 0.001 is 10 bp)."""

    def quote(self, venue: str, symbol: str) -> tuple[Decimal, Decimal] | None:
        """``venue``'s best bid and best ask of ``symbol`` while its book is watched, in sync
        and has both sides; None otherwise."""

    def tape(self, venue: str, symbol: str) -> Tape | None:
        """The public trades of ``symbol`` at ``venue`` counted while its book is watched;
        None when it is not."""


class NoMarket:
    """The market as seen without feeds: nothing known (the router falls back on last
    prices, the strategies on their plans)."""

    def levels(self, venue: str, symbol: str, side: Side) -> Sequence[Level] | None:
        return None

    async def watch(self, venue: str, symbol: str,
                    on_trades: TradesListener | None = None) -> bool:
        return False

    def unwatch(self, venue: str, symbol: str, on_trades: TradesListener | None = None) -> None:
        return None

    def available(self, venue: str, asset: str) -> Decimal | None:
        return None

    def taker_fee(self, venue: str) -> Decimal:
        return Decimal(0)

    def quote(self, venue: str, symbol: str) -> tuple[Decimal, Decimal] | None:
        return None

    def tape(self, venue: str, symbol: str) -> Tape | None:
        return None
