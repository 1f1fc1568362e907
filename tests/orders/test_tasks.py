"""The order path's background tasks (gateway.orders.tasks): kept until they end -- cancelled
before they started too (a wrapper that left the set from inside never ran then, and the
gateway's stop waited for it for ever) -- and a failure logged once and still raised to whoever
awaits the task."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from gateway.orders.tasks import Tasks


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


@pytest.mark.parametrize("started", [True, False])
def test_a_cancelled_task_leaves_the_set(started: bool) -> None:
    async def main() -> None:
        tasks = Tasks()
        task = tasks.spawn(asyncio.sleep(3600))
        if started:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        assert not tasks
        await asyncio.wait_for(tasks.idle(), 5)

    asyncio.run(main())
