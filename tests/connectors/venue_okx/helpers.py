"""The OKX emulator and a connector pointed at it, for loopback tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from connectors.base import OrderRequest, OrderType, Side, VenueEvent
from connectors.common.credentials import Credentials
from connectors.common.emulator import EmulatorCore
from connectors.common.settings import VenueSettings
from connectors.okx import OkxConnector, OkxEmulator

CREDS = Credentials("okx-test-key-0001", "okx-test-secret", passphrase="okx-pass")


def settings(emulator: OkxEmulator, **kw: Any) -> VenueSettings:
    base: dict[str, Any] = dict(
        name="okx", credentials=CREDS, urls=emulator.urls,
        markets=frozenset({"spot", "perpetual"}), dead_man_s=None, request_timeout_s=0.5,
        max_429_wait_s=5.0, stream_idle_timeout_s=5.0, reconnect_base_s=0.05,
        reconnect_cap_s=0.2,
    )
    base.update(kw)
    return VenueSettings(**base)


@contextlib.asynccontextmanager
async def venue(core: EmulatorCore | None = None, emulator_kw: dict[str, Any] | None = None,
                cls: type[OkxConnector] = OkxConnector, **kw: Any
                ) -> AsyncIterator[tuple[OkxEmulator, OkxConnector]]:
    emu = OkxEmulator(CREDS, core, **(emulator_kw or {}))
    await emu.start()
    conn = cls(settings(emu, **kw))
    try:
        await conn.start()
        yield emu, conn
    finally:
        await conn.close()
        await emu.stop()


async def wait_for(cond: Callable[[], Any], within: float = 5.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Collector:
    """Drains a connector's events into a list in the background."""

    def __init__(self, conn: OkxConnector) -> None:
        self.events: list[VenueEvent] = []
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: OkxConnector) -> None:
        async for ev in conn.events():
            self.events.append(ev)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def limit_buy(cid: str, qty: str = "0.01", price: str = "96000", symbol: str = "BTC/USDT",
              **kw: Any) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, OrderType.LIMIT, Decimal(qty), Decimal(price),
                        **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
