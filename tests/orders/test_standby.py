"""Several gateway nodes on one store (Invariant 9): one owner per session, a standby that takes
over when the owner dies, and fencing of an owner that was only paused.

Processes: ``fixgw venue-sim``, two or three ``fixgw run`` on one store (SQLite, or a fresh
PostgreSQL database of the machine's server), this test as the FIX client (a
:class:`~orders.crash_fix.Session` configured with every node's address, as an OMS would be:
it tries them in turn until one accepts its Logon) and as the venue's counterparty.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from conftest import fresh_pg_database
from server.fixclient import FixClient
from server.harness import run

from connectors.base import Side
from connectors.paper.remote import RemotePaperConnector

from .crash_fix import Ledger, Session
from .crash_procs import Proc, gateway, venue_sim, write_gateway_config
from .test_crash_recovery import (
    SOL,
    SOL_BID,
    Spec,
    fill_everything,
    make_orders,
    trade_pieces,
)
from .test_store_outage import _send_blind, _settled, _verify

LEASE = 1.0


async def _log_on_any(ports: list[int], ledger: Ledger, within: float) -> tuple[Session, int]:
    """Log on at whichever node accepts, trying them in turn (a client given every address)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    tried: list[str] = []
    while True:
        for port in ports:
            try:
                return await Session.open(port, ledger, timeout=3.0), port
            except (AssertionError, ConnectionError, OSError) as exc:
                tried.append(f"{port}: {exc}")
        if loop.time() > deadline:
            raise AssertionError(f"no node accepted a Logon within {within}s: {tried[-4:]}")
        await asyncio.sleep(0.1)  # a reconnect interval, as an initiator has


@contextlib.asynccontextmanager
async def nodes(
    tmp: Path, venue_port: int, store: str, names: list[str], session_extra: str = "",
    extra: dict[str, str] | None = None,
) -> AsyncIterator[list[Proc]]:
    """``fixgw run`` per name (``[gateway] node``), started one after the other."""
    async with contextlib.AsyncExitStack() as stack:
        procs = []
        for name in names:
            extra_gw = f'node = "{name}"\nlease = {LEASE}' if name else f"lease = {LEASE}"
            config = write_gateway_config(tmp, venue_port, store=store, log_dir=tmp / f"log-{name}",
                                          name=f"gateway-{name or len(procs)}.toml",
                                          gateway_extra=extra_gw,
                                          session_extra=session_extra
                                          + (extra or {}).get(name, ""))
            procs.append(await stack.enter_async_context(
                gateway(config, tmp / f"gateway-{name or len(procs)}.stderr")))
        yield procs


def test_a_second_gateway_on_the_same_store_refuses_the_session_then_takes_over(
    tmp_path: Path,
) -> None:
    """Two ``fixgw run`` on one SQLite store, default node names (one per process): the second
    refuses the Logon (a disconnect, no Logout: a Logout would move the client's expected
    MsgSeqNum past the owner's) and names the owner in its log; when the first is killed, the
    second serves the session, its sequence numbers where the first left them."""
    async def main() -> None:
        async with venue_sim(tmp_path, 7) as sim, nodes(tmp_path, sim.port,
                                                        f"sqlite:///{tmp_path / 'fixgw.db'}",
                                                        ["", ""]) as (first, second):
            c = await FixClient.connect("127.0.0.1", second.port)
            await c.send("A", [(98, 0), (108, 30)])
            assert await c.expect_closed(5.0) == []
            assert "is served by node" in second.stderr.read_text()
            ledger = Ledger()
            s = await Session.open(first.port, ledger)
            await s.sync("one")
            await s.close()
            first.sigkill()
            started = time.monotonic()
            s, port = await _log_on_any([second.port], ledger, 10 * LEASE)
            took = time.monotonic() - started
            assert port == second.port
            await s.sync("two")
            assert not ledger.anomalies, ledger.anomalies
            assert ledger.contiguous == max(ledger.seen)
            print(f"the standby served the session {took:.2f} s after the owner was killed")
            await s.close()

    run(main(), timeout=60)


