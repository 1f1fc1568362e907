"""Shared test plumbing: an emulator and a connector wired together over loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from connectors.base import VenueEvent
from connectors.binance import BinanceConnector, BinanceEmulator
from connectors.common.credentials import Credentials
from connectors.common.emulator import EmulatorCore
from connectors.common.settings import VenueSettings

CRED = Credentials("emu-api-key-000000000001", "emu-secret-000000000001")


def settings_for(emu: BinanceEmulator, credentials: Credentials = CRED,
                 **kw: Any) -> VenueSettings:
    base: dict[str, Any] = dict(
        name="binance", credentials=credentials, urls=emu.urls,
        symbols=("BTC/USDT", "ETH/USDT"), dead_man_s=None, request_timeout_s=0.5,
        max_429_wait_s=5.0, stream_idle_timeout_s=5.0, reconnect_base_s=0.05,
        reconnect_cap_s=0.2,
    )
    base.update(kw)
    return VenueSettings(**base)


async def wait_for(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll ``cond`` until true (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Collector:
    """Every event the connector emits, in order."""

    def __init__(self, conn: BinanceConnector) -> None:
        self.events: list[VenueEvent] = []
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: BinanceConnector) -> None:
        async for ev in conn.events():
            self.events.append(ev)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def running(core: EmulatorCore | None = None, credentials: Credentials = CRED,
                  emu_options: dict[str, Any] | None = None, **kw: Any
                  ) -> AsyncIterator[tuple[BinanceEmulator, BinanceConnector, Collector]]:
    emu = BinanceEmulator(credentials, core, **(emu_options or {}))
    await emu.start()
    conn = BinanceConnector(settings_for(emu, credentials, **kw))
    try:
        await conn.start()
        events = Collector(conn)
        try:
            yield emu, conn, events
        finally:
            await events.stop()
    finally:
        await conn.close()
        await emu.stop()
