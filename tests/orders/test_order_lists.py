"""Order lists end to end over loopback TCP (paper venue): NewOrderList (E) -> each order's
ExecutionReports (with ListID 66) and one ListStatus (N) once every order has its first
outcome; ListStatusRequest (M); ListCancelRequest (K); lists refused as a whole; every order
stored before any venue hears of one; a list that survives a restart. Every ListStatus and
ExecutionReport is validated strictly against the FIX 4.4 / 5.0SP2 dictionaries (support)."""

# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from server.fixclient import FixMessage
from server.harness import run

from connectors.base import OrderAccepted, OrderRequest, RejectReason, VenueRejected
from gateway.orders.model import apply, new_order, order_from_json
from gateway.store.store import SessionStore

from .support import (
    NOW,
    OrderClient,
    assert_replay_matches,
    check_strict,
    list_lines,
    restart,
    restarted,
    running,
    session,
    sid,
    until,
    venue_survives,
)

BEGINS = ["FIX.4.4", "FIXT.1.1"]


def _sender(begin: str) -> str:
    return "C1" if begin == "FIX.4.4" else "C50"


async def until_list_status(c: OrderClient, timeout: float = 5.0
                            ) -> tuple[list[FixMessage], FixMessage]:
    """The ExecutionReports read before the next ListStatus, and that ListStatus."""
    ers: list[FixMessage] = []
    while True:
        m = await c.recv(timeout)
        if m.msg_type == "8":
            ers.append(m)
        elif m.msg_type == "N":
            return ers, m
        else:
            assert m.msg_type == "0", str(m)


def _far_below(r: Any) -> Decimal:
    bid = r.venue().exchange.book("BTC/USDT").best_bid()
    assert bid is not None
    return Decimal(bid - 100)


@pytest.mark.parametrize("begin", BEGINS)
def test_a_list_each_order_checked_alone_then_one_list_status(tmp_path: Path,
                                                              begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(_sender(begin), begin)]) as r:
            c = await r.client(_sender(begin), begin)
            px = _far_below(r)
            ask = r.venue().exchange.book("BTC/USDT").best_ask()
            # sent out of ListSeqNo order: worked, and reported, in ListSeqNo order
            await c.order_list("L1", [
                {11: "a4", 67: "4", 44: px, 59: "1"},
                {11: "a1", 67: "1", 44: px, 59: "1"},
                {11: "a2", 67: "2", 40: "P"},  # OrdType not supported: not even described
                {11: "a3", 67: "3", 38: "0.000001", 44: px},  # below the lot size
                {11: "a5", 67: "5", 44: str(ask), 18: "6"},  # post-only that would take
                {11: "a6", 67: "6", 55: "DOGE/USDT", 44: "1"},  # no such symbol
            ])
            ers, status = await until_list_status(c)
            by_cl = {m[11]: m for m in ers}
            assert sorted(by_cl) == ["a1", "a2", "a3", "a4", "a5", "a6"] and len(ers) == 6
            assert all(m[66] == "L1" for m in ers)
            assert (by_cl["a1"][39], by_cl["a4"][39]) == ("0", "0")
            assert [by_cl[cl][103] for cl in ("a2", "a3", "a5", "a6")] == ["11", "13", "99", "1"]
            assert len({m[37] for m in ers}) == 6  # each an order of its own

            f = status.as_dict()
            assert (f[66], f[429], f[431], f[68], f[82], f[83]) == ("L1", "1", "3", "6", "1",
                                                                    "1")
            lines = list_lines(status)
            assert [ln[11] for ln in lines] == ["a1", "a2", "a3", "a4", "a5", "a6"]
            assert [ln[39] for ln in lines] == ["0", "8", "8", "0", "8", "8"]
            assert [ln.get(103) for ln in lines] == [None, "11", "13", None, "99", "1"]
            assert lines[0][151] == "0.1" and lines[0][14] == "0" and lines[0][84] == "0"
            assert "OrdType" in lines[1][58] and "post-only" in lines[4][58]
            if begin == "FIXT.1.1":  # FIX 5.0SP2: OrderID in OrdListStatGrp
                assert [ln[37] for ln in lines] == [by_cl[ln[11]][37] for ln in lines]
            else:
                assert all(37 not in ln for ln in lines)
            assert sorted(await r.open_at_venue()) == sorted(
                o.venue_client_order_id for o in r.orders.book if o.list_id == "L1")
            assert len(await r.open_at_venue()) == 2
            await c.quiet()
    run(body())