def test_the_standby_keeps_the_dead_owners_cancel_on_disconnect_promise(tmp_path: Path) -> None:
    """The session cancels on disconnect; its owner dies with orders resting: the standby takes
    the session over and cancels them at the venue without waiting for the client, which
    learns of it when it logs on there."""
    async def main() -> None:
        async with venue_sim(tmp_path, 9) as sim, nodes(
            tmp_path, sim.port, f"sqlite:///{tmp_path / 'fixgw.db'}", ["a", "b"],
            session_extra='cancel_on_disconnect = "disconnect"',
        ) as (owner, standby):
            venue = RemotePaperConnector("127.0.0.1", sim.port, name="control",
                                         keep_events=False)
            await venue.start()
            try:
                ledger = Ledger()
                s = await Session.open(owner.port, ledger)
                specs = make_orders(random.Random(9), "r", resting=4, marketable=0)
                await s.orders({o.cl_ord_id: o.body() for o in specs})
                assert len(await venue.open_orders()) == 4
                owner.sigkill()
                await s.wait_closed()
                await s.close()
                for _ in range(100):  # the standby cancels within its takeover
                    if not await venue.open_orders():
                        break
                    await asyncio.sleep(0.1)
                assert await venue.open_orders() == []
                s, _ = await _log_on_any([standby.port], ledger, 10)
                await s.wait(lambda: all(ledger.last_report(o.cl_ord_id) is not None
                                         and ledger.last_report(o.cl_ord_id).get(39) == "4"
                                         for o in specs), 10, "Canceled reports")
                texts = {ledger.last_report(o.cl_ord_id).get(58) for o in specs}
                # the gateway's reason, and the venue's after it where the venue gave one: the
                # standby cancels one by one while it counts the dead owner as alive, in bulk
                # once it knows better ("cancel_all"), which of the two is a matter of timing
                assert all(t == "cancel on disconnect" or (t or "").startswith(
                    "cancel on disconnect: ") for t in texts), texts
                assert not ledger.duplicates and not ledger.anomalies
                await s.close()
            finally:
                await venue.close()

    run(main(), timeout=60)


async def _hot_standby(tmp: Path, seed: int, pause: bool) -> None:
    rng = random.Random(seed)
    ledger = Ledger()
    before = make_orders(rng, "a", resting=10, marketable=6)
    during = make_orders(rng, "b", resting=6, marketable=6)
    after = make_orders(rng, "c", resting=3, marketable=3)
    with fresh_pg_database() as store:
        async with venue_sim(tmp, seed) as sim:
            venue = RemotePaperConnector("127.0.0.1", sim.port, name="control",
                                         keep_events=False)
            await venue.start()
            try:
                async with nodes(tmp, sim.port, store, ["a", "b", "c"]) as procs:
                    ports = [p.port for p in procs]
                    s, port = await _log_on_any(ports, ledger, 10)
                    assert port == procs[0].port, "the first node started serves the session"
                    await s.orders({o.cl_ord_id: o.body() for o in before}, 15)
                    owner = procs[0]
                    await _send_blind(s, during[:6])
                    if pause:
                        owner.proc.send_signal(signal.SIGSTOP)
                    else:
                        owner.sigkill()
                    stopped = time.monotonic()
                    await _send_blind(s, during[6:])
                    await trade_pieces(venue, rng, 6)
                    with contextlib.suppress(AssertionError):
                        await s.wait_closed(1.0)  # a paused owner keeps the socket open
                    await s.close()
                    s, port = await _log_on_any([p.port for p in procs[1:]], ledger, 20)
                    takeover = time.monotonic() - stopped
                    if pause:  # the owner wakes up: fenced, it must stop without writing
                        owner.proc.send_signal(signal.SIGCONT)
                        code = await asyncio.wait_for(owner.proc.wait(), 15)
                        assert code == 3, owner.log_tail()
                        assert "taken over" in owner.stderr.read_text()
                    for o in after:
                        await s.send("D", o.body())
                    everything = before + during + after
                    problems: list[str] = []
                    try:
                        await s.wait(lambda: ledger.answered(o.cl_ord_id for o in everything),
                                     20, "every order answered")
                        await fill_everything(venue)
                        await s.wait(lambda: all(_settled(ledger, o) for o in everything), 20,
                                     "every order filled or refused")
                        await s.sync("end")
                    except AssertionError as exc:
                        problems.append(str(exc))
                    # an order the owner stored but had not sent when it stopped is found not
                    # at the venue by the node that takes over, and refused so
                    problems += await _verify(ledger, everything, venue, (
                        "store unavailable", "the venue never received the order"))
                    problems += ledger.anomalies
                    print(f"seed {seed}: owner {'paused' if pause else 'killed'}; node on port "
                          f"{port} served the client {takeover:.2f} s later (lease {LEASE} s); "
                          f"{len(everything)} orders, {len(ledger.fills())} fills reported, "
                          f"{len(ledger.ers)} ERs, {ledger.possdup_ignored} PossDup copies")
                    tails = "\n".join(f"--- {p.stderr.name}\n{p.log_tail(25)}" for p in procs)
                    assert not problems, "\n".join([*problems[:40], tails])
                    await s.close()
            finally:
                await venue.close()


@pytest.mark.postgres
def test_three_nodes_the_owner_killed_mid_flow(tmp_path: Path) -> None:
    """SIGKILL of the owner while orders come in and the venue fills: another node takes the
    session over (its lease ran out), the client logs on there, and every order and fill is
    accounted for exactly once."""
    run(_hot_standby(tmp_path, 51, pause=False), timeout=120)


