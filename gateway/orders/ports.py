"""What the order path needs from the store (structural interface)."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from gateway.store.orders import OrderAppend

from .model import Order, OrderEvent


@runtime_checkable
class OrderStorePort(Protocol):
    async def append_built(self, append: OrderAppend) -> None: ...

    def append_now(self, append: OrderAppend) -> asyncio.Future[None]: ...

    async def load_open_orders(self) -> list[Order]: ...

    async def load_order(self, order_id: str) -> Order | None: ...

    async def find_order(self, session_id: str, cl_ord_id: str) -> Order | None: ...

    async def unreported_events(self, session_id: str) -> list[OrderEvent]: ...

    async def reserve(self, counter: str, n: int) -> int: ...

    def save_cod_override(self, session_id: str, mode: str | None) -> asyncio.Future[None]: ...

    async def load_cod_overrides(self) -> dict[str, str]: ...

    def save_kill_switch(
        self, scope: str, engaged: bool, reason: str = ""
    ) -> asyncio.Future[None]: ...

    async def load_kill_switches(self) -> dict[str, str]: ...