def test_every_order_is_stored_before_the_venue_hears_of_one(tmp_path: Path) -> None:
    """The commit of the last order's intent is held back: no venue call happens until it is
    through, and each call finds every order of the list in the store."""

    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            px = _far_below(r)
            conn = r.venue()
            real_place, real_append = conn.place, r.store.append_now
            released = asyncio.Event()
            stored_then: list[tuple[bool, int]] = []

            async def place(request: OrderRequest) -> Any:
                stored_then.append((released.is_set(),
                                    len(await r.store.find_list(sid(), "W"))))
                return await real_place(request)

            def append_now(append: Any) -> asyncio.Future[None]:
                if not any(row[2] == "w3" for row in append.orders):
                    return real_append(append)
                held: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                async def later() -> None:
                    await released.wait()
                    await real_append(append)
                    held.set_result(None)

                r.orders.tasks.spawn(later())
                return held

            mp = pytest.MonkeyPatch()
            mp.setattr(conn, "place", place)
            mp.setattr(r.store, "append_now", append_now)
            try:
                await c.order_list("W", [{11: f"w{n}", 44: px - n, 59: "1"} for n in range(4)])
                await until(lambda: sum(o.list_id == "W" for o in r.orders.book) == 4)
                await until_stored(r, "W", 3)
                assert stored_then == []
                released.set()
                ers, status = await until_list_status(c)
            finally:
                mp.undo()
            assert stored_then == [(True, 4)] * 4
            assert sorted(m[11] for m in ers) == ["w0", "w1", "w2", "w3"]
            assert [ln[39] for ln in list_lines(status)] == ["0"] * 4
    run(body())


async def until_stored(r: Any, list_id: str, n: int, within: float = 5.0) -> None:
    """Until the store has ``n`` orders of the list (each read waits for the writer)."""
    deadline = asyncio.get_running_loop().time() + within
    while len(await r.store.find_list(sid(), list_id)) < n:
        assert asyncio.get_running_loop().time() < deadline, "not stored in time"


@pytest.mark.parametrize("begin", BEGINS)
def test_status_request_and_list_cancel(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(_sender(begin), begin)]) as r:
            c = await r.client(_sender(begin), begin)
            px = _far_below(r)
            await c.order_list("L2", [{11: "b1", 44: px, 59: "1"},
                                      {11: "b2", 44: px - 1, 59: "1"},
                                      {11: "b3", 40: "1", 38: "0.05"}])
            ers, ack = await until_list_status(c)
            assert {m[11] for m in ers} >= {"b1", "b2", "b3"}
            fills = []
            while not any(m[11] == "b3" and m[39] == "2" for m in ers + fills):
                fills.append(await c.er(t11="b3"))
            assert all(m[66] == "L2" for m in ers + fills)  # the fill too

            await c.send("M", [(66, "L2")])
            now = await c.expect("N", t66="L2", t429="2", t431="3", t68="3")
            lines = list_lines(now)
            assert [(ln[11], ln[39]) for ln in lines] == [("b1", "0"), ("b2", "0"), ("b3", "2")]
            assert lines[2][14] == "0.05" and Decimal(lines[2][6]) > 0
            assert lines[2][151] == "0"

            await c.send("K", [(66, "L2"), (60, NOW)])
            await c.expect("N", t66="L2", t429="2", t431="4")
            canceled = {(await c.er(t39="4", t150="4"))[11] for _ in range(2)}
            assert canceled == {"b1", "b2"}
            done = await c.expect("N", t66="L2", t429="5", t431="6")
            lines = list_lines(done)
            assert [ln[39] for ln in lines] == ["4", "4", "2"]
            assert [ln[84] for ln in lines] == ["0.1", "0.1", "0"]
            assert "list cancel" in lines[0][58]
            assert await r.open_at_venue() == []

            # a ListID the session never sent: BusinessMessageReject, Unknown ID
            await c.send("M", [(66, "nope")])
            j = await c.expect("j", t380="1")
            assert "nope" in j[58]
            check_strict(j, begin)
            await c.send("K", [(66, "nope"), (60, NOW)])
            await c.expect("j", t380="1")
            await c.quiet()
    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_lists_refused_as_a_whole(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session(_sender(begin), begin)]) as r:
            c = await r.client(_sender(begin), begin)
            px = _far_below(r)
            one = [{11: "z1", 44: px, 59: "1"}, {11: "z2", 44: px, 59: "1"}]
            await c.order_list("ok", one)
            await until_list_status(c)
            cases: list[tuple[str, dict[str, Any], str]] = [
                ("ok", {}, "ListID (66) ok"),  # a ListID in use
                ("L3", {"bid_type": "1"}, "BidType"),
                ("L4", {"tot": 3}, "TotNoOrders"),
                ("L5", {"extra": [(433, "2")]}, "ListExecInstType"),
            ]
            for list_id, kw, text in cases:
                await c.order_list(list_id, [{11: f"{list_id}-1", 44: px, 59: "1"}], **kw)
                m = await c.expect("N", t66=list_id, t429="1", t431="7")
                assert text in m[444], m[444]
                assert [(ln[11], ln[39]) for ln in list_lines(m)] == [(f"{list_id}-1", "8")]
                if begin == "FIXT.1.1":
                    assert m[1386] in ("6", "11")
            await c.order_list("L6", [{11: "s1", 67: "1", 44: px}, {11: "s2", 67: "1", 44: px}])
            m = await c.expect("N", t66="L6", t431="7")
            assert "ListSeqNo" in m[444]
            await c.quiet()  # no ExecutionReport: nothing was received as an order
            assert len(await r.open_at_venue()) == 2
            # a list whose every order is refused: each rejected, the list too
            await c.order_list("L7", [{11: "r1", 40: "P"}, {11: "r2", 38: "0.000001", 44: px}])
            ers, m = await until_list_status(c)
            assert [e[39] for e in ers] == ["8", "8"]
            assert (m[431], m[429]) == ("7", "1")
            # its ListID may not be used again, though nothing of it is live (the store has
            # its described order, r2)
            await c.order_list("L7", [{11: "r3", 44: px, 59: "1"}])
            m = await c.expect("N", t66="L7", t431="7")
            assert "was used already" in m[444]
    run(body())


