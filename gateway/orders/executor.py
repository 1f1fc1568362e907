"""Who works a client order once it is accepted: the venue side works it as one venue order
(:class:`~gateway.orders.venue.VenueSide`); a strategy (TargetStrategy, 847) works it as a parent
through child orders (:mod:`.children`). The request handlers know only :class:`Executor`."""

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


class Strategy(Protocol):
    """Works parents through child orders (:class:`~gateway.orders.children.Children`). It is
    called on the event loop, for what is stored only, and must not block."""

    def start(self, parent: Order) -> None:
        """``parent`` is stored: work it (acknowledge it, open children)."""

    def cancel(self, parent: Order) -> None:
        """``parent``'s pending cancel is stored: cancel its children, then the parent."""

    def replace(self, parent: Order) -> None:
        """``parent``'s pending replace is stored: carry it out, or refuse it."""

    def resume(self, parent: Order) -> None:
        """``parent`` was loaded from the store (a restart, a takeover), its children
        reconciled with their venues: go on working it, its pending cancel or replace
        included."""

    def child_event(self, parent: Order, child: Order, ev: OrderEvent) -> None:
        """An event was applied to ``child``, one of ``parent``'s venue orders."""
