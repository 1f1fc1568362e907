"""The kill switch: engaged by an admin command (HTTP admin API, ``fixgw kill-switch``) or by the
configuration, it refuses new orders and cancels the open ones of its scope, and it holds across
a restart until it is released."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from server.harness import run

from gateway import cli
from gateway.app import build_gateway
from gateway.config import ConfigError, load_config
from gateway.store.store import SessionStore

from .support import (
    OrderClient,
    config,
    restart,
    resting,
    running,
    session,
    sid,
    unreachable_for_cancels,
    venue_survives,
)

TOKEN_ENV = "FIXGW_TEST_ADMIN_TOKEN"
TOKEN = "s3cret-admin-token"
ADMIN = {"host": "127.0.0.1", "port": 0, "token_env": TOKEN_ENV}


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


async def _admin(gw: Any, method: str, path: str, body: Any = None, *,
                 token: str | None = TOKEN, raw: bytes | None = None) -> tuple[int, Any]:
    assert gw.admin_address is not None
    host, port = gw.admin_address
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http, http.request(
        method, f"http://{host}:{port}{path}", json=body if raw is None else None,
        data=raw, headers=headers,
    ) as resp:
        return resp.status, await resp.json()


def test_an_engaged_session_is_cancelled_and_refused_until_released(tmp_path: Path) -> None:
    async def body() -> None:
        sessions = [session("CLIENT1"), session("CLIENT2")]
        async with running(tmp_path, sessions, admin=ADMIN) as r:
            c1, c2 = await r.client("CLIENT1"), await r.client("CLIENT2")
            await resting(c1, "a", "b", "c")
            await resting(c2, "z")
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          {"scope": sid("CLIENT1"), "engaged": True,
                                           "reason": "desk limit breached"})
            assert (status, answer) == (200, {"scope": sid("CLIENT1"), "engaged": True,
                                              "cancelling": 3})
            cancels = [await c1.er(t39="4", t150="4", t151="0") for _ in range(3)]
            assert {m[11] for m in cancels} == {"a", "b", "c"}
            assert all(m[58].startswith("kill switch") for m in cancels), cancels
            assert len(await r.open_at_venue()) == 1  # CLIENT2's order stays
            await c1.order("d", price="90000", tif="1")
            m = await c1.er(t11="d", t39="8", t150="8", t103="2")
            assert "kill switch" in m[58]
            await c2.order("y", price="90000", tif="1")
            await c2.er(t11="y", t39="0")
            assert await _admin(r.gw, "GET", "/kill-switch") == (
                200, {"engaged": {sid("CLIENT1"): "desk limit breached"}})
            status, health = await _admin(r.gw, "GET", "/health")
            assert status == 200
            s1, s2 = health["sessions"][sid("CLIENT1")], health["sessions"][sid("CLIENT2")]
            assert (s1["logged_on"], s1["open_orders"]) == (True, 0)
            assert (s2["logged_on"], s2["open_orders"]) == (True, 2)
            assert health["venues"]["paper"]["up"] is True
            assert health["status"] == "ok"
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          {"scope": sid("CLIENT1"), "engaged": False,
                                           "reason": "limit raised"})
            assert (status, answer["cancelling"]) == (200, 0)
            await c1.order("e", price="90000", tif="1")
            await c1.er(t11="e", t39="0")
            assert await _admin(r.gw, "GET", "/kill-switch") == (200, {"engaged": {}})
    run(body())


def test_the_whole_gateway_stays_killed_across_a_restart(tmp_path: Path) -> None:
    """``*`` cancels every session's orders; after a restart new orders are still refused,
    until an admin releases it."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session("CLIENT1"), session("CLIENT2")]
        try:
            async with running(tmp_path, sessions, store=store, admin=ADMIN,
                               replay_check=False) as r:
                c1, c2 = await r.client("CLIENT1"), await r.client("CLIENT2")
                await resting(c1, "a")
                await resting(c2, "z")
                status, answer = await _admin(r.gw, "POST", "/kill-switch", {
                    "scope": "*", "engaged": True, "reason": "desk closed"})
                assert (status, answer["cancelling"]) == (200, 2)
                await c1.er(t11="a", t39="4")
                await c2.er(t11="z", t39="4")
                assert await r.open_at_venue() == []
            gw = build_gateway(config(sessions, admin=ADMIN), store)
            host, port = await gw.start()
            try:
                assert await _admin(gw, "GET", "/kill-switch") == (
                    200, {"engaged": {"*": "desk closed"}})
                c = await OrderClient.connect(host, port, sender="CLIENT1")
                try:
                    await c.logon(reset=True)
                    await c.order("b", price="90000", tif="1")
                    await c.er(t11="b", t39="8", t103="2")
                    assert (await _admin(gw, "POST", "/kill-switch", {
                        "scope": "*", "engaged": False, "reason": "desk open"}))[0] == 200
                    await c.order("c", price="90000", tif="1")
                    await c.er(t11="c", t39="0")
                finally:
                    await c.close()
            finally:
                await gw.stop()
        finally:
            await store.close()
    run(body())