def answer_lost(r: Any, cl_ord_id: str) -> None:
    """The venue takes the order ``cl_ord_id`` when it is placed, but the gateway hears of it
    neither by the event (the venue's stream drops it) nor by the answer: the call ends as the
    gateway's stop would end it, its task cancelled. ``del r.venue().place`` undoes it."""
    conn = r.venue()
    place = conn.place

    async def lost(request: OrderRequest) -> OrderAccepted:
        o = r.orders.book.at_venue(conn.name, request.client_order_id)
        if o is None or o.cl_ord_id != cl_ord_id:
            return await place(request)
        conn.update_faults(drop_event_rate=1.0)
        try:
            await place(request)
        finally:
            conn.update_faults(drop_event_rate=0.0)
        raise asyncio.CancelledError

    conn.place = lost


def test_a_list_waiting_for_an_outcome_survives_a_restart(tmp_path: Path,
                                                          store_url: str) -> None:
    """The gateway stops after the venue took an order of the list but before it heard so:
    the started gateway finds the list again (its ListID is stored with each order), learns
    the outcome by reconciliation, and sends the list's ListStatus then (kept for the client's
    next Logon); the list can be asked about and cancelled as any."""

    async def body() -> None:
        store = SessionStore(store_url)  # SQLite, then PostgreSQL
        await store.start()
        sessions = [session()]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            px = _far_below(r)
            conn = r.venue()
            answer_lost(r, "c3")
            await c.order_list("L8", [{11: f"c{n}", 44: px, 59: "1"} for n in (1, 2, 3)])
            got = {(await c.er(t39="0", t66="L8"))[11] for _ in range(2)}
            assert got == {"c1", "c2"}
            await c.quiet()  # c3 has no outcome yet: no ListStatus
            assert len(await r.open_at_venue()) == 3
            venue_survives(r)
            first = r
        del conn.place  # (the venue places as it does again)
        async with restarted(first, store, sessions) as gw:
            assert gw.orders is not None
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            ers, status = await until_list_status(c2)
            assert [(m[11], m[39], m[66]) for m in ers] == [("c3", "0", "L8")]
            assert (status[429], status[431]) == ("1", "3")
            assert [ln[39] for ln in list_lines(status)] == ["0", "0", "0"]
            await c2.send("M", [(66, "L8")])
            await c2.expect("N", t429="2", t431="3", t68="3")
            await c2.send("K", [(66, "L8"), (60, NOW)])
            await c2.expect("N", t429="2", t431="4")
            assert {(await c2.er(t39="4"))[11] for _ in range(3)} == {"c1", "c2", "c3"}
            await c2.expect("N", t429="5", t431="6")
            assert await first.open_at_venue() == []
            await c2.close()
            await asyncio.wait_for(gw.orders.idle(), 5)
        await assert_replay_matches(store)
        await store.close()

    run(body())


