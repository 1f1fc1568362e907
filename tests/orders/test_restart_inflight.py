"""What was in flight when the gateway stopped is finished after it starts again: a cancel the
venue never heard of, a cancel-on-disconnect promise (the configured one, or the one a client's
Logon chose with 8013), and a PossResend of a known order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from server.harness import run

from gateway.store.store import SessionStore

from .support import BTC, NOW, restart, resting, running, session, sid, venue_survives


def test_a_pending_cancel_is_sent_again_after_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session()]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            await c.order("rest", price="90000", tif="1")
            await c.er(t11="rest", t39="0")

            conn = r.venue()

            async def never_sent(symbol: str, client_order_id: str) -> None:
                return None  # the process dies before the venue hears of the cancel

            conn.cancel = never_sent  # type: ignore[method-assign]
            await c.cancel("rest-x", "rest")
            await c.er(t11="rest-x", t39="6")
            assert len(await r.open_at_venue()) == 1
            venue_survives(r)
            first = r
        del conn.cancel  # (the venue the restarted gateway finds takes cancels)
        gw = restart(first, store, sessions)
        host, port = await gw.start()
        try:
            assert gw.orders is not None
            await asyncio.wait_for(gw.orders.idle(), 5)
            assert await first.open_at_venue() == []
            first.host, first.port, first.gw = host, port, gw
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            m = await c2.er(t11="rest-x", t39="4")
            assert m[41] == "rest"
        finally:
            await gw.stop()
            await store.close()

    run(body())


def test_cancel_on_disconnect_still_holds_after_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session(cancel_on_disconnect="disconnect")]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            await resting(c, "o0", "o1", "o2")
            # the process dies: its own cancel-on-disconnect never runs
            r.orders._sessions["FIX.4.4:GATEWAY->CLIENT1"].cod_override = "off"
            venue_survives(r)
            first = r
        assert len(await first.open_at_venue()) == 3
        gw = restart(first, store, sessions)
        await gw.start()
        try:
            assert gw.orders is not None
            await asyncio.wait_for(gw.orders.idle(), 5)
            assert await first.open_at_venue() == []
        finally:
            await gw.stop()
            await store.close()

    run(body())


def test_a_logons_cancel_on_disconnect_y_still_holds_after_a_restart(tmp_path: Path) -> None:
    """Configured off, the client asked for cancel-on-disconnect in its Logon (8013=Y); the
    gateway dies before the promise is kept and restarts while the client stays away: after
    the grace period its orders are cancelled, and it learns so at its next Logon."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session(cancel_on_disconnect="off", cancel_on_disconnect_grace=2.0)]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client(extra=[(8013, "Y")])
            await resting(c, "o0", "o1", "o2")

            async def dies(session_id: str, grace: float) -> None:
                return None  # the process dies within the grace period

            r.orders.cancels.on_disconnect = dies  # type: ignore[method-assign]
            venue_survives(r)
            first = r
        assert len(await first.open_at_venue()) == 3
        gw = restart(first, store, sessions)
        host, port = await gw.start()
        try:
            assert gw.orders is not None
            assert len(await first.open_at_venue()) == 3  # the grace period (2 s) runs first
            await asyncio.wait_for(gw.orders.idle(), 10)
            assert await first.open_at_venue() == []
            first.host, first.port, first.gw = host, port, gw
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            got = {(await c2.er(t150="4", t39="4", t151="0"))[11] for _ in range(3)}
            assert got == {"o0", "o1", "o2"}
            # this Logon carried no 8013: the configured mode holds again, stored so too
            assert gw.orders._sessions[sid()].cod_override is None
            assert await store.load_cod_overrides() == {}
        finally:
            await gw.stop()
            await store.close()

    run(body())


@pytest.mark.parametrize("mode", ["disconnect", "both"])
def test_a_logons_cancel_on_disconnect_n_still_holds_after_a_restart(
    tmp_path: Path, mode: str
) -> None:
    """Configured to cancel, the client declined in its Logon (8013=N): a restart (every
    session is disconnected then) leaves its orders open."""
    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session(cancel_on_disconnect=mode)]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client(extra=[(8013, "N")])
            await resting(c, "o0", "o1", "o2")
            venue_survives(r)
            first = r
        assert len(await first.open_at_venue()) == 3
        gw = restart(first, store, sessions)
        await gw.start()
        try:
            assert gw.orders is not None
            await asyncio.wait_for(gw.orders.idle(), 5)
            assert len(await first.open_at_venue()) == 3
            st = gw.orders._sessions[sid()]
            assert st.cod_override == "off" and st.cod_task is None
        finally:
            await gw.stop()
            await store.close()

    run(body())


def test_a_possresend_order_already_placed_is_answered_with_its_status(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            await c.order("dup", price="98000", qty="0.01")
            await c.er(t11="dup", t39="0")
            await c.er(t11="dup", t39="2")
            await c.send("D", [(11, "dup"), (21, "1"), (38, "0.01"), (40, "2"),
                               (44, "98000"), (54, "1"), (55, BTC), (60, NOW)],
                         header=[(97, "Y")])
            m = await c.er(t11="dup", t150="I")
            assert m[39] == "2" and "already received" in m[58]
            assert len(await r.venue().fills_since(0)) == 1
            await c.order("new", price="98000", qty="0.01")
            await c.er(t11="new", t39="0")
            await c.er(t11="new", t39="2")

    run(body())
