"""``MarketFeed``: the I/O around :class:`~connectors.binance.book.DepthSync` for one
instrument: the public combined stream ``<symbol>@depth@100ms/<symbol>@trade`` ("WebSocket
Streams for Binance": raw streams at ``/ws/<streamName>``, combined ones at
``/stream?streams=...``, symbols lowercase), REST snapshots when the sync wants one, a refresh
every ``refresh_s``, and the consumer's side.

The socket is read by the stream's own task whatever the consumer does: every frame goes into
the sync at once, and the consumer is woken to take what changed (coalesced when it lags).
Binance pings every 20 s (aiohttp answers); a connection lives at most 24 h, and every new
connection starts with a new snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from connectors.base import MarketEvent
from connectors.binance.book import DepthSync
from connectors.common.backoff import Backoff
from connectors.common.stream import Ws, WsStream

log = logging.getLogger(__name__)

STREAM_URL = "wss://stream.binance.com:9443"
STREAM_TESTNET = "wss://stream.testnet.binance.vision"


def stream_url(base: str, venue_symbol: str) -> str:
    s = venue_symbol.lower()
    return f"{base.rstrip('/')}/stream?streams={s}@depth@100ms/{s}@trade"


def depth_weight(limit: int) -> int:
    """``GET /api/v3/depth``'s weight by ``limit`` ("Order book")."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class MarketFeed:
    def __init__(
        self, symbol: str, venue_symbol: str, *, base_url: str,
        fetch_snapshot: Callable[[], Awaitable[bytes]], name: str, refresh_s: float,
        idle_timeout_s: float, backoff: Backoff, snapshot_backoff: Backoff | None = None,
    ) -> None:
        self.symbol = symbol
        self.venue_symbol = venue_symbol
        self.sync = DepthSync(symbol)
        self.refresh_s = refresh_s
        self._fetch = fetch_snapshot
        self._backoff = snapshot_backoff or Backoff(0.05, 5.0)
        self.stream = WsStream(
            stream_url(base_url, venue_symbol), name=f"{name}-md-{venue_symbol}",
            on_open=self._on_open, on_message=self._on_message, idle_timeout_s=idle_timeout_s,
            backoff=backoff,
        )
        self._wake = asyncio.Event()
        self._want = asyncio.Event()
        self._closed = False
        self._snapshotter: asyncio.Task[None] | None = None
        self.snapshot_failures = 0

    # ---- the stream's side (its own task) ----------------------------------------------------

    async def _on_open(self, ws: Ws) -> None:
        self.sync.restart()
        self._want.set()

    def _on_message(self, text: str) -> None:
        if self.sync.feed(text):
            self._want.set()
        self._wake.set()

    async def _snapshots(self) -> None:
        """Fetch a snapshot whenever the sync wants one; ask for a refresh ``refresh_s`` after
        the last one was taken."""
        taken = time.monotonic()
        while True:
            try:
                left = max(0.0, taken + self.refresh_s - time.monotonic())
                await asyncio.wait_for(self._want.wait(), left)
            except TimeoutError:
                taken = time.monotonic()
                if self.sync.refresh():
                    log.info("%s: refreshing the %s book", self.stream.name, self.symbol)
                    self._want.set()
                continue
            self._want.clear()
            if not self.sync.wants_snapshot:
                continue
            try:
                body = await self._fetch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.snapshot_failures += 1
                log.warning("%s: depth snapshot failed: %s", self.stream.name, exc)
                await asyncio.sleep(self._backoff.next())
                self._want.set()
                continue
            if not self.sync.wants_snapshot:  # (never: nothing else takes snapshots)
                continue
            try:
                taken_now = self.sync.snapshot(body, time.time_ns())
            except msgspec.DecodeError as exc:  # (ValidationError is one)
                self.snapshot_failures += 1
                log.warning("%s: unreadable depth snapshot: %s", self.stream.name, exc)
                taken_now = False
            if taken_now:
                self._backoff.reset()
                taken = time.monotonic()
                self._wake.set()
            else:
                await asyncio.sleep(self._backoff.next())
                self._want.set()

    # ---- the consumer's side -----------------------------------------------------------------

    async def events(self) -> AsyncIterator[MarketEvent]:
        await self.stream.start(wait_s=None)
        task = self._snapshotter = asyncio.get_running_loop().create_task(
            self._snapshots(), name=f"{self.stream.name}-snapshots")
        task.add_done_callback(lambda _: self._wake.set())
        try:
            while not self._closed:
                await self._wake.wait()
                self._wake.clear()
                if task.done() and not task.cancelled():
                    task.result()  # its failure ends the feed
                for ev in self.sync.take():
                    yield ev
        finally:
            await self.close()

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        task, self._snapshotter = self._snapshotter, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stream.close()