async def stored_as_their_events_make(r: Any, list_id: str) -> None:
    """Every order of the list the store has is exactly what its stored events make of it."""
    for snapshot in await r.store.find_list(sid(), list_id):
        events = await r.store.order_events(snapshot["order_id"])
        o = new_order(events[0])
        for ev in events[1:]:
            apply(o, ev)
        assert o == order_from_json(snapshot), [ev.kind for ev in events]


@pytest.mark.parametrize("pending_new", [False, True])
def test_a_list_s_refused_lines_are_never_stored_ahead_of_the_order_that_keeps_them(
        tmp_path: Path, pending_new: bool) -> None:
    """The event that keeps a list's refused lines is one of a stored order's; the session's
    commit (the events that go with reports: a Rejected, a PendingNew) held, as a crash before
    it would find the store: every order of the list the store has then is exactly what its
    stored events make of it. The first order is rejected by the pre-trade checks (its
    Rejected waits for that commit), or with ``report_pending_new`` every intent waits for it."""

    async def body() -> None:
        async with running(tmp_path, [session(report_pending_new=pending_new)]) as r:
            c = await r.client()
            px = _far_below(r)
            h = next(iter(r.gw.acceptor._handles.values()))
            commit = h.store.commit
            held, release = asyncio.Event(), asyncio.Event()

            async def held_commit(unit: Any) -> Any:
                if unit.orders:  # (its order rows: the reports and their events)
                    held.set()
                    await release.wait()
                return await commit(unit)

            h.store.commit = held_commit
            try:
                first = ({11: "q1", 44: px, 59: "1"} if pending_new
                         else {11: "q1", 38: "0.000001", 44: px})  # (under the lot size)
                await c.order_list("LQ", [first, {11: "q2", 40: "P"},
                                          {11: "q3", 44: px, 59: "1"}])
                await asyncio.wait_for(held.wait(), 5)
                await stored_as_their_events_make(r, "LQ")
            finally:
                release.set()
                del h.store.commit
            _, ack = await until_list_status(c)
            assert [ln[11] for ln in list_lines(ack)] == ["q1", "q2", "q3"]
            await r.orders.idle()
        # (running's exit: the whole event log replayed against the snapshots, checked)
    run(body())


def test_a_list_s_refused_lines_go_with_an_order_that_has_had_no_other_event(
        tmp_path: Path) -> None:
    """PendingNew reported: the list's intents commit with the session's reports. The client
    cancels the list's first order before that commit is done, and the commit of that cancel's
    report is held: the event that keeps the refused lines goes with another order, so what the
    store has of every order of the list is still what its stored events make."""

    async def body() -> None:
        async with running(tmp_path, [session(report_pending_new=True)]) as r:
            c = await r.client()
            px = _far_below(r)
            h = next(iter(r.gw.acceptor._handles.values()))
            commit = h.store.commit
            arrived: asyncio.Queue[asyncio.Event] = asyncio.Queue()

            async def held_commit(unit: Any) -> Any:
                if unit.orders:
                    gate = asyncio.Event()
                    arrived.put_nowait(gate)
                    await gate.wait()
                return await commit(unit)

            h.store.commit = held_commit
            gates: list[asyncio.Event] = []
            try:
                await c.order_list("LP", [{11: "p1", 44: px, 59: "1"}, {11: "p2", 40: "P"},
                                          {11: "p3", 44: px, 59: "1"}])
                gates.append(await asyncio.wait_for(arrived.get(), 5))  # the PendingNew reports
                await c.cancel("p1c", "p1")
                p1 = next(o for o in r.orders.book if o.cl_ord_id == "p1")
                await until(lambda: p1.pending is not None)
                gates[0].set()
                gates.append(await asyncio.wait_for(arrived.get(), 5))  # the cancel's report
                deadline = asyncio.get_running_loop().time() + 5
                while not (await r.store.load_list(sid(), "LP"))[1]:  # (each read waits
                    assert asyncio.get_running_loop().time() < deadline  # for the writer)
                await stored_as_their_events_make(r, "LP")
            finally:
                for gate in gates:
                    gate.set()
                del h.store.commit
            _, ack = await until_list_status(c)
            assert [ln[11] for ln in list_lines(ack)][1:] == ["p2", "p3"]
            await r.orders.idle()
    run(body())


