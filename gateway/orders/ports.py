"""What the order path needs from the store (structural interface)."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from gateway.store.records import (
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

    async def unreported_events(self, session_id: str) -> list[OrderEvent]: ...

    async def reserve(self, counter: str, n: int) -> int: ...

    async def fills_with_orders(self) -> list[tuple[FillRecord, Snapshot]]: ...

    async def save_adjustment(self, adjustment: PositionAdjustment) -> None: ...

    async def load_adjustments(self) -> list[PositionAdjustment]: ...

    def save_cod_override(self, session_id: str, mode: str | None) -> asyncio.Future[None]: ...

    async def load_cod_overrides(self) -> dict[str, str]: ...

    def save_kill_switch(
        self, scope: str, engaged: bool, reason: str = ""
    ) -> asyncio.Future[None]: ...

    async def load_kill_switches(self) -> dict[str, str]: ...
