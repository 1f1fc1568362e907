"""Identifiers that never repeat, across restarts and gateway nodes: blocks reserved from a
counter in the store, handed out synchronously, refilled in the background before they run out.

A clean stop gives back what was reserved and never handed out (:meth:`IdBlocks.release`), so
the next start goes on from the last id used (OrderIDs 1, 2, 3 across restarts, not 1, 10001,
20001). The store gives a range back only while nothing was reserved after it; when another
node reserved meanwhile, or the process died, the rest of the block is skipped: a gap, never
a repeat.

Ids taken later are higher on one node; across nodes, a node that takes over orders from
another goes on from a block reserved then (:meth:`IdBlocks.skip_ahead`), above every id handed
out before: an order's events keep increasing ids whichever node records them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class IdBlocks:
    def __init__(
        self,
        reserve: Callable[[str, int], Awaitable[int]],
        counter: str,
        block: int = 10_000,
        low_water: int = 2_000,
        give_back: Callable[[str, int, int], Awaitable[bool]] | None = None,
    ) -> None:
        self._reserve = reserve
        self._give_back = give_back
        self.counter = counter
        self.block = block
        self.low_water = low_water
        self._next = 0
        self._end = 0
        self._spare: list[int] = []
        self._refilling: asyncio.Task[None] | None = None
        self._released = False

    async def start(self) -> None:
        start = await self._reserve(self.counter, self.block)
        self._next, self._end = start, start + self.block
        self._released = False

    def take(self) -> int:
        if self._next >= self._end:
            if self._released:
                raise RuntimeError(f"no {self.counter} id available: the gateway is stopping")
            if not self._spare:
                raise RuntimeError(f"no {self.counter} id available: the store is not answering")
            start = self._spare.pop(0)
            self._next, self._end = start, start + self.block
        value = self._next
        self._next += 1
        if self._end - self._next < self.low_water and not self._spare and self._refilling is None:
            self._refilling = asyncio.get_running_loop().create_task(self._refill())
        return value

    async def _refill(self) -> None:
        try:
            self._spare.append(await self._reserve(self.counter, self.block))
        finally:
            self._refilling = None

    async def skip_ahead(self) -> None:
        """Go on from a block reserved now: every id taken after is above every id any node
        reserved before (the events of orders taken over from another node must follow theirs:
        :func:`~gateway.orders.model.apply`). The rest of the blocks in hand is skipped."""
        if self._refilling is not None:  # a refill asked before would land below the new block
            try:
                await self._refilling
            except Exception:  # noqa: S110 - a refill that failed reserved nothing
                pass
        start = await self._reserve(self.counter, self.block)
        self._next, self._end = start, start + self.block
        self._spare = [s for s in self._spare if s > start]  # (a refill asked meanwhile)

    async def release(self) -> bool:
        """Give back the ids never handed out, the last reserved first; none is handed out
        after. True when all were given back (the next start goes on from the next id)."""
        if self._refilling is not None:  # its block is the counter's last: wait for it
            try:
                await self._refilling
            except Exception:  # noqa: S110 - a refill that failed reserved nothing
                pass
        ranges = [(start, start + self.block) for start in self._spare]
        ranges.append((self._next, self._end))
        self._spare, self._next, self._released = [], self._end, True
        if self._give_back is None:
            return False
        for first, end in sorted(ranges, reverse=True):
            if first < end and not await self._give_back(self.counter, first, end):
                return False
        return True
