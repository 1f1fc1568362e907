"""Who works a client order once it is accepted: the venue side works it as one venue order
(:class:`~gateway.orders.venue.VenueSide`); a strategy (TargetStrategy, 847) works it as a parent
through child orders (:mod:`.children`). The request handlers know only this interface."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from .model import Order, OrderEvent


class Executor(Protocol):
    async def place(self, o: Order, persisted: Awaitable[None]) -> None:
        """Work ``o`` once ``persisted`` (its stored intent) resolves."""

    async def cancel(self, o: Order) -> None:
        """Carry out ``o``'s pending cancel."""

    async def replace(self, o: Order, persisted: Awaitable[None] | None) -> None:
        """Carry out ``o``'s pending replace once ``persisted`` resolves (None: stored)."""


class Strategy(Executor, Protocol):
    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        """An event was applied to ``child``, one of ``parent``'s venue orders."""
