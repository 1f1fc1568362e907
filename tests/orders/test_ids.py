"""Id blocks (gateway.orders.ids): a node that takes orders over from another goes on above
every id reserved before, the blocks in hand and a refill under way included."""

from __future__ import annotations

import asyncio

from gateway.orders.ids import IdBlocks


class Counter:
    """The store's counter: blocks reserved one after the other (slowly, when told)."""

    def __init__(self) -> None:
        self.end = 1
        self.delay = 0.0

    async def reserve(self, counter: str, n: int) -> int:
        first, self.end = self.end, self.end + n
        await asyncio.sleep(self.delay)
        return first


def test_skip_ahead_goes_on_above_every_block_reserved_before() -> None:
    async def body() -> None:
        store = Counter()
        mine = IdBlocks(store.reserve, "event", block=10, low_water=3)
        await mine.start()  # 1 .. 10
        other = await store.reserve("event", 10)  # another node's block: 11 .. 20
        assert [mine.take() for _ in range(2)] == [1, 2]
        await mine.skip_ahead()
        assert mine.take() > other + 9

        store.delay = 0.05  # a refill under way when the node takes orders over
        taken = [mine.take() for _ in range(7)]
        assert taken[-1] == 28  # (the refill asked)
        await asyncio.sleep(0)
        reserved_before = store.end - 1
        await mine.skip_ahead()
        later = [mine.take() for _ in range(10)]
        await asyncio.sleep(0.2)  # (the refills land)
        later += [mine.take() for _ in range(5)]
        assert min(later) > reserved_before, (reserved_before, later)
        assert later == sorted(later)

    asyncio.run(body())
