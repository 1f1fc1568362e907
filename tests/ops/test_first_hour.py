"""The first hour of a new operator: what the order path answers, says and numbers (issue 14:
a cancel of a closed order, the kill switch's reason, OrderIDs across restarts, the session
and reject lines at INFO)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from orders.support import config, resting, running, session, sid
from server.harness import run

from gateway.app import build_gateway
from gateway.store.store import SessionStore

TOKEN_ENV = "FIXGW_TEST_ADMIN_TOKEN"
ADMIN = {"host": "127.0.0.1", "port": 0, "token_env": TOKEN_ENV}


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "t0ken")


async def _post(gw: Any, path: str, body: Any) -> tuple[int, Any]:
    host, port = gw.admin_address
    async with aiohttp.ClientSession() as http, http.post(
            f"http://{host}:{port}{path}", json=body,
            headers={"Authorization": "Bearer t0ken"}) as resp:
        return resp.status, await resp.json()


def test_a_cancel_of_an_order_already_canceled_is_too_late_not_unknown(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            await resting(c, "a")
            await c.cancel("b", "a")
            await c.er(t11="b", t39="6")
            done = await c.er(t11="b", t39="4")
            # by the ClOrdID it was placed with, and by the cancel's own (its current one)
            for cl, orig in (("c", "a"), ("d", "b")):
                await c.cancel(cl, orig)
                m = await c.expect("9", t11=cl, t41=orig, t102="0", t434="1", t39="4")
                assert m[37] == done[37]
                assert m[58] == "too late to cancel: the order is canceled", m
            await c.replace("e", "a", qty="0.2", price="90000")
            m = await c.expect("9", t11="e", t102="0", t434="2", t39="4", t37=done[37])
            assert m[58].startswith("too late to replace")
            # an order the gateway never had is still unknown
            await c.cancel("x", "never")
            await c.expect("9", t11="x", t102="1", t37="NONE")
            await c.cancel("y", "a_")  # (LIKE's wildcard in a ClOrdID matches nothing else)
            await c.expect("9", t11="y", t102="1", t37="NONE")
    run(body())


def test_the_kill_switch_reason_reaches_the_clients_report(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, admin=ADMIN) as r:
            c = await r.client()
            await resting(c, "a")
            status, _ = await _post(r.gw, "/kill-switch", {
                "scope": sid(), "engaged": True, "reason": "desk limit breached"})
            assert status == 200
            m = await c.er(t11="a", t39="4")
            assert m[58].startswith("kill switch: desk limit breached"), m
    run(body())


async def _placed(c: Any, cl: str) -> int:
    """The OrderID of a new resting order (the reports of orders a restart found gone at the
    new simulated venue skipped)."""
    await c.order(cl, price="90000", tif="1")
    while True:
        m = await c.er()
        if m[11] == cl:
            assert m[39] == "0", m
            return int(m[37])


def test_order_ids_go_on_from_the_last_one_across_restarts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A clean stop gives back the block of ids it reserved; so does a start that failed
    on a busy port. (A kill -9 skips the rest of its block: a gap, never a repeat.) An open
    order the new simulated venue does not know is Canceled at the start, and said."""
    caplog.set_level(logging.WARNING, "fixgw.orders")

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        try:
            ids = []
            for _ in range(2):
                async with running(tmp_path, store=store, replay_check=False) as r:
                    c = await r.client()
                    ids.append(await _placed(c, f"o{len(ids)}"))
            assert ids[1] == ids[0] + 1, ids
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            try:
                cfg = config([session()])
                cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(
                    update={"port": busy.getsockname()[1]})})
                gw = build_gateway(cfg, store)
                with pytest.raises(OSError):
                    await gw.start()
                await gw.stop()
            finally:
                busy.close()
            async with running(tmp_path, store=store, replay_check=False) as r:
                c = await r.client()
                assert await _placed(c, "o9") == ids[1] + 1
            said = [r.getMessage() for r in caplog.records if r.name == "fixgw.orders"]
            assert f"{sid()}: order {ids[0]} (ClOrdID o0) is not found at paper on " \
                   "reconciliation: Canceled" in said, said
            # event ids too: the stored ones are consecutive
            events = await store.replay_events(0, 100)
            numbers = [e.event_id for e in events]
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
        finally:
            await store.close()
    run(body())


def test_logons_logouts_disconnects_and_rejects_are_said_at_info(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, "fixgw.orders")  # as -v sets it

    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            await c.order("big", qty="1000", price="90000", tif="1")  # more than the balance
            await c.er(t11="big")
            await c.cancel("x", "never")
            await c.expect("9", t11="x")
            await c.logout()
            await r.logged_out(sid())
            c2 = await r.client()
            await c2.close()
            await r.logged_out(sid())
    run(body())
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    me = sid()
    assert f"{me}: logged on from 127.0.0.1:" in "\n".join(lines), lines
    assert any(line.startswith(f"{me}: logged out (logout by the client")
               for line in lines), lines
    assert any(line.startswith(f"{me}: disconnected from 127.0.0.1:") for line in lines), lines
    assert any(line.startswith(f"{me}: OrderCancelReject ClOrdID=x OrigClOrdID=never")
               and "(102=1): unknown order" in line for line in lines), lines
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG
             and r.name == "fixgw.orders"]
    assert any(m.startswith(f"{me}: order 1 (ClOrdID big) created at paper -> PENDING_NEW")
               for m in debug), debug
    assert any(m.startswith(f"{me}: order 1 (ClOrdID big) rejected at paper -> REJECTED")
               for m in debug), debug
    # nothing at INFO for a connection that was a session: said once, with the session
    assert not any(": closing: " in line for line in lines), lines
