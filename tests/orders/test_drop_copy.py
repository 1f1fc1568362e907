"""Drop copy sessions (``drop_copy_of``, ``drop_copy_accounts``): a copy of every
ExecutionReport of the sessions they copy, as it happens, with their own sequence numbers and
CopyMsgIndicator (797), DropCopyFlag (9406) = Y and DeliverToCompID (128) naming the client;
what they missed while logged off delivered at their Logon (across a restart too); no orders
taken from them; a drop copy that stops reading never slows the trading sessions. Every
message is validated strictly against the dictionaries the gateway ships (``check_strict``)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from server.fixclient import FixMessage
from server.harness import run
from sqlalchemy import select

from gateway.fix.session import SessionID
from gateway.orders import dropcopy
from gateway.store.schema import drop_copies, order_events
from gateway.store.store import SessionStore

from .support import (
    BTC,
    OrderClient,
    Run,
    check_strict,
    config,
    restart,
    running,
    session,
    sid,
    until,
    venue_survives,
)

HEADER = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 122, 128, 1128})
COPY_TAGS = frozenset({797, 9406})


def drop(target: str, of: list[str], begin: str = "FIX.4.4", **kw: Any) -> dict[str, Any]:
    """A drop copy [[session]]."""
    out: dict[str, Any] = {"target_comp_id": target, "begin_string": begin, "drop_copy_of": of,
                           **kw}
    if begin == "FIXT.1.1":
        out["default_appl_ver_id"] = "FIX.5.0SP2"
    return out


def body(m: FixMessage) -> list[tuple[int, bytes]]:
    """A message's fields outside the header, trailer and the copy's own."""
    return [(t, v) for t, v in m.fields if t not in HEADER and t not in COPY_TAGS]


def assert_copy(copy: FixMessage, original: FixMessage, client: str) -> None:
    assert copy.msg_type == "8"
    assert copy[9406] == "Y" and copy[797] == "Y", str(copy)
    assert copy[128] == client, str(copy)
    assert body(copy) == body(original), f"\n{copy}\n{original}"


async def reports(c: OrderClient, n: int) -> list[FixMessage]:
    """The next ``n`` ExecutionReports (Heartbeats skipped; 5 s for each at most)."""
    return [await c.er() for _ in range(n)]


async def trade(c: OrderClient, name: str, *, account: str | None = None,
                qty: str = "0.1") -> list[FixMessage]:
    """A marketable buy (0.1 BTC): New, then its fill."""
    extra = [(1, account)] if account else []
    await c.order(name, qty=qty, price="98000", extra=extra)
    return await reports(c, 2)


async def rest_and_cancel(c: OrderClient, name: str) -> list[FixMessage]:
    """A buy far under the market (New), then its cancel (PendingCancel, Canceled)."""
    await c.order(name, price="90000", tif="1")
    new = await c.er(t11=name, t39="0")
    await c.cancel(f"{name}-x", name)
    return [new, *await reports(c, 2)]


async def refused(c: OrderClient, name: str) -> list[FixMessage]:
    """Refused by the pre-trade checks (stored, Rejected), then one refused before it could
    be stored (an unknown symbol)."""
    await c.order(name, qty="50", price="98000")
    stored = await c.er(t11=name, t39="8")
    await c.order(f"{name}-u", symbol="NOPE/USDT", price="1")
    unstored = await c.er(t11=f"{name}-u", t39="8")
    return [stored, unstored]


def test_copies_of_two_sessions_all_and_by_account(tmp_path: Path) -> None:
    """New, fill, cancel and reject reports of a FIX 4.4 and a FIXT 1.1 session reach a drop
    copy of both (FIX 4.4), one of every session (``*``, FIXT 1.1) and one of Account ACC1."""
    sessions = [
        session("CLIENT1", risk={"max_order_qty": "5"}),
        session("CLIENT50", "FIXT.1.1", risk={"max_order_qty": "5"}),
        drop("DC", ["CLIENT1", "FIXT.1.1:GATEWAY->CLIENT50"]),
        drop("DCALL", ["*"], "FIXT.1.1"),
        drop("DCACC", ["*"], drop_copy_accounts=["ACC1"]),
        drop("DC1", ["CLIENT1"]),
    ]

    async def main() -> None:
        async with running(tmp_path, sessions) as r:
            dc, dcall, dcacc, dc1 = [await r.client(n, b) for n, b in (
                ("DC", "FIX.4.4"), ("DCALL", "FIXT.1.1"), ("DCACC", "FIX.4.4"),
                ("DC1", "FIX.4.4"))]
            c1 = await r.client("CLIENT1")
            c50 = await r.client("CLIENT50", "FIXT.1.1")
            told: list[tuple[str, FixMessage]] = []
            for who, flow in (
                ("CLIENT1", lambda: trade(c1, "a", account="ACC1")),
                ("CLIENT50", lambda: trade(c50, "b")),
                ("CLIENT1", lambda: rest_and_cancel(c1, "c")),
                ("CLIENT50", lambda: rest_and_cancel(c50, "d")),
                ("CLIENT1", lambda: refused(c1, "e")),
                ("CLIENT50", lambda: trade(c50, "f", account="ACC1")),
                ("CLIENT50", lambda: refused(c50, "g")),
            ):
                told += [(who, m) for m in await flow()]
            assert len(told) == 16
            for client, wanted in ((dc, told), (dcall, told),
                                   (dcacc, [t for t in told if t[1].get(1) == "ACC1"]),
                                   (dc1, [t for t in told if t[0] == "CLIENT1"])):
                got = await reports(client, len(wanted))
                for copy, (who, original) in zip(got, wanted, strict=True):
                    assert_copy(copy, original, who)
                await client.quiet(0.2)
            assert len([t for t in told if t[1].get(1) == "ACC1"]) == 4
            # each drop copy numbers its own messages: 2 (after its Logon) onwards, no gap
            assert [m.seq for m in dc.received if m.msg_type == "8"] == list(range(2, 18))
            # every report and its copies told once: nothing left undelivered in the store
            assert await undelivered(r.store) == 0
    run(main())


async def undelivered(store: SessionStore) -> int:
    rows = await store.writer.query(lambda conn: conn.execute(
        select(drop_copies.c.exec_id).where(drop_copies.c.seq.is_(None))).all())
    return len(rows)


def test_missed_while_logged_off_delivered_at_logon_and_after_a_restart(
    tmp_path: Path, store_url: str
) -> None:
    """Copies made while the drop copy is away (including a cancel-on-disconnect's, while
    the client is away too) come at its next Logon, in order, before the live ones; the same
    after the gateway restarts. On SQLite and PostgreSQL."""
    sessions = [session("CLIENT1", cancel_on_disconnect="logout"), drop("DC", ["*"])]

    async def main() -> None:
        store = SessionStore(store_url)
        await store.start()
        try:
            async with running(tmp_path, sessions, store=store) as r:
                venue_survives(r)
                dc = await r.client("DC")
                c1 = await r.client("CLIENT1")
                first = await trade(c1, "a")
                for copy, original in zip(await reports(dc, 2), first, strict=True):
                    assert_copy(copy, original, "CLIENT1")
                await dc.logout()
                await r.logged_out(sid("DC"))
                missed = await trade(c1, "b")
                await c1.order("c", price="90000", tif="1")
                missed.append(await c1.er(t11="c", t39="0"))
                await c1.logout()  # cancel on logout: the Canceled is told to no client
                await r.logged_out(sid())
                await r.orders.idle()
                dc = await r.reconnect(dc)
                got = await reports(dc, 4)
                for copy, original in zip(got[:3], missed, strict=True):
                    assert_copy(copy, original, "CLIENT1")
                canceled = got[3]
                assert canceled[11] == "c" and canceled[39] == "4" and canceled[9406] == "Y"
                assert canceled[58].startswith("cancel on disconnect")
                await dc.quiet(0.2)
                # the client learns of its cancel at its Logon: the copy came first, not twice
                c1 = await r.reconnect(c1)
                assert_copy(canceled, await c1.er(t11="c", t39="4"), "CLIENT1")
                await dc.quiet(0.2)
                await dc.logout()
                await r.logged_out(sid("DC"))
                before_restart = await trade(c1, "d")
                await c1.logout()
                await r.logged_out(sid())
            # a new gateway on the same store and venue: the copies are still owed
            gw = restart(r, store, sessions)
            host, port = await gw.start()
            r2 = Run(gw, store, host, port)
            try:
                dc = await r2.client("DC", reset=False, next_seq=dc.next_seq)
                for copy, original in zip(await reports(dc, 2), before_restart, strict=True):
                    assert_copy(copy, original, "CLIENT1")
                await dc.quiet(0.2)
                c1 = await r2.client("CLIENT1", reset=False, next_seq=c1.next_seq)
                live = await trade(c1, "e")  # and live again after the catch-up
                for copy, original in zip(await reports(dc, 2), live, strict=True):
                    assert_copy(copy, original, "CLIENT1")
                assert await undelivered(store) == 0
            finally:
                for c in r2.clients:
                    await c.close()
                await gw.stop()
        finally:
            await store.close()
    run(main())


def test_a_drop_copy_takes_no_orders(tmp_path: Path) -> None:
    """An order (or any application message) from a drop copy gets BusinessMessageReject
    (380=6) saying why, and nothing is placed; its session messages are answered."""
    sessions = [session("CLIENT1"), drop("DC", ["CLIENT1"]), drop("DC50", ["*"], "FIXT.1.1")]

    async def main() -> None:
        async with running(tmp_path, sessions) as r:
            for name, begin in (("DC", "FIX.4.4"), ("DC50", "FIXT.1.1")):
                dc = await r.client(name, begin)
                await dc.order("x", price="98000")
                await dc.send("H", [(11, "x"), (54, "1"), (55, BTC)])
                for msg_type in ("D", "H"):
                    m = await dc.expect("j", t45=str(dc.next_seq - (2 if msg_type == "D" else 1)),
                                        t372=msg_type, t380="6")
                    assert "drop copy" in m[58]
                    check_strict(m, begin)
                heartbeat = await dc.test_request("still there?")
                assert heartbeat[112] == "still there?"
                await dc.quiet(0.2)
            assert await r.open_at_venue() == []
            assert r.orders.orders == {}
    run(main())


def test_copies_in_the_order_of_events_from_concurrent_sessions(tmp_path: Path) -> None:
    """Two sessions trading at once: the drop copy gets every report once, in the order the
    events were recorded (their event ids), though the sessions' commits interleave."""
    sessions = [session("CLIENT1"), session("CLIENT2"), drop("DC", ["*"])]

    async def main() -> None:
        async with running(tmp_path, sessions) as r:
            dc = await r.client("DC")
            c1, c2 = await r.client("CLIENT1"), await r.client("CLIENT2")

            async def flow(c: OrderClient, prefix: str) -> list[FixMessage]:
                out: list[FixMessage] = []
                for i in range(15):
                    out += await trade(c, f"{prefix}{i}")
                return out

            one, two = await asyncio.gather(flow(c1, "a"), flow(c2, "b"))
            got = await reports(dc, 60)
            exec_ids = [m[17] for m in got]
            assert sorted(exec_ids) == sorted(m[17] for m in one + two)
            order = await event_order(r.store, exec_ids)
            assert exec_ids == sorted(exec_ids, key=order.__getitem__)
            await dc.quiet(0.2)
    run(main())