def test_a_list_none_of_whose_orders_was_admitted_keeps_its_refused_lines(
        tmp_path: Path) -> None:
    """A list whose one described order the pre-trade checks reject and whose other line is
    refused before it could be described: its Ack (Reject: every order rejected) keeps that
    line, so asked about later (the list done, made again from the store) it is still there."""

    async def body() -> None:
        async with running(tmp_path, [session()]) as r:
            c = await r.client()
            px = _far_below(r)
            await c.order_list("LN", [{11: "n1", 38: "0.000001", 44: px}, {11: "n2", 40: "P"}])
            _, ack = await until_list_status(c)
            assert (ack[429], ack[431]) == ("1", "7")
            await r.orders.idle()
            assert not r.orders.lists.live
            await c.send("M", [(66, "LN")])
            now = await c.expect("N", t66="LN", t429="2", t431="7", t68="2")
            assert [(ln[11], ln[39], ln[103]) for ln in list_lines(now)] == [
                ("n1", "8", "13"), ("n2", "8", "11")]  # (13: incorrect quantity)
            check_strict(now, "FIX.4.4")
    run(body())


def test_a_refused_line_of_a_list_answered_after_a_restart_is_in_its_ack(tmp_path: Path) -> None:
    """The gateway stops while an order of a list waits for its venue's answer, the list having
    a line refused before it could be described: the Ack sent after the restart has that line
    too, in its place (kept by an event of the list's first stored order, committed before
    the venues heard of the list: no ListStatus was sent before the stop)."""

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session()]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            px = _far_below(r)
            conn = r.venue()
            answer_lost(r, "x3")
            await c.order_list("LX", [{11: "x1", 44: px, 59: "1"}, {11: "x2", 40: "P"},
                                      {11: "x3", 44: px, 59: "1"}])
            assert {(await c.er(t66="LX"))[11] for _ in range(2)} == {"x1", "x2"}
            await c.quiet()  # x3 has no outcome yet: no ListStatus
            venue_survives(r)
            first = r
        del conn.place
        async with restarted(first, store, sessions):
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            ers, status = await until_list_status(c2)
            assert [(m[11], m[39]) for m in ers] == [("x3", "0")]
            assert (status[429], status[431], status[68]) == ("1", "3", "3")
            lines = list_lines(status)
            assert [(ln[11], ln[39]) for ln in lines] == [("x1", "0"), ("x2", "8"), ("x3", "0")]
            assert lines[1][103] == "11"
            check_strict(status, "FIX.4.4")
            await c2.close()
        await store.close()

    run(body())


def test_a_list_whose_orders_end_is_reported_all_done_once_even_across_a_restart(
        tmp_path: Path) -> None:
    """A list of two resting orders and a market one: its Ack says Executing. One resting
    order canceled by the client: nothing more (the other works). The gateway restarts (the
    venue lives on); the other canceled: the list is All Done, said once, unprompted."""

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session()]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            px = _far_below(r)
            await c.order_list("L9", [{11: "d1", 44: px, 59: "1"}, {11: "d2", 44: px, 59: "1"},
                                      {11: "d3", 40: "1", 38: "0.05"}])
            ers, ack = await until_list_status(c)
            assert (ack[429], ack[431]) == ("1", "3")
            while not any(m[11] == "d3" and m[39] == "2" for m in ers):  # (before the Ack, or
                ers.append(await c.er(t11="d3"))                         # after it)
            await c.cancel("d1c", "d1")
            await c.er(t11="d1c", t39="6")
            await c.er(t11="d1c", t39="4", t41="d1")
            assert [m.msg_type for m in await c.quiet()] == []  # d2 still works
            venue_survives(r)
            first = r
        async with restarted(first, store, sessions) as gw:
            assert gw.orders is not None
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            await c2.cancel("d2c", "d2")
            await c2.er(t11="d2c", t39="6")
            await c2.er(t11="d2c", t39="4", t41="d2")
            done = await c2.expect("N", t66="L9", t429="5", t431="6", t68="3")
            check_strict(done, "FIX.4.4")
            assert [(ln[11], ln[39]) for ln in list_lines(done)] == [  # (their ClOrdIDs now)
                ("d1c", "4"), ("d2c", "4"), ("d3", "2")]
            assert await c2.quiet() == []  # once
            await c2.close()
            await asyncio.wait_for(gw.orders.idle(), 5)
        await assert_replay_matches(store)
        await store.close()

    run(body())


