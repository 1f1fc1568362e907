import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from connectors.common.backoff import Backoff
from connectors.common.stream import PingPolicy, Ws, WsStream

from .servers import Server
from .support import until


class Venue:
    """Logs a client in, pushes what the test queues, answers app-level pings, can cut."""

    def __init__(self) -> None:
        self.conns: list[web.WebSocketResponse] = []
        self.logins = 0
        self.pings = 0
        self.silent = False
        self.refuse = False

    async def handler(self, request: web.Request) -> web.StreamResponse:
        if self.refuse:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.conns.append(ws)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            if msg.data == "login":
                self.logins += 1
                await ws.send_str("ok")
            elif msg.data == "ping":
                self.pings += 1
                if not self.silent:
                    await ws.send_str("pong")
        return ws

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.handler)
        return app


def stream(url: str, got: list[str], reconnected: list[int],
           **kw: object) -> WsStream:
    async def on_open(ws: Ws) -> None:
        await ws.send_str("login")
        assert await ws.receive_str(timeout=2) == "ok"

    async def on_reconnected() -> None:
        reconnected.append(1)

    return WsStream(url, name="t", on_open=on_open, on_message=got.append,
                    on_reconnected=on_reconnected, backoff=Backoff(0.01, 0.05), **kw)  # type: ignore[arg-type]


def run(body: Callable[[Venue, str], Awaitable[None]]) -> None:
    async def main() -> None:
        venue = Venue()
        async with Server(venue.app()) as srv:
            await body(venue, f"ws://127.0.0.1:{srv.port}/ws")

    asyncio.run(main())


def test_reconnects_logs_in_again_and_reconciles_once_per_reconnect() -> None:
    async def body(venue: Venue, url: str) -> None:
        got: list[str] = []
        rec: list[int] = []
        s = stream(url, got, rec)
        await s.start()
        assert s.connected.is_set() and venue.logins == 1 and rec == []
        await venue.conns[-1].send_str("event-1")
        await until(lambda: got == ["event-1"])
        for n in (2, 3):
            await venue.conns[-1].close()
            await until(lambda n=n: venue.logins == n and len(rec) == n - 1)  # type: ignore[misc]
        await venue.conns[-1].send_str("event-2")
        await until(lambda: got == ["event-1", "event-2"])
        assert s.connects == 3
        await s.close()

    run(body)


def test_pings_and_reconnects_when_the_venue_goes_silent() -> None:
    async def body(venue: Venue, url: str) -> None:
        got: list[str] = []
        rec: list[int] = []
        s = stream(url, got, rec, ping=PingPolicy(0.05, lambda: "ping"), idle_timeout_s=0.3)
        await s.start()
        await until(lambda: venue.pings >= 3)
        assert s.connects == 1  # pongs keep it alive
        venue.silent = True
        await until(lambda: s.connects == 2)
        assert venue.logins == 2 and "pong" in got
        await s.close()

    run(body)


def test_a_stream_that_connects_late_catches_up_like_a_reconnect() -> None:
    async def body(venue: Venue, url: str) -> None:
        got: list[str] = []
        rec: list[int] = []
        venue.refuse = True
        s = stream(url, got, rec)
        await s.start(wait_s=0.2)  # the venue is not there yet: the caller goes on
        assert not s.connected.is_set()
        venue.refuse = False
        await until(lambda: s.connects == 1 and rec == [1])
        await s.close()

    run(body)
