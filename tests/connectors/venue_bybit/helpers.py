"""Running a BybitConnector against a BybitEmulator on loopback, and waiting on conditions."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from venue_common.support import Collector, run, until

from connectors.bybit import BybitConnector
from connectors.common.credentials import Credentials
from connectors.common.settings import VenueSettings
from emulators.bybit import BybitEmulator
from emulators.core import EmulatorCore

__all__ = ["CREDS", "Pair", "pair", "run", "settings", "wait_until"]

CREDS = Credentials("test-key-0001", "test-secret-0001")


async def wait_until(cond: Callable[[], Any], within_s: float = 5.0, what: str = "") -> None:
    """:func:`until`, failing with what was waited for."""
    try:
        await until(cond, within_s)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what or cond}") from None


@dataclass
class Pair:
    emulator: BybitEmulator
    connector: BybitConnector
    collector: Collector

    @property
    def core(self) -> EmulatorCore:
        return self.emulator.core

    def of(self, kind: type[Any], coid: str | None = None) -> list[Any]:
        return [e for e in self.collector.of(kind)
                if coid is None or e.client_order_id == coid]

    async def wait_event(self, kind: type[Any], coid: str | None = None, n: int = 1,
                         within_s: float = 5.0) -> list[Any]:
        await wait_until(lambda: len(self.of(kind, coid)) >= n, within_s,
                         f"{n} {kind.__name__} of {coid}")
        return self.of(kind, coid)


def settings(emulator: BybitEmulator, **kw: Any) -> VenueSettings:
    base: dict[str, Any] = dict(
        name="bybit", credentials=CREDS, urls=emulator.urls,
        markets=frozenset({"spot", "perpetual"}), dead_man_s=None, request_timeout_s=0.5,
        max_429_wait_s=5.0, reconnect_base_s=0.05, reconnect_cap_s=0.2,
    )
    base.update(kw)
    return VenueSettings(**base)


@contextlib.asynccontextmanager
async def pair(core: EmulatorCore | None = None, credentials: Credentials = CREDS,
               **kw: Any) -> AsyncIterator[Pair]:
    emulator = BybitEmulator(credentials, core)
    await emulator.start()
    connector = BybitConnector(settings(emulator, **kw))
    collector: Collector | None = None
    try:
        await connector.start()
        collector = Collector(connector)
        yield Pair(emulator, connector, collector)
    finally:
        if collector is not None:
            await collector.stop()
        await connector.close()
        await emulator.stop()
