"""The order path's background work: every task it starts is kept until it ends (so shutting
down and tests can wait for the work in flight), and a failure is logged, never lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("fixgw.orders")


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("order task failed", exc_info=task.exception())

    def __bool__(self) -> bool:
        return bool(self._running)

    async def idle(self) -> None:
        """Until no task is running (those they start included)."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def wait(self, seconds: float) -> None:
        """Give the running tasks up to ``seconds`` to end."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=seconds)
