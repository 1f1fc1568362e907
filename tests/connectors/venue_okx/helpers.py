"""The OKX emulator and a connector pointed at it, for loopback tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from venue_common.support import Collector, run, until

from connectors.base import OrderRequest, OrderType, Side
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from connectors.okx import OkxConnector
from emulators.core import EmulatorCore
from emulators.okx import OkxEmulator

__all__ = ["CREDS", "Collector", "limit_buy", "run", "settings", "venue", "wait_for"]

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


def limit_buy(cid: str, qty: str = "0.01", price: str = "96000", symbol: str = "BTC/USDT",
              **kw: Any) -> OrderRequest:
    return OrderRequest(cid, symbol, Side.BUY, OrderType.LIMIT, Decimal(qty), Decimal(price),
                        **kw)


wait_for = until