async def resting_list(r: Any, c: OrderClient, list_id: str, *cl_ord_ids: str) -> None:
    """A list of resting buys far under the market (GTC), acknowledged: Executing."""
    px = _far_below(r)
    await c.order_list(list_id, [{11: cl, 44: px, 59: "1"} for cl in cl_ord_ids])
    _, ack = await until_list_status(c)
    assert (ack[429], ack[431]) == ("1", "3")


@pytest.mark.parametrize("begin", BEGINS)
def test_a_list_cancel_the_venue_refuses_in_part_is_told_by_an_alert(tmp_path: Path,
                                                                     begin: str) -> None:
    """A ListCancelRequest: the venue cancels one order and refuses the other's cancel (the
    gateway's own cancels have no OrderCancelReject). Once no cancel is under way the client is
    told by a ListStatus Alert (429 = 6), Executing (431 = 3), ListStatusText naming the order
    that still works; asked, the list is Executing, not Cancelling; once that order is
    cancelled by the client, All Done."""
    from connectors.base import VenueError

    async def body() -> None:
        async with running(tmp_path, [session(_sender(begin), begin)]) as r:
            c = await r.client(_sender(begin), begin)
            await resting_list(r, c, "LA", "a1", "a2")
            conn = r.venue()
            cancel = conn.cancel
            a1 = next(o for o in r.orders.book if o.cl_ord_id == "a1")

            async def refused_for_a1(symbol: str, client_order_id: str) -> None:
                if client_order_id == a1.venue_client_order_id:
                    raise VenueRejected(RejectReason.UNSUPPORTED, "not now")
                await cancel(symbol, client_order_id)

            async def no_bulk() -> None:
                raise VenueError("no bulk cancel now")

            conn.cancel = refused_for_a1  # type: ignore[method-assign]
            conn.cancel_all = no_bulk  # type: ignore[method-assign]
            try:
                await c.send("K", [(66, "LA"), (60, NOW)])
                await c.expect("N", t66="LA", t429="2", t431="4")
                got = []
                while True:
                    m = await c.recv(5.0)
                    if m.msg_type == "N":
                        break
                    assert m.msg_type in ("8", "0"), str(m)
                    got.append(m)
                assert [(x[11], x[39]) for x in got if x.msg_type == "8"] == [("a2", "4")]
                assert (m[429], m[431]) == ("6", "3") and m[444].endswith("for a1")
                assert [ln[39] for ln in list_lines(m)] == ["0", "4"]
                check_strict(m, begin)
                await c.send("M", [(66, "LA")])
                await c.expect("N", t66="LA", t429="2", t431="3")
            finally:
                del conn.cancel, conn.cancel_all
            await c.cancel("a1c", "a1")
            await c.er(t11="a1c", t39="6")
            await c.er(t11="a1c", t39="4")
            done = await c.expect("N", t66="LA", t429="5", t431="6")
            check_strict(done, begin)
            assert await c.quiet() == []
    run(body())


def test_a_list_cancel_joining_a_mass_cancel_the_venue_refuses_first_is_no_alert(
        tmp_path: Path) -> None:
    """K comes while a mass cancel's cancel of the list's order is at the venue: the list's
    cancel joins it. The venue refuses that first cancel; the gateway asks again (the mass
    cancel's reason) and the venue cancels: no Alert in between, then All Done."""

    async def body() -> None:
        async with running(tmp_path, [session()]) as r:
            c = await r.client()
            await resting_list(r, c, "LM", "m1")
            conn = r.venue()
            cancel = conn.cancel
            at_venue, answer = asyncio.Event(), asyncio.Event()
            calls = [0]

            async def refused_first(symbol: str, client_order_id: str) -> None:
                calls[0] += 1
                if calls[0] == 1:
                    at_venue.set()
                    await answer.wait()
                    raise VenueRejected(RejectReason.UNSUPPORTED, "not now")
                await cancel(symbol, client_order_id)

            conn.cancel = refused_first  # type: ignore[method-assign]
            try:
                await c.send("q", [(11, "mq"), (530, "7"), (60, NOW)])
                await c.expect("r", t11="mq", t531="7")
                await asyncio.wait_for(at_venue.wait(), 5)
                await c.send("K", [(66, "LM"), (60, NOW)])
                await c.expect("N", t66="LM", t429="2", t431="4")
                answer.set()
                got = []
                while True:
                    m = await c.recv(5.0)
                    got.append(m)
                    if m.msg_type == "N":
                        break
                assert (m[429], m[431]) == ("5", "6"), [str(x) for x in got]
                assert [(x[11], x[39]) for x in got if x.msg_type == "8"] == [("m1", "4")]
                assert calls[0] == 2
            finally:
                del conn.cancel
    run(body())