def test_a_configured_kill_switch_cancels_what_is_open_at_start(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            async with running(tmp_path, [session()], store=store, replay_check=False) as r:
                c = await r.client()
                await resting(c, "a", "b")
                venue_survives(r)
                venue = r.venue()
                next_seq = c.next_seq
                first = r
            assert len(await venue.open_orders()) == 2
            gw = restart(first, store, [session(risk={"kill_switch": True})])
            assert gw.orders is not None
            host, port = await gw.start()
            try:
                await asyncio.wait_for(gw.orders.idle(), 10)
                assert await venue.open_orders() == []
                c2 = await OrderClient.connect(host, port, sender="CLIENT1", next_seq=next_seq)
                try:
                    await c2.logon(reset=False)
                    got = {(await c2.er(t39="4", t150="4"))[11] for _ in range(2)}
                    assert got == {"a", "b"}
                finally:
                    await c2.close()
            finally:
                await gw.stop()
                await venue.close()
        finally:
            await store.close()
    run(body())


def test_the_admin_api_answers_bad_requests_clearly(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            ok = {"scope": "*", "engaged": True, "reason": "x"}
            assert (await _admin(r.gw, "GET", "/kill-switch", token=None))[0] == 401
            assert (await _admin(r.gw, "POST", "/kill-switch", ok, token="wrong"))[0] == 401
            status, answer = await _admin(r.gw, "POST", "/kill-switch", raw=b"{not json")
            assert status == 400 and "JSON" in answer["error"]
            for bad in ([1], {**ok, "scope": ""}, {**ok, "engaged": "yes"}, {**ok, "reason": 5},
                        {**ok, "why": "x"}, {"scope": "*", "engaged": True},  # (no reason)
                        {**ok, "reason": " \n "}, {**ok, "reason": "a\x0158=b"}):
                status, answer = await _admin(r.gw, "POST", "/kill-switch", bad)
                assert status == 400 and answer["error"], bad
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          {"scope": "FIX.4.4:GATEWAY->NOBODY", "engaged": True,
                                           "reason": "x"})
            assert status == 404 and "NOBODY" in answer["error"]
            assert await _admin(r.gw, "GET", "/kill-switch") == (200, {"engaged": {}})
    run(body())


def test_the_admin_api_refuses_deep_or_huge_json(tmp_path: Path) -> None:
    """Hostile bodies: 30,000 nested arrays (the standard parser's RecursionError was a 500),
    a string holding brackets (not nesting: still a plain 400 for its content), and a body
    over the size limit."""
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          raw=b"[" * 30_000 + b"]" * 30_000)
            assert status == 400 and "deeper" in answer["error"]
            status, answer = await _admin(
                r.gw, "POST", "/kill-switch",
                {"scope": "*", "engaged": True, "reason": "[[[[[[[[[[[[[[[[[[\\\""})
            assert status == 200 and answer["engaged"] is True
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          raw=b'{"scope": "' + b"x" * 100_000 + b'"}')
            assert status == 413 and "larger" in answer["error"]
            assert (await _admin(r.gw, "GET", "/health"))[0] == 200
    run(body())


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ipv6_loopback() -> bool:
    try:
        with contextlib.closing(socket.socket(socket.AF_INET6)) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("admin_host", [
    "127.0.0.1",
    pytest.param("::", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")),
])
def test_fixgw_kill_switch_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], admin_host: str
) -> None:
    """The command reaches the admin API, a wildcard listening address on its loopback."""
    port = _free_port()
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text(f"""
[gateway]
host = "127.0.0.1"
port = 0
log_dir = "{tmp_path / 'log'}"
[admin]
host = "{admin_host}"
port = {port}
token_env = "{TOKEN_ENV}"
[[venue]]
name = "paper"
kind = "paper"
tick_interval = 3600
[[session]]
target_comp_id = "CLIENT1"
begin_string = "FIX.4.4"
""")

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        gw = build_gateway(load_config(cfg_file), store)
        await gw.start()
        try:
            args = ["kill-switch", "--config", str(cfg_file)]
            assert await asyncio.to_thread(cli.main, [*args, "--session", "CLIENT1",
                                                      "--reason", "test"]) == 0
            assert '"cancelling": 0' in capsys.readouterr().out
            assert gw.orders is not None
            assert gw.orders.kill_switches() == {sid("CLIENT1"): "test"}
            assert await asyncio.to_thread(cli.main, [*args, "--status"]) == 0
            assert sid("CLIENT1") in capsys.readouterr().out
            assert await asyncio.to_thread(cli.main, [*args, "--session", "NOBODY",
                                                      "--reason", "x"]) == 1
            assert "404" in capsys.readouterr().err
            assert await asyncio.to_thread(cli.main, [*args, "--all", "--release"]) == 2
            assert "--reason is required" in capsys.readouterr().err
            assert await asyncio.to_thread(cli.main, [*args, "--all", "--release",
                                                      "--reason", "test over"]) == 0
            assert await asyncio.to_thread(cli.main, [*args, "--session", "CLIENT1",
                                                      "--release", "--reason", "test over"]) == 0
            assert gw.orders.kill_switches() == {}
        finally:
            await gw.stop()
            await store.close()

    run(body())


