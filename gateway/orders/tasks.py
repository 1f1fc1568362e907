"""The order path's background work: every task it starts is kept until it ends (so shutting
down and tests can wait for the work in flight), and a failure is logged, never lost. Timers
(work at a later time: a strategy's next slice) are kept too, so that a gateway that stops
cancels them: nothing it scheduled runs once it is gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("fixgw.orders")


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopped = False

    def later(self, delay: float, call: Callable[[], None]) -> asyncio.TimerHandle:
        """Run ``call`` on the loop in ``delay`` seconds (at once when not positive), unless
        :meth:`stop_timers` comes first. A failure is logged."""
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._timers.discard(handle)
            try:
                call()
            except Exception:
                log.exception("order timer failed")

        handle = asyncio.get_running_loop().call_later(max(delay, 0.0), fire)
        if self._stopped:  # the gateway is stopping: nothing it schedules runs
            handle.cancel()
            return handle
        self._timers.add(handle)
        return handle

    def cancel_timer(self, handle: asyncio.TimerHandle) -> None:
        handle.cancel()
        self._timers.discard(handle)

    def stop_timers(self) -> None:
        """Cancel every timer, and every one asked for from now on (the gateway stops)."""
        self._stopped = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

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