def test_a_list_being_cancelled_is_still_cancelling_after_a_restart(tmp_path: Path) -> None:
    """A ListCancelRequest whose cancels the venue never got (the gateway stopped while they
    were being sent): after the restart (the venue lives on) the list says Cancelling (431 = 4)
    to a ListStatusRequest while the cancels, sent again, are under way, not Executing; once
    the venue has cancelled both, All Done, once."""

    async def body() -> None:
        store = SessionStore(f"sqlite:///{tmp_path / 'fixgw.db'}")
        await store.start()
        sessions = [session()]
        gate = asyncio.Event()
        stopping = [True]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client()
            await resting_list(r, c, "LC", "k1", "k2")
            conn = r.venue()
            cancel = conn.cancel

            async def held(symbol: str, client_order_id: str) -> None:
                if stopping[0]:
                    # the call ends as the gateway's stop would end it (its task cancelled)
                    # before the venue hears of it: the cancel stays pending in the store
                    raise asyncio.CancelledError
                await gate.wait()
                await cancel(symbol, client_order_id)

            async def stopped_all() -> None:  # (the bulk cancel: every open order is the list's)
                raise asyncio.CancelledError

            conn.cancel = held  # type: ignore[method-assign]
            conn.cancel_all = stopped_all  # type: ignore[method-assign]
            await c.send("K", [(66, "LC"), (60, NOW)])
            await c.expect("N", t66="LC", t429="2", t431="4")
            await r.orders.idle()
            assert len(await r.open_at_venue()) == 2
            venue_survives(r)
            first = r
        stopping[0] = False
        gw = restart(first, store, sessions)  # (not restarted(): its cancels wait on the gate)
        host, port = await gw.start()
        try:
            assert gw.orders is not None
            first.host, first.port, first.gw = host, port, gw
            c2 = await first.client(reset=False, next_seq=c.next_seq)
            await c2.send("M", [(66, "LC")])
            now = await c2.expect("N", t66="LC", t429="2")
            assert now[431] == "4"  # Cancelling (was Executing: the restart forgot the cancel)
            assert [ln[39] for ln in list_lines(now)] == ["6", "6"]  # each Pending Cancel
            gate.set()
            assert {(await c2.er(t39="4"))[11] for _ in range(2)} == {"k1", "k2"}
            done = await c2.expect("N", t66="LC", t429="5", t431="6")
            check_strict(done, "FIX.4.4")
            assert await c2.quiet() == []  # once
            assert await first.open_at_venue() == []
            await c2.close()
            await asyncio.wait_for(gw.orders.idle(), 5)
        finally:
            del conn.cancel, conn.cancel_all
            await gw.stop()
        await assert_replay_matches(store)
        await store.close()

    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_a_line_refused_before_it_was_an_order_stays_in_the_list(tmp_path: Path, store_url: str,
                                                                  begin: str) -> None:
    """An order of a list refused before it could be described (an OrdType not supported: no
    order is stored for it) is a line of every ListStatus of the list: after a restart (the
    list followed again), in its All Done, and when asked once the list is done (made again
    from the store), in its place, with its OrdRejReason, Text and (FIX 5.0SP2) OrderID."""
    sender = _sender(begin)
    order_ids: dict[str, str] = {}

    def refused_kept(status: FixMessage, first: str = "r1") -> None:
        lines = list_lines(status)
        assert status[68] == "3"
        assert [ln[11] for ln in lines] == [first, "r2", "r3"]  # (r1's ClOrdID now)
        assert (lines[1][39], lines[1][103]) == ("8", "11") and "OrdType" in lines[1][58]
        if begin == "FIXT.1.1":
            assert [ln[37] for ln in lines] == [order_ids[c] for c in ("r1", "r2", "r3")]
        check_strict(status, begin)

    async def body() -> None:
        store = SessionStore(store_url)  # SQLite, then PostgreSQL
        await store.start()
        sessions = [session(sender, begin)]
        async with running(tmp_path, sessions, store=store, replay_check=False) as r:
            c = await r.client(sender, begin)
            px = _far_below(r)
            await c.order_list("LR", [{11: "r1", 44: px, 59: "1"}, {11: "r2", 40: "P"},
                                      {11: "r3", 40: "1", 38: "0.05"}])
            ers, ack = await until_list_status(c)
            order_ids.update((m[11], m[37]) for m in ers)
            refused_kept(ack)
            while not any(m[11] == "r3" and m[39] == "2" for m in ers):
                ers.append(await c.er(t11="r3"))
            await r.orders.idle()
            venue_survives(r)
            first = r
        async with restarted(first, store, sessions) as gw:
            assert gw.orders is not None
            c2 = await first.client(sender, begin, reset=False, next_seq=c.next_seq)
            await c2.send("M", [(66, "LR")])
            refused_kept(await c2.expect("N", t66="LR", t429="2", t431="3"))
            await c2.cancel("r1c", "r1")
            await c2.er(t11="r1c", t39="6")
            await c2.er(t11="r1c", t39="4")
            refused_kept(await c2.expect("N", t66="LR", t429="5", t431="6"), "r1c")
            assert not gw.orders.lists.live  # done: made from the store when asked
            await c2.send("M", [(66, "LR")])
            refused_kept(await c2.expect("N", t66="LR", t429="2", t431="6"), "r1c")
            await c2.close()
            await asyncio.wait_for(gw.orders.idle(), 5)
        await assert_replay_matches(store)
        await store.close()

    run(body())


