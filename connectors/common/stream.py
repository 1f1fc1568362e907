"""A WebSocket that stays connected: connect, log in and subscribe (``on_open``), read, ping by
the venue's rules, notice silence, reconnect with backoff and jitter, and after every reconnect
run ``on_reconnected`` (the connector's REST reconciliation), so nothing that happened while
the socket was down goes unreported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from connectors.common.backoff import Backoff

log = logging.getLogger(__name__)

Ws = aiohttp.ClientWebSocketResponse


@dataclass(frozen=True, slots=True)
class PingPolicy:
    """An application-level ping (OKX: the text ``ping`` within 30 s; Bybit: ``{"op":"ping"}``
    every 20 s). Binance pings at the protocol level and aiohttp answers those itself."""

    interval_s: float
    message: Callable[[], str]


class StreamError(Exception):
    """``on_open`` failed (login refused, subscription refused)."""


class WsStream:
    def __init__(
        self,
        url: str | Callable[[], str],
        *,
        name: str,
        on_open: Callable[[Ws], Awaitable[None]],
        on_message: Callable[[str], None],
        on_reconnected: Callable[[], Awaitable[None]] | None = None,
        ping: PingPolicy | None = None,
        idle_timeout_s: float = 60.0,
        backoff: Backoff | None = None,
        heartbeat_s: float | None = None,
    ) -> None:
        self._url = url
        self.name = name
        self.on_open = on_open
        self.on_message = on_message
        self.on_reconnected = on_reconnected
        self.ping = ping
        self.idle_timeout_s = idle_timeout_s
        self.heartbeat_s = heartbeat_s
        self.backoff = backoff or Backoff(0.1, 10.0)
        self.connects = 0
        """Successful connections (login and subscription done) so far."""
        self.failures = 0
        """Connections that failed or ended (each followed by a reconnect)."""
        self.last_error: BaseException | None = None
        """Why the last connection failed or ended (None: none has yet)."""
        self.last_message: float | None = None
        """When the last message was read (``time.monotonic()``)."""
        self.connected = asyncio.Event()
        self._ws: Ws | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._reconciling: asyncio.Task[None] | None = None
        self._late_start = False

    @property
    def url(self) -> str:
        return self._url() if callable(self._url) else self._url

    async def start(self, wait_s: float | None = 10.0) -> None:
        """Start the loop and wait (up to ``wait_s``) for the first successful connection."""
        if self._task is None:
            self._closing = False  # a stream closed before may be started again
            self._session = aiohttp.ClientSession()
            self._task = asyncio.create_task(self._run(), name=f"ws-{self.name}")
        if wait_s:
            try:
                await asyncio.wait_for(self.connected.wait(), wait_s)
            except TimeoutError:
                # the caller goes on without the stream: its first connection, when it comes,
                # must catch up on what happened meanwhile, as a reconnect does
                self._late_start = True
                log.warning("%s: stream not connected after %.0f s; going on without it",
                            self.name, wait_s)

    async def close(self) -> None:
        self._closing = True
        if self._reconciling is not None:
            self._reconciling.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def reconnect(self) -> bool:
        """Close the current connection: the stream connects again (and catches up, as after
        any reconnect). False when it is not connected now (it is trying already)."""
        ws = self._ws
        if ws is None or ws.closed:
            return False
        await ws.close()
        return True

    async def send_str(self, data: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionError(f"{self.name}: not connected")
        await ws.send_str(data)

    async def _run(self) -> None:
        assert self._session is not None
        while not self._closing:
            try:
                async with self._session.ws_connect(
                    self.url, heartbeat=self.heartbeat_s, autoping=True, max_msg_size=0
                ) as ws:
                    self._ws = ws
                    await self.on_open(ws)
                    self.connects += 1
                    self.backoff.reset()
                    self.connected.set()
                    log.info("%s: stream connected (%d)", self.name, self.connects)
                    if (self.connects > 1 or self._late_start) and self.on_reconnected is not None:
                        # reconcile while reading, so events keep flowing meanwhile
                        self._reconciling = asyncio.create_task(self._reconcile())
                    await self._read(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of a connection leads to a reconnect
                self.failures += 1
                self.last_error = exc
                log.warning("%s: stream failed: %s: %s", self.name, type(exc).__name__, exc)
            finally:
                self.connected.clear()
                self._ws = None
            if self._closing:
                break
            delay = self.backoff.next()
            log.info("%s: stream reconnecting in %.2f s", self.name, delay)
            await asyncio.sleep(delay)

    async def _reconcile(self) -> None:
        assert self.on_reconnected is not None
        try:
            await self.on_reconnected()
        except Exception:
            log.exception("%s: reconciliation after reconnect failed", self.name)

    async def _read(self, ws: Ws) -> None:
        pinger = asyncio.create_task(self._ping(ws)) if self.ping else None
        try:
            while True:
                timeout = self.idle_timeout_s
                try:
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    log.warning("%s: no message for %.0f s; reconnecting", self.name, timeout)
                    self.failures += 1
                    self.last_error = TimeoutError(f"no message for {timeout:.0f} s")
                    return
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self.last_message = time.monotonic()
                    text = msg.data if msg.type is aiohttp.WSMsgType.TEXT else msg.data.decode()
                    try:
                        self.on_message(text)
                    except Exception:
                        log.exception("%s: a message could not be handled: %.300s", self.name,
                                      text)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                  aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    log.info("%s: stream closed by the venue (%s)", self.name, msg.type.name)
                    self.failures += 1
                    self.last_error = ConnectionError(f"closed by the venue ({msg.type.name})")
                    return
        finally:
            if pinger is not None:
                pinger.cancel()

    async def _ping(self, ws: Ws) -> None:
        assert self.ping is not None
        while not ws.closed:
            await asyncio.sleep(self.ping.interval_s)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(self.ping.message())
