"""The emulator's private WebSocket rules (login, ping/pong, idle close) and its rate limits,
and the connector's stream health."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import aiohttp
import pytest

from connectors.okx import OkxConnector
from connectors.okx.signing import ws_login_sign
from emulators.okx import OkxEmulator

from .helpers import CREDS, run, settings, venue, wait_for


def _login(secret: str, offset_s: int = 0) -> str:
    ts = str(int(time.time()) + offset_s)
    return json.dumps({"op": "login", "args": [{
        "apiKey": CREDS.api_key, "passphrase": CREDS.passphrase, "timestamp": ts,
        "sign": ws_login_sign(secret, ts)}]})


def test_ws_login_ping_and_idle_close() -> None:
    async def go() -> None:
        emu = OkxEmulator(CREDS, ws_idle_timeout_s=0.3)
        await emu.start()
        try:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(emu.urls["ws_private"]) as ws:
                    await ws.send_str(json.dumps({"op": "subscribe", "args": [
                        {"channel": "orders", "instType": "ANY"}]}))
                    assert json.loads(await ws.receive_str())["code"] == "60011"
                    await ws.send_str(_login(CREDS.secret))
                    ack = json.loads(await ws.receive_str())
                    assert (ack["event"], ack["code"]) == ("login", "0") and ack["connId"]
                    await ws.send_str("ping")
                    assert await ws.receive_str() == "pong"
                    # silence: the venue closes the connection
                    msg = await ws.receive(timeout=3)
                    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                    assert ws.close_code == 4004  # "No data received in 30s"
                async with s.ws_connect(emu.urls["ws_private"]) as ws:
                    await ws.send_str(json.dumps({"id": "7", "op": "subscribe", "args": [
                        {"channel": "orders", "instType": "ANY"}]}))
                    assert json.loads(await ws.receive_str())["msg"] == "Please log in"
                    await ws.send_str(_login(CREDS.secret))
                    await ws.receive_str()
                    await ws.send_str(json.dumps({"id": "7", "op": "subscribe", "args": [
                        {"channel": "orders", "instType": "ANY"}]}))
                    sub = json.loads(await ws.receive_str())  # docs-v5 "Order channel" shape
                    assert sub == {"id": "7", "event": "subscribe", "arg": {
                        "channel": "orders", "instType": "ANY"}, "connId": sub["connId"]}
                    await ws.send_str("{}")
                    bad = json.loads(await ws.receive_str())
                    assert (bad["code"], bad["msg"]) == ("60012", "Invalid request: {}")
                async with s.ws_connect(emu.urls["ws_private"]) as ws:
                    await ws.send_str(_login("wrong-secret"))
                    err = json.loads(await ws.receive_str())
                    assert (err["event"], err["code"], err["msg"]) == ("error", "60007",
                                                                       "Invalid sign")
                    msg = await ws.receive(timeout=3)
                    assert ws.close_code == 4001  # close frame "Login Failed"
                async with s.ws_connect(emu.urls["ws_private"]) as ws:
                    await ws.send_str(_login(CREDS.secret, offset_s=-120))
                    err = json.loads(await ws.receive_str())
                    assert (err["event"], err["code"]) == ("error", "60006")
                emu.core.faults.streams_down = True
                async with s.get(emu.urls["ws_private"]) as resp:
                    assert resp.status == 503
        finally:
            await emu.stop()

    run(go())


def test_emulator_enforces_endpoint_limits_and_the_connector_recovers() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            conn.limiter.windows.clear()  # forget our own accounting: hit OKX's limit
            got = await asyncio.gather(*(conn.balances() for _ in range(14)))
            assert all(got)
            assert emu.rate_limited > 0 and conn.rest.rate_limited == emu.rate_limited
            assert not conn.limiter.banned

    run(go())


def test_client_limiter_keeps_under_the_limit() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            await asyncio.gather(*(conn.balances() for _ in range(12)))
            assert emu.rate_limited == 0

    run(go())


def test_health_follows_the_stream() -> None:
    async def go() -> None:
        async with venue() as (emu, conn):
            assert (await conn.health()).connected
            emu.core.faults.streams_down = True
            await emu.drop_streams()
            await wait_for(lambda: conn._stream is not None and
                           not conn._stream.connected.is_set())
            assert not (await conn.health()).connected
            emu.core.faults.streams_down = False
            await wait_for(lambda: emu.logins >= 2)
            await wait_for(lambda: conn._stream is not None and conn._stream.connected.is_set())

    run(go())


def test_connector_refuses_credentials_without_passphrase() -> None:
    emu = OkxEmulator(CREDS)
    with pytest.raises(ValueError, match="passphrase"):
        OkxConnector(settings(emu, credentials=replace(CREDS, passphrase=None)))
