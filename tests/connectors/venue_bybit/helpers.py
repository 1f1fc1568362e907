"""Running a BybitConnector against a BybitEmulator on loopback, and waiting on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectors.base import VenueEvent
from connectors.bybit import BybitConnector, BybitEmulator
from connectors.common.credentials import Credentials
from connectors.common.emulator import EmulatorCore
from connectors.common.settings import VenueSettings

T = TypeVar("T")

CREDS = Credentials("test-key-0001", "test-secret-0001")


def run(coro: Awaitable[T], timeout: float = 15.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def wait_until(cond: Callable[[], bool], within_s: float = 5.0,
                     what: str = "") -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)


@dataclass
class Pair:
    emulator: BybitEmulator
    connector: BybitConnector
    events: list[VenueEvent] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def core(self) -> EmulatorCore:
        return self.emulator.core

    async def _read(self) -> None:
        async for ev in self.connector.events():
            self.events.append(ev)

    def of(self, kind: type[Any], coid: str | None = None) -> list[Any]:
        return [e for e in self.events
                if isinstance(e, kind) and (coid is None or e.client_order_id == coid)]

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
    p = Pair(emulator, connector)
    try:
        await connector.start()
        p._reader = asyncio.create_task(p._read())
        yield p
    finally:
        if p._reader is not None:
            p._reader.cancel()
        await connector.close()
        await emulator.stop()
