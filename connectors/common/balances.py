"""The balances a venue's private stream pushes, handed to one reader: the latest figures of each
asset, so a reader that lags gets where the account is now rather than a backlog (and nothing
grows without bound when nobody reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from connectors.base import BalanceUpdate


class LatestBalances:
    """Asset -> its latest :class:`BalanceUpdate` not yet read."""

    def __init__(self) -> None:
        self._pending: dict[str, BalanceUpdate] = {}
        self._ready = asyncio.Event()
        self._closed = False
        self.pushed = 0
        """Updates put so far (tests, diagnostics)."""

    def put(self, updates: Iterable[BalanceUpdate]) -> None:
        for u in updates:
            self._pending[u.asset] = u
            self.pushed += 1
        if self._pending:
            self._ready.set()

    def close(self) -> None:
        """End :meth:`updates` once what is pending is read."""
        self._closed = True
        self._ready.set()

    async def updates(self) -> AsyncIterator[BalanceUpdate]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._pending = self._pending, {}
            for u in batch.values():
                yield u
            if self._closed and not self._pending:
                return
