"""Identifiers that never repeat, across restarts and gateway nodes: blocks reserved from a
counter in the store, handed out synchronously, refilled in the background before they run out.
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
    ) -> None:
        self._reserve = reserve
        self.counter = counter
        self.block = block
        self.low_water = low_water
        self._next = 0
        self._end = 0
        self._spare: list[int] = []
        self._refilling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        start = await self._reserve(self.counter, self.block)
        self._next, self._end = start, start + self.block

    def take(self) -> int:
        if self._next >= self._end:
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