@pytest.mark.postgres
def test_a_paused_owner_is_fenced_when_it_comes_back(tmp_path: Path) -> None:
    """SIGSTOP of the owner past its lease: another node takes over; SIGCONT: the old owner's
    commits are refused (its fencing token changed) and it stops (exit 3) without writing."""
    run(_hot_standby(tmp_path, 53, pause=True), timeout=120)


def test_a_session_is_handed_back_to_a_node_by_the_admin_api(tmp_path: Path) -> None:
    """An operator gives a session to another node (back to one that was down, say): its
    client is told by a Logout, logs on at that node, and finds its open orders there."""
    admin_port = _free_port()

    async def main() -> None:
        admin = f'\n[admin]\nhost = "127.0.0.1"\nport = {admin_port}\n'
        async with venue_sim(tmp_path, 13) as sim, nodes(
            tmp_path, sim.port, f"sqlite:///{tmp_path / 'fixgw.db'}", ["a", "b"],
            extra={"a": admin},
        ) as (a, b):
            ledger = Ledger()
            s = await Session.open(a.port, ledger)
            specs = make_orders(random.Random(13), "h", resting=2, marketable=0)
            await s.orders({o.cl_ord_id: o.body() for o in specs})
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://127.0.0.1:{admin_port}/sessions/hand-over",
                                     json={"session": "FIX.4.4:GATEWAY->CLIENT1", "to": "c",
                                           "reason": "c is back"}
                                     ) as resp:
                    assert resp.status == 409  # no node c runs
                async with http.post(f"http://127.0.0.1:{admin_port}/sessions/hand-over",
                                     json={"session": "FIX.4.4:GATEWAY->CLIENT1", "to": "b",
                                           "reason": "b is back"}
                                     ) as resp:
                    assert resp.status == 200, await resp.text()
            await s.wait_closed()
            assert any("handed over to node b" in x for x in ledger.anomalies), ledger.anomalies
            await s.close()
            # a refuses it now; b serves it, with the orders
            with pytest.raises(AssertionError):
                await Session.open(a.port, ledger, timeout=2.0)
            s, _ = await _log_on_any([b.port], ledger, 10)
            await s.send("AF", [(584, "all"), (585, "7")])
            await s.wait(lambda: sum(1 for m in ledger.ers if m.get(584) == "all") == 2, 10,
                         "both open orders reported by b")
            assert not ledger.duplicates
            await s.close()

    run(main(), timeout=60)


def test_a_session_handed_back_gets_its_orders_fills_at_the_node_of_the_older_ids(
    tmp_path: Path,
) -> None:
    """Event ids order an order's events (a later event of an order has a higher id, whatever
    node records it). Node a reserved its block of ids first, b the next one; a session handed
    from a to b and back to a records its events at a again: a fill there is reported, not
    dropped as older than b's last event of the order."""
    ports = {"a": _free_port(), "b": _free_port()}

    async def hand_over(node: str, to: str) -> None:
        async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{ports[node]}/sessions/hand-over",
            json={"session": "FIX.4.4:GATEWAY->CLIENT1", "to": to, "reason": "test"}) as resp:
            assert resp.status == 200, await resp.text()

    async def main() -> None:
        admin = {n: f'\n[admin]\nhost = "127.0.0.1"\nport = {p}\n' for n, p in ports.items()}
        async with venue_sim(tmp_path, 17) as sim, nodes(
            tmp_path, sim.port, f"sqlite:///{tmp_path / 'fixgw.db'}", ["a", "b"], extra=admin,
        ) as (a, b):
            venue = RemotePaperConnector("127.0.0.1", sim.port, name="control",
                                         keep_events=False)
            await venue.start()
            try:
                ledger = Ledger()
                s = await Session.open(a.port, ledger)
                order = Spec("k1", SOL, Side.BUY, Decimal("2"), SOL_BID, True)
                await s.orders({order.cl_ord_id: order.body()})
                await hand_over("a", "b")
                await s.wait_closed()
                await s.close()
                s, _ = await _log_on_any([b.port], ledger, 10)
                await venue.trade_against(SOL, Side.SELL, Decimal("0.5"), SOL_BID)
                await s.wait(lambda: ledger.filled("k1", Decimal("0.5"), "1"), 10,
                             "the partial fill reported by b")  # (b's ids: its last event)
                await hand_over("b", "a")
                await s.wait_closed()
                await s.close()
                s, _ = await _log_on_any([a.port], ledger, 10)
                await fill_everything(venue)
                await s.wait(lambda: ledger.filled("k1", Decimal("2")), 10,
                             f"the fill reported by a\n{a.log_tail(30)}")
                assert not ledger.duplicates
                assert all("handed over" in x for x in ledger.anomalies), ledger.anomalies
                await s.close()
            finally:
                await venue.close()

    run(main(), timeout=60)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