async def event_order(store: SessionStore, exec_ids: Sequence[str]) -> dict[str, int]:
    rows = await store.writer.query(lambda conn: conn.execute(
        select(order_events.c.exec_id, order_events.c.event_id)
        .where(order_events.c.exec_id.in_(list(exec_ids)))).all())
    return {e: int(i) for e, i in rows}


def test_a_drop_copy_that_stops_reading_slows_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drop copy whose socket takes nothing more (every write to it hangs, as when a client
    stops reading and the buffers are full): the trading session gets every report of 100
    orders regardless; the copies pile up past the memory limit (the drop copy is then fed from
    the store); once the drop copy reconnects it gets every copy once, in order -- those
    committed but never written by its ResendRequest (PossDup), the rest new."""
    monkeypatch.setattr(dropcopy, "MEMORY_LIMIT", 40)
    sessions = [session("CLIENT1"), drop("DC", ["CLIENT1"])]

    async def main() -> None:
        async with running(tmp_path, sessions) as r:
            dc = await r.client("DC")
            handle = r.gw.acceptor._handles[SessionID("FIX.4.4", "GATEWAY", "DC")]
            conn = handle.connection
            assert conn is not None
            gate = asyncio.Event()
            write_all = conn.write_all

            async def stuck(chunks: Sequence[bytes], limits: Any) -> None:
                await gate.wait()
                await write_all(chunks, limits)

            monkeypatch.setattr(conn, "write_all", stuck)
            c1 = await r.client("CLIENT1")
            told: list[FixMessage] = []
            for i in range(100):
                told += await trade(c1, f"o{i}", qty="0.01")
            assert len(told) == 200  # (a report waiting on the drop copy would hang here)
            feed = r.orders.copies._feeds[sid("DC")]
            assert feed.catch_up  # more than the memory limit behind: the store feeds it
            assert len(feed.queue) <= 40
            with pytest.raises(TimeoutError):
                await dc.recv_type("8", 0.2)  # nothing reached it
            await dc.close()
            gate.set()
            await r.logged_out(sid("DC"))
            dc2 = await r.client("DC", reset=False, next_seq=dc.next_seq)
            got = await copies_after_gap(dc2, expected=2, n=200)
            assert any(m.get(43) == "Y" for m in got)  # the batch stuck in the socket: resent
            assert [m[17] for m in got] == [m[17] for m in told]
            for copy, original in zip(got, told, strict=True):
                assert_copy(copy, original, "CLIENT1")
            await dc2.quiet(0.2)
            assert await undelivered(r.store) == 0
    run(main())


async def copies_after_gap(c: OrderClient, *, expected: int, n: int) -> list[FixMessage]:
    """After a Logon: ask for what was sent from MsgSeqNum ``expected`` on (a ResendRequest
    when the Logon's number shows a gap), and collect ``n`` ExecutionReports once each, in
    the order of their MsgSeqNums (resent ones keep theirs)."""
    logon = c.received[-1]
    assert logon.msg_type == "A"
    if logon.seq > expected:  # the gap up to the Logon (what is sent after it comes anyway)
        await c.send("2", [(7, expected), (16, logon.seq - 1)])
    got: dict[str, FixMessage] = {}
    while len(got) < n:
        m = await c.recv(10)
        if m.msg_type == "8":
            assert m[17] not in got or m.get(43) == "Y", f"a copy twice: {m}"
            got.setdefault(m[17], m)
        else:
            assert m.msg_type in ("0", "4"), str(m)
    return sorted(got.values(), key=lambda m: m.seq)


def test_configuration_of_drop_copies(tmp_path: Path) -> None:
    """drop_copy_of must name sessions that trade; a drop copy has no order routing."""
    with pytest.raises(ValueError, match="drop_copy_of names NOBODY"):
        config([session("CLIENT1"), drop("DC", ["NOBODY"])])
    with pytest.raises(ValueError, match="sends no orders"):
        config([session("CLIENT1"), drop("DC", ["CLIENT1"], default_venue="paper")])
    with pytest.raises(ValueError, match="drop_copy_accounts is for a drop copy"):
        config([session("CLIENT1", drop_copy_accounts=["A"])])
    with pytest.raises(ValueError, match="does not copy a drop copy"):
        config([session("CLIENT1"), drop("DC", ["CLIENT1"]), drop("DC2", ["DC"])])


def test_the_bundled_client_listens_as_a_drop_copy(tmp_path: Path) -> None:
    """``fixgw client --sender DC listen`` logs on, prints the copies owed and live ones, and
    says how many it got."""
    from gateway.client import main as client_main

    sessions = [session("CLIENT1"), drop("DC", ["CLIENT1"])]

    async def body() -> None:
        async with running(tmp_path, sessions) as r:
            c1 = await r.client("CLIENT1")
            owed = await trade(c1, "a")  # before the drop copy ever logged on
            out, err = io.StringIO(), io.StringIO()
            listening = asyncio.create_task(asyncio.to_thread(
                client_main, ["--port", str(r.port), "--sender", "DC", "--reset",
                              "--state", str(tmp_path / "dc.seq"), "--wait", "1.5", "listen"],
                stdout=out, stderr=err))
            await until(lambda: "< Logon" in out.getvalue())
            live = await trade(c1, "b")
            assert await listening == 0, err.getvalue()
            text = out.getvalue()
            for m in owed + live:
                assert f"ClOrdID={m[11]}" in text
            assert "4 ExecutionReport(s), 4 of them drop copies (DropCopyFlag 9406=Y)" in text
    run(body())
