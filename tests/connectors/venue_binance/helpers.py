"""Shared test plumbing: an emulator and a connector wired together over loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from venue_common.support import Collector, until

from connectors.binance import BinanceConnector
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from emulators.binance import BinanceEmulator
from emulators.core import EmulatorCore

wait_for = until

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
