"""The order path's background tasks (gateway.orders.tasks): kept until they end, a failure
logged once and still raised to whoever awaits the task, and no callback of their own after
they end (a done callback was a turn of the event loop per task, at 1 order in flight one
turn of six)."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from gateway.orders.tasks import Tasks


def test_a_task_is_kept_until_it_ends_and_schedules_nothing_after() -> None:
    async def main() -> None:
        tasks = Tasks()
        gate = asyncio.Event()

        async def work() -> int:
            await gate.wait()
            return 7

        task = tasks.spawn(work())
        # nothing is called back when it ends (but whoever awaits it)
        assert not task._callbacks  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        assert tasks  # running
        gate.set()
        assert await task == 7
        assert not tasks

    asyncio.run(main())


def test_a_failure_is_logged_once_and_raised_to_its_awaiter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        tasks = Tasks()

        async def fail() -> None:
            raise ValueError("boom")

        awaited = tasks.spawn(fail())
        with pytest.raises(ValueError, match="boom"):
            await awaited
        unawaited = tasks.spawn(fail())
        await tasks.idle()
        await asyncio.sleep(0)
        assert unawaited.done() and not tasks
        del awaited, unawaited

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
        gc.collect()
    failed = [r for r in caplog.records if r.getMessage() == "order task failed"]
    assert len(failed) == 2 and all(r.exc_info for r in failed)
    # the unawaited failure was seen: asyncio does not report it "never retrieved"
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_a_cancelled_task_leaves_the_set() -> None:
    async def main() -> None:
        tasks = Tasks()
        task = tasks.spawn(asyncio.sleep(3600))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not tasks

    asyncio.run(main())
