import asyncio

import pytest

from connectors.common.backoff import Backoff
from connectors.common.ratelimit import Priority, RateLimited, RateLimiter, WindowSpec


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_background_keeps_room_for_orders() -> None:
    clock = Clock()
    rl = RateLimiter((WindowSpec("w", 10, 60),), background_share=0.8, clock=clock)

    async def main() -> None:
        for _ in range(8):
            await rl.acquire({"w": 1}, Priority.BACKGROUND, max_wait_s=0)
        with pytest.raises(RateLimited):
            await rl.acquire({"w": 1}, Priority.BACKGROUND, max_wait_s=0)
        await rl.acquire({"w": 2}, Priority.ORDER, max_wait_s=0)  # orders use the rest
        with pytest.raises(RateLimited) as exc:
            await rl.acquire({"w": 1}, Priority.ORDER, max_wait_s=0)
        assert 0 < exc.value.wait_s <= 60
        clock.t += 60  # the next window
        await rl.acquire({"w": 10}, Priority.ORDER, max_wait_s=0)

    asyncio.run(main())


def test_venue_usage_and_blocks() -> None:
    clock = Clock()
    rl = RateLimiter((WindowSpec("weight", 100, 60),), clock=clock)

    async def main() -> None:
        rl.observe("weight", 99)  # the venue counted requests of another process
        with pytest.raises(RateLimited):
            await rl.acquire({"weight": 2}, Priority.ORDER, max_wait_s=0)
        clock.t += 60
        rl.block_for(5)
        with pytest.raises(RateLimited):
            await rl.acquire({"weight": 1}, Priority.ORDER, max_wait_s=1)
        clock.t += 5
        await rl.acquire({"weight": 1}, Priority.ORDER, max_wait_s=0)
        rl.ban_for(120)
        assert rl.banned and rl.banned_for == 120
        clock.t += 121
        assert not rl.banned

    asyncio.run(main())


def test_waits_for_the_next_window() -> None:
    rl = RateLimiter((WindowSpec("w", 2, 0.2),))
    w = rl.windows["w"]

    async def main() -> list[tuple[float, int]]:
        counted = []
        for _ in range(5):
            await rl.acquire({"w": 1}, Priority.ORDER)
            counted.append((w._start, w.used))
        return counted

    counted = asyncio.run(main())
    # 5 requests at 2 per window: never more than 2 counted in one, so at least 3 windows
    assert max(used for _, used in counted) <= 2
    assert len({start for start, _ in counted}) >= 3


def test_backoff_grows_with_jitter_and_resets() -> None:
    import random

    b = Backoff(0.5, 8.0, random.Random(1))
    delays = [b.next() for _ in range(8)]
    for i, d in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2**i)
        assert ceiling / 2 <= d <= ceiling
    b.reset()
    assert b.next() <= 0.5
