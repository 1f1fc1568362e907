import asyncio
import socket

import pytest
from aiohttp import web

from connectors.base import RejectReason, VenueAmbiguous, VenueRejected, VenueUnavailable
from connectors.common.http import Prepared, RestClient
from connectors.common.ratelimit import Priority

from .servers import Server


def make_app(state: dict[str, int], release: asyncio.Event) -> web.Application:
    async def storm(request: web.Request) -> web.Response:
        state["storm"] += 1
        if state["storm"] <= state["storm_len"]:
            return web.json_response({"code": -1003}, status=429, headers={"Retry-After": "0"})
        return web.json_response({"ok": True, "sig": request.query["sig"]})

    async def ban(request: web.Request) -> web.Response:
        state["ban"] += 1
        return web.json_response({"code": -1003}, status=418, headers={"Retry-After": "60"})

    async def flaky(request: web.Request) -> web.Response:
        state["flaky"] += 1
        if state["flaky"] == 1:
            return web.Response(status=503, text="busy")
        return web.json_response({"n": state["flaky"]})

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async def rejected(request: web.Request) -> web.Response:
        return web.json_response({"code": -2010, "msg": "insufficient"}, status=400)

    app = web.Application()
    app.router.add_route("*", "/storm", storm)
    app.router.add_route("*", "/ban", ban)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_route("*", "/hang", hang)
    app.router.add_route("*", "/rejected", rejected)
    return app


def run(coro_fn):  # type: ignore[no-untyped-def]
    async def main() -> None:
        state = {"storm": 0, "storm_len": 5, "ban": 0, "flaky": 0}
        release = asyncio.Event()
        async with Server(make_app(state, release)) as srv:
            client = RestClient(srv.url, name="t", timeout_s=0.3, max_429_wait_s=5)
            try:
                await coro_fn(client, state)
            finally:
                release.set()
                await client.close()

    asyncio.run(main())


def test_429_storm_is_retried_with_a_fresh_signature() -> None:
    async def body(client: RestClient, state: dict[str, int]) -> None:
        signed: list[int] = []

        def prepare() -> Prepared:
            signed.append(len(signed))
            return Prepared("POST", "/storm", query=f"sig={len(signed)}")

        resp = await client.send(prepare, priority=Priority.ORDER, mutating=True)
        assert resp.status == 200 and resp.json() == {"ok": True, "sig": "6"}
        assert state["storm"] == 6 and client.rate_limited == 5 and len(signed) == 6

    run(body)


def test_429_for_too_long_is_a_rate_limit_reject() -> None:
    async def body(client: RestClient, state: dict[str, int]) -> None:
        state["storm_len"] = 10**6
        client.max_429_wait_s = 0.0
        with pytest.raises(VenueRejected) as exc:
            await client.send(lambda: Prepared("POST", "/storm", query="sig=1"), mutating=True)
        assert exc.value.reason is RejectReason.RATE_LIMIT

    run(body)


def test_418_bans_and_nothing_more_is_sent() -> None:
    async def body(client: RestClient, state: dict[str, int]) -> None:
        with pytest.raises(VenueUnavailable, match="banned"):
            await client.send(lambda: Prepared("GET", "/ban"))
        with pytest.raises(VenueUnavailable, match="banned"):
            await client.send(lambda: Prepared("GET", "/ban"))
        assert state["ban"] == 1 and client.limiter.banned

    run(body)


def test_5xx_is_ambiguous_for_orders_and_retried_for_queries() -> None:
    async def body(client: RestClient, state: dict[str, int]) -> None:
        with pytest.raises(VenueAmbiguous, match="503"):
            await client.send(lambda: Prepared("POST", "/flaky"), mutating=True)
        state["flaky"] = 0
        resp = await client.send(lambda: Prepared("GET", "/flaky"))
        assert resp.json() == {"n": 2}

    run(body)


def test_timeout_is_ambiguous_and_4xx_is_the_venues_answer() -> None:
    async def body(client: RestClient, state: dict[str, int]) -> None:
        with pytest.raises(VenueAmbiguous, match="Timeout"):
            await client.send(lambda: Prepared("POST", "/hang"), mutating=True)
        with pytest.raises(VenueUnavailable):
            await client.send(lambda: Prepared("GET", "/hang"))
        resp = await client.send(lambda: Prepared("POST", "/rejected"), mutating=True)
        assert resp.status == 400 and resp.json()["code"] == -2010

    run(body)


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        client = RestClient(f"http://127.0.0.1:{port}", name="t", timeout_s=1)
        try:
            with pytest.raises(VenueUnavailable, match="cannot connect"):
                await client.send(lambda: Prepared("POST", "/x"), mutating=True)
        finally:
            await client.close()

    asyncio.run(main())


def test_failures_are_counted_and_the_last_one_kept_without_its_query() -> None:
    """What the health shows of a venue's REST API: requests, errors, whether it answers,
    the last failure (a signed request's query, its signature in it, never kept)."""
    async def body(client: RestClient, state: dict[str, int]) -> None:
        assert client.last_answer is None and client.last_error is None
        with pytest.raises(VenueAmbiguous):
            await client.send(lambda: Prepared("POST", "/flaky", query="signature=s3cr3t"),
                              mutating=True)
        assert client.errors == 1 and client.last_error == "HTTP 503"
        with pytest.raises(VenueAmbiguous):
            await client.send(lambda: Prepared("POST", "/hang", query="signature=s3cr3t"),
                              mutating=True)
        assert client.errors == 2 and "s3cr3t" not in (client.last_error or "")
        await client.send(lambda: Prepared("GET", "/flaky"))
        assert client.last_answer is not None and client.last_error is None
        client._error("ClientError url='http://x/api?signature=s3cr3t&x=1' y")  # noqa: SLF001
        assert client.last_error == "ClientError url='http://x/api?... y"

    run(body)
