"""The admin API as an operator uses it: probes and metrics without the token, the health of
every configured session and venue, sessions, orders and venues steered (each change needing a
reason, logged with who and why), the OpenAPI description."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from orders.support import resting, running, session, sid, until
from server.harness import run

from gateway.admin import openapi

TOKEN_ENV = "FIXGW_TEST_ADMIN_TOKEN"
TOKEN = "0ps-t0ken"
ADMIN = {"host": "127.0.0.1", "port": 0, "token_env": TOKEN_ENV}
SESSIONS = [session("CLIENT1"), session("CLIENT50", "FIXT.1.1")]
S1, S50 = sid("CLIENT1"), sid("CLIENT50", "FIXT.1.1")


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


async def call(gw: Any, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
               operator: str | None = None) -> tuple[int, Any]:
    host, port = gw.admin_address
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if operator:
        headers["X-Operator"] = operator
    async with aiohttp.ClientSession() as http, http.request(
            method, f"http://{host}:{port}{path}", json=body, headers=headers) as resp:
        text = await resp.text()
        if resp.content_type == "application/json":
            import json
            return resp.status, json.loads(text)
        return resp.status, text


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition ``text``."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_probes_metrics_and_health(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            gw = r.gw
            # no token for the probes and the metrics; the rest needs it
            assert await call(gw, "GET", "/livez", token=None) == (200, {"status": "alive"})
            assert await call(gw, "GET", "/readyz", token=None) == (200, {"ready": True,
                                                                          "why": []})
            assert (await call(gw, "GET", "/health", token=None))[0] == 401
            assert (await call(gw, "GET", "/sessions", token="wrong"))[0] == 401
            c = await r.client()
            await c.order("m", ord_type="1", qty="0.01")  # a market buy: fills
            await c.er(t11="m", t39="0")
            await c.er(t11="m", t39="2")
            await resting(c, "rest")
            await c.cancel("x", "never")
            await c.expect("9", t11="x")
            status, text = await call(gw, "GET", "/metrics", token=None)
            assert status == 200
            assert metric(text, "fixgw_session_logged_on", session=S1) == 1
            assert metric(text, "fixgw_session_logged_on", session=S50) == 0
            assert metric(text, "fixgw_session_messages_received_total", session=S1,
                          msg_type="D") == 2
            assert metric(text, "fixgw_session_rejects_total", session=S1,
                          message="OrderCancelReject", reason="1") == 1
            assert metric(text, "fixgw_orders_open", session=S1, venue="paper", state="new") == 1
            assert metric(text, "fixgw_fills_total", venue="paper", symbol="BTC/USDT") == 1
            assert metric(text, "fixgw_orders_closed_total", venue="paper", state="filled") == 1
            assert metric(text, "fixgw_order_to_venue_seconds_count", venue="paper") == 2
            assert metric(text, "fixgw_report_seconds_count", venue="paper") == 3
            assert metric(text, "fixgw_store_commit_seconds_count") > 0
            assert metric(text, "fixgw_venue_up", venue="paper") == 1
            assert metric(text, "fixgw_store_up") == 1
            assert metric(text, "process_resident_memory_bytes") > 0
            assert metric(text, "fixgw_session_next_sender_seq", session=S1) == 6  # A, 8 x3, 9
            # the health: every configured session, logged on or not
            status, health = await call(gw, "GET", "/health")
            assert status == 200 and health["status"] == "ok"
            h50 = health["sessions"][S50]
            assert (h50["logged_on"], h50["next_sender_seq"], h50["last_logon"]) == (
                False, 1, None)
            assert health["sessions"][S1]["last_logon"].endswith("Z")
            assert health["venues"]["paper"]["up"] is True
            # the store down: not ready (503 with why)
            with pytest.MonkeyPatch.context() as mp:  # as the store says while it is down
                mp.setattr(type(r.store), "available", property(lambda _s: False))
                mp.setattr(type(r.store), "unavailable_reason", property(lambda _s: "disk full"))
                status, answer = await call(gw, "GET", "/readyz", token=None)
            assert status == 503 and answer["why"] == ["store unavailable: disk full"], answer
            # every venue down: not ready, and the health says why
            r.venue().update_faults(unavailable=True)
            try:
                await gw.admin.venues.refresh()
                status, answer = await call(gw, "GET", "/readyz", token=None)
                assert status == 503 and "every venue is down" in answer["why"][0], answer
                _, health = await call(gw, "GET", "/health")
                assert health["status"] == "down"
                assert health["venues"]["paper"]["up"] is False
            finally:
                r.venue().update_faults(unavailable=False)
            await gw.admin.venues.refresh()
            assert (await call(gw, "GET", "/readyz", token=None))[0] == 200
    run(body())


def test_sessions_are_steered_with_a_reason_and_audited(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "fixgw.admin")

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            gw = r.gw
            status, answer = await call(gw, "GET", "/sessions")
            assert [s["session"] for s in answer["sessions"]] == sorted([S1, S50])
            c = await r.client()
            path = f"/sessions/{quote(S1, safe='')}"
            # a change without a reason is refused; an unknown session is 404
            assert (await call(gw, "POST", f"{path}/logout", {}))[0] == 400
            assert (await call(gw, "POST", "/sessions/NOSUCH/logout", {"reason": "x"}))[0] == 404
            # logout, by TargetCompID too: the client gets a Logout saying why
            status, _ = await call(gw, "POST", "/sessions/CLIENT1/logout",
                                   {"reason": "end of day"}, operator="alice")
            assert status == 200
            logout = await c.recv_type("5")
            assert logout[58] == "logged out by an operator: end of day"
            await c.send("5")
            await r.logged_out(S1)
            assert (await call(gw, "POST", "/sessions/CLIENT1/logout", {"reason": "x"}))[0] == 409
            # sequence numbers: confirmation needed, only while not connected
            want = {"next_sender_seq": 100, "next_target_seq": 50, "reason": "client reset"}
            status, answer = await call(gw, "POST", f"{path}/sequence-numbers", want)
            assert status == 409 and "confirm" in answer["error"]
            status, answer = await call(gw, "POST", f"{path}/sequence-numbers",
                                        {**want, "confirm": S1})
            assert (status, answer["next_sender_seq"], answer["next_target_seq"]) == (
                200, 100, 50)
            assert (await r.store.load(S1)).next_sender == 100
            # disabled: the Logon is refused; enabled again: it is served
            assert (await call(gw, "POST", f"{path}/disable", {"reason": "maintenance"}))[0] \
                == 200
            from server.fixclient import FixClient
            refused = await FixClient.connect(r.host, r.port, sender="CLIENT1")
            try:
                await refused.send("A", [(98, "0"), (108, "30"), (141, "Y")])
                await refused.expect_closed(5)
            finally:
                await refused.close()
            assert (await call(gw, "POST", f"{path}/enable", {"reason": "done"}))[0] == 200
            c2 = await r.client()
            status, _ = await call(gw, "POST", f"{path}/sequence-numbers",
                                   {**want, "confirm": S1})
            assert status == 409  # connected
            assert (await call(gw, "POST", f"{path}/disconnect", {"reason": "stuck"}))[0] == 200
            await c2.expect_closed(5)
            await r.logged_out(S1)
    run(body())
    audit = [r.getMessage() for r in caplog.records if r.name == "fixgw.admin"]
    assert any(m.startswith("admin API: alice from 127.0.0.1: logout of " + S1)
               and m.endswith("(why: end of day)") for m in audit), audit
    assert any("sequence numbers of " + S1 in m and "(why: client reset)" in m for m in audit)
    assert any(f"session {S1} disabled (why: maintenance)" in m for m in audit), audit
    assert any(f"disconnect of {S1} (why: stuck)" in m for m in audit), audit


def test_orders_are_queried_and_cancelled(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "fixgw.admin")

    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            gw = r.gw
            c1 = await r.client()
            c50 = await r.client("CLIENT50", "FIXT.1.1")
            await resting(c1, "a", "b")
            await resting(c50, "z")
            status, answer = await call(gw, "GET", f"/orders?session={quote(S1, safe='')}")
            assert status == 200 and [o["cl_ord_id"] for o in answer["orders"]] == ["a", "b"]
            assert answer["orders"][0]["price"] == "90000"
            status, answer = await call(gw, "GET", "/orders?state=new&venue=paper")
            assert len(answer["orders"]) == 3
            assert (await call(gw, "GET", "/orders?state=bogus"))[0] == 400
            assert (await call(gw, "GET", "/orders?colour=red"))[0] == 400
            first = answer["orders"][0]["order_id"]
            status, one = await call(gw, "GET", f"/orders/{first}")
            assert status == 200 and one["cl_ord_id"] == "a"
            # cancel one
            status, _ = await call(gw, "POST", f"/orders/{first}/cancel",
                                   {"reason": "fat finger"}, operator="bob")
            assert status == 200
            m = await c1.er(t11="a", t39="4")
            assert m[58].startswith("canceled by an operator: fat finger")
            assert (await call(gw, "POST", f"/orders/{first}/cancel", {"reason": "x"}))[0] == 409
            assert (await call(gw, "POST", "/orders/999999/cancel", {"reason": "x"}))[0] == 404
            # cancel matching: the number that match must be confirmed
            want = {"session": S1, "reason": "desk closing"}
            status, answer = await call(gw, "POST", "/orders/cancel", want)
            assert status == 409 and "confirm" in answer["error"] and "1 open" in answer["error"]
            assert (await call(gw, "POST", "/orders/cancel", {"reason": "x"}))[0] == 400
            for not_a_count in (True, 1.0, "1"):  # (true == 1 and 1.0 == 1 in Python)
                status, _ = await call(gw, "POST", "/orders/cancel",
                                       {**want, "confirm": not_a_count})
                assert status == 409, not_a_count
            status, answer = await call(gw, "POST", "/orders/cancel", {**want, "confirm": 1})
            assert (status, answer["cancelling"]) == (200, 1)
            await c1.er(t11="b", t39="4")
            await until(lambda: len([o for o in r.orders.book.client_orders()
                                     if o.is_open]) == 1)
            # venues: the simulated venue has no connection to renew
            status, answer = await call(gw, "GET", "/venues")
            assert answer["venues"]["paper"]["up"] is True
            assert (await call(gw, "POST", "/venues/paper/reconnect", {"reason": "x"}))[0] == 409
            assert (await call(gw, "POST", "/venues/nope/reconnect", {"reason": "x"}))[0] == 404
    run(body())
    audit = [r.getMessage() for r in caplog.records if r.name == "fixgw.admin"]
    assert any(m.startswith("admin API: bob from 127.0.0.1: cancel of order")
               and m.endswith("(why: fat finger)") for m in audit), audit
    assert any("cancel of 1 orders matching" in m and "(why: desk closing)" in m for m in audit)


def test_the_openapi_description_names_every_route(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, SESSIONS, admin=ADMIN) as r:
            status, spec = await call(r.gw, "GET", "/openapi.json", token=None)
            assert status == 200 and spec["openapi"].startswith("3.")
            assert r.gw.admin is not None
            routes = {(route.method.lower(), route.resource.canonical)
                      for route in r.gw.admin.app().router.routes()
                      if route.method != "HEAD" and route.resource is not None}
            described = {(m, p) for p, ops in spec["paths"].items() for m in ops}
            undocumented = routes - described - {("get", "/"), ("get", "/dashboard.js")}
            assert not undocumented, undocumented
            assert spec == openapi.SPEC
    run(body())


def test_a_dead_exchange_is_down_at_once_and_up_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The health and the metrics tell a venue down as soon as its emulator dies (the private
    stream drops, REST cannot connect), not once orders are refused; and up when it is back."""
    from orders.test_exchange_venues import CREDS, emulated, venue_entry

    monkeypatch.setenv("E2E_API_KEY", CREDS.api_key)
    monkeypatch.setenv("E2E_API_SECRET", CREDS.secret)
    monkeypatch.setenv("E2E_API_PASSPHRASE", CREDS.passphrase or "")

    async def body() -> None:
        async with emulated("binance") as emu:
            venues = [venue_entry("binance", emu), {"name": "paper", "tick_interval": 3600}]
            async with running(tmp_path, [session("CLIENT1", default_venue="binance",
                                                  venues=["binance", "paper"])], venues,
                               admin=ADMIN) as r:
                watch = r.gw.admin.venues  # type: ignore[union-attr]
                state = (await watch.refresh())["binance"]
                assert state.up and state.stream_connected and state.rest_reachable, state
                assert state.rate_limits, state  # Binance's weight and order windows
                port = emu.port
                await emu.stop()  # the exchange dies

                async def down() -> bool:
                    st = (await watch.refresh())["binance"]
                    return not st.up

                await _within(down, 5.0)
                _, health = await call(r.gw, "GET", "/health")
                b = health["venues"]["binance"]
                assert b["up"] is False and b["stream"]["connected"] is False, b
                assert health["status"] == "degraded"  # paper still takes orders
                _, text = await call(r.gw, "GET", "/metrics", token=None)
                assert metric(text, "fixgw_venue_up", venue="binance") == 0
                assert metric(text, "fixgw_venue_stream_connected", venue="binance") == 0
                await emu.start(port)  # back on the same address

                async def up() -> bool:
                    st = (await watch.refresh())["binance"]
                    return st.up

                await _within(up, 15.0)
                _, text = await call(r.gw, "GET", "/metrics", token=None)
                assert metric(text, "fixgw_venue_stream_reconnects_total", venue="binance") >= 1
    run(body())


async def _within(cond: Any, seconds: float) -> None:
    """A bounded poll of a state that has no event to wait on."""
    import asyncio
    import time
    deadline = time.monotonic() + seconds
    while not await cond():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.1)
