"""Test plumbing every venue connector's tests share: bounded waits and an event collector."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from connectors.base import Connector, VenueEvent
from connectors.common.venue import StreamingConnector

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run a test's coroutine, bounded (a hang fails instead of blocking the suite)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(cond: Callable[[], Any], within_s: float = 5.0) -> Any:
    """Poll ``cond`` until it is truthy and return its value; fail after ``within_s``. For a
    condition another task or the emulator makes true, with no event to wait on."""
    deadline = time.monotonic() + within_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def drain(conn: StreamingConnector) -> list[VenueEvent]:
    """The events a connector has queued so far (no waiting)."""
    out: list[VenueEvent] = []
    while not conn._events.empty():
        out.append(conn._events.get_nowait())
    return out


class Collector:
    """Every event a connector emits, in order, gathered in the background."""

    def __init__(self, conn: Connector) -> None:
        self.events: list[VenueEvent] = []
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: Connector) -> None:
        async for ev in conn.events():
            self.events.append(ev)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