def test_a_list_that_ends_while_a_takeover_reads_it_is_reported_all_done(
        tmp_path: Path) -> None:
    """On a takeover the venues' events flow while ``restore`` reads each list from the store:
    a list whose last orders end meanwhile is All Done once it is followed, once."""

    async def body() -> None:
        async with running(tmp_path, [session()]) as r:
            c = await r.client()
            px = _far_below(r)
            await c.order_list("RR", [{11: "q1", 44: px, 59: "1"}, {11: "q2", 44: px, 59: "1"}])
            await until_list_status(c)
            lists = r.orders.lists
            loaded = [o for o in r.orders.book if o.list_id == "RR"]
            lists.live.clear()  # as a node that has just loaded the orders
            store: Any = lists.store
            read = store.load_list
            gate = asyncio.Event()

            async def slow(session_id: str, list_id: str) -> Any:
                await gate.wait()
                return await read(session_id, list_id)

            store.load_list = slow
            try:
                following = asyncio.get_running_loop().create_task(lists.restore(loaded))
                await c.cancel("q1c", "q1")
                await c.cancel("q2c", "q2")
                ers = [await c.er() for _ in range(4)]  # each Pending Cancel, Canceled
                assert {m[11] for m in ers if m[39] == "4"} == {"q1c", "q2c"}
                await r.orders.idle()
                gate.set()
                await following
            finally:
                del store.load_list
            done = await c.expect("N", t66="RR", t429="5", t431="6")
            assert [ln[39] for ln in list_lines(done)] == ["4", "4"]
            assert await c.quiet() == [] and not lists.live
    run(body())


def test_a_possible_resend_of_a_list_is_answered_with_its_status(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as r:
            c = await r.client()
            px = _far_below(r)
            await c.order_list("P1", [{11: "p1", 44: px, 59: "1"}])
            await until_list_status(c)
            await c.order_list("P1", [{11: "p1", 44: px, 59: "1"}])  # (a fresh send: refused)
            await c.expect("N", t66="P1", t431="7")
            # the same list again, PossResend: its status, nothing placed twice
            body_ = c.build("E", [(66, "P1"), (394, "3"), (68, "1"), (73, "1"), (11, "p1"),
                                  (67, "1"), (55, "BTC/USDT"), (54, "1"), (38, "0.1"),
                                  (40, "2"), (44, str(px)), (59, "1")],
                            header=[(97, "Y")])
            await c.send_raw(body_)
            m = await c.expect("N", t66="P1", t429="2", t431="3")
            assert [ln[11] for ln in list_lines(m)] == ["p1"]
            assert len(await r.open_at_venue()) == 1
            await c.quiet()
    run(body())