def test_an_admin_api_off_loopback_needs_a_token(tmp_path: Path) -> None:
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[admin]\nhost = "0.0.0.0"\n')
    with pytest.raises(ConfigError, match="token_env"):
        load_config(cfg_file)
    cfg_file.write_text('[admin]\nhost = "0.0.0.0"\ntoken_env = "X"\n')
    assert load_config(cfg_file).admin is not None


def test_a_kill_switch_the_store_cannot_keep_is_in_force_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            c = await r.client()

            def broken(scope: str, engaged: bool, reason: str = "") -> asyncio.Future[None]:
                failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                failed.set_exception(OSError("disk full"))
                return failed

            monkeypatch.setattr(r.store, "save_kill_switch", broken)
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          {"scope": "*", "engaged": True, "reason": "desk closed"})
            assert status == 500
            assert "engaged but could not be stored" in answer["error"]
            assert "disk full" in answer["error"]
            await c.order("a", price="90000", tif="1")
            await c.er(t11="a", t39="8", t103="2")  # in force all the same
    run(body())


def test_what_a_failed_cancel_leaves_open_is_cancelled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venue cannot take the kill switch's cancel: it is asked again until it does."""
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            r.orders.patience.retry = 0.05
            c = await r.client()
            await resting(c, "a")
            failures = unreachable_for_cancels(r, monkeypatch, 1)
            status, answer = await _admin(r.gw, "POST", "/kill-switch",
                                          {"scope": "*", "engaged": True, "reason": "desk closed"})
            assert (status, answer["cancelling"]) == (200, 1)
            m = await c.er(t11="a", t39="4", t150="4", timeout=10)
            assert m[58].startswith("kill switch")
            assert not failures and await r.open_at_venue() == []
    run(body())


def test_a_cancel_waiting_behind_the_clients_replace_keeps_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            conn = r.venue()
            c = await r.client()
            await resting(c, "a")
            amend, go = conn.amend, asyncio.Event()

            async def held(request: Any) -> None:
                await go.wait()
                await amend(request)

            monkeypatch.setattr(conn, "amend", held)
            await c.replace("b", "a", qty="0.2", price="90000")
            await c.er(t11="b", t39="E")
            status, _ = await _admin(r.gw, "POST", "/kill-switch",
                                     {"scope": "*", "engaged": True, "reason": "desk closed"})
            assert status == 200
            go.set()
            await c.er(t11="b", t150="5")
            m = await c.er(t39="4", t150="4")
            assert m[58].startswith("kill switch"), m
    run(body())


def test_a_stored_kill_switch_of_a_removed_session_can_be_released(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        gone = "FIX.4.4:GATEWAY->GONE"
        await store.save_kill_switch(gone, True, "before the desk was closed")
        gw = build_gateway(config(admin=ADMIN), store)
        await gw.start()
        try:
            assert await _admin(gw, "GET", "/kill-switch") == (
                200, {"engaged": {gone: "before the desk was closed"}})
            assert (await _admin(gw, "POST", "/kill-switch",
                                 {"scope": gone, "engaged": True, "reason": "x"}))[0] == 404
            assert (await _admin(gw, "POST", "/kill-switch",
                                 {"scope": gone, "engaged": False, "reason": "x"}))[0] == 200
            assert await _admin(gw, "GET", "/kill-switch") == (200, {"engaged": {}})
        finally:
            await gw.stop()
            await store.close()
    run(body())
    assert asyncio.run(_stored(tmp_path)) == {}


async def _stored(tmp_path: Path) -> dict[str, str]:
    store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
    await store.start()
    try:
        return await store.load_kill_switches()
    finally:
        await store.close()
