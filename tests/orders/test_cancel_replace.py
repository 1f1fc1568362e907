"""OrderCancelRequest (F), OrderCancelReplaceRequest (G) on both replace paths, status and mass
requests (H, AF, q), and the BusinessMessageReject of what the order path does not handle."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from server.harness import run

from connectors.base import OrderAccepted, OrderRequest
from connectors.paper.venue import PaperConnector

from .support import BTC, ETH, NOW, D, Run, consistent, fmt, running, session, venue

BEGINS = ["FIX.4.4", "FIXT.1.1"]


def _below(r: Run, ticks: int = 100) -> Decimal:
    bid = r.venue().exchange.book(BTC).best_bid()
    assert bid is not None
    return bid - ticks


@pytest.mark.parametrize("begin", BEGINS)
def test_cancel(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1", begin)]) as r:
            c = await r.client("C1", begin)
            px = _below(r)
            await c.order("a", price=px)
            new = await c.er(t11="a", t39="0")
            await c.cancel("b", "a")
            await c.er(t11="b", t41="a", t39="6", t150="6", t37=new[37])
            done = await c.er(t11="b", t41="a", t39="4", t150="4", t14="0", t151="0")
            assert done[37] == new[37]
            assert await r.open_at_venue() == []

            # unknown order
            await c.cancel("x", "nosuch")
            await c.expect("9", t11="x", t41="nosuch", t102="1", t434="1", t37="NONE")

            # a cancel already pending: the venue answers slowly
            await c.order("c", price=px)
            await c.er(t11="c", t39="0")
            r.venue().update_faults(latency_s=0.3)
            await c.cancel("d", "c")
            await c.er(t11="d", t39="6")
            await c.cancel("e", "c")
            await c.expect("9", t11="e", t41="c", t102="3", t434="1", t39="6")
            await c.er(t11="d", t41="c", t39="4")
            # not acknowledged yet: a replace is refused, not lost
            await c.order("p", price=px)
            await c.replace("p2", "p", qty="0.2", price=px)
            await c.expect("9", t11="p2", t41="p", t434="2", t39="A")
            await c.er(t11="p", t39="0")
            r.venue().update_faults(latency_s=0.0)

            # filled: too late to cancel
            await c.order("f", ord_type="1")
            await c.er(t11="f", t39="0")
            await c.er(t11="f", t39="2")
            await c.cancel("g", "f")
            await c.expect("9", t11="g", t41="f", t102="0", t434="1", t39="2")

            # a PossDup resend of a cancel already answered (its sequence number was taken
            # back by a store outage, or lost in a crash): not answered twice; a PossDup cancel
            # never seen is processed
            await c.order("h", price=px)
            await c.er(t11="h", t39="0")
            await c.cancel("i", "h")
            await c.er(t11="i", t39="6")
            await c.er(t11="i", t39="4")
            await c.send("F", [(11, "i"), (38, "0.1"), (41, "h"), (54, "1"), (55, BTC),
                               (60, "20260101-00:00:00")],
                         header=[(43, "Y"), (122, "20260101-00:00:00")])
            await c.order("j", price=px)
            await c.er(t11="j", t39="0")
            await c.send("F", [(11, "k"), (38, "0.1"), (41, "j"), (54, "1"), (55, BTC),
                               (60, "20260101-00:00:00")],
                         header=[(43, "Y"), (122, "20260101-00:00:00")])
            await c.er(t11="k", t41="j", t39="6")
            await c.er(t11="k", t41="j", t39="4")
            assert not [m for m in c.received if m.get(11) == "i" and m.msg_type == "9"]
    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_replace_by_native_amend(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1", begin)]) as r:
            c = await r.client("C1", begin)
            px = _below(r)
            await c.order("a", price=px, qty="0.2")
            new = await c.er(t11="a", t39="0")
            await c.replace("b", "a", qty="0.3", price=px - 1)
            await c.er(t11="b", t41="a", t39="E", t150="E", t38="0.2")
            m = await c.er(t11="b", t41="a", t39="0", t150="5", t38="0.3", t44=fmt(px - 1),
                           t151="0.3")
            assert m[37] == new[37] and m[198] == new[198]
            (state,) = await r.venue().open_orders()
            assert (state.quantity, state.price) == (D("0.3"), px - 1)

            # off the tick grid: refused by the gateway at once
            await c.replace("c", "b", qty="0.3", price=px + D("0.001"))
            m = await c.expect("9", t11="c", t41="b", t434="2", t39="0")
            assert "tick" in m[58]
            # the venue refuses (no balance for it): OrderCancelReject, order unchanged
            await c.replace("c2", "b", qty="50", price=px)
            await c.er(t11="c2", t41="b", t39="E")
            m = await c.expect("9", t11="c2", t41="b", t434="2", t39="0")
            assert "paper" in m[58]
            assert (await r.venue().open_orders())[0].quantity == D("0.3")
            # replacing an unknown order, and changing what cannot be changed
            await c.replace("d", "nosuch", qty="0.3", price=px)
            await c.expect("9", t11="d", t102="1", t434="2")
            await c.replace("e", "b", qty="0.3", ord_type="1")
            await c.expect("9", t11="e", t102="2", t434="2")
            # 30-digit numbers: a clean OrderCancelReject naming the field
            await c.replace("e2", "b", qty="9" * 30, price=px)
            m = await c.expect("9", t11="e2", t434="2")
            assert "OrderQty (38) is too large" in m[58]
            await c.replace("e3", "b", qty="0.3", price="1" * 30)
            m = await c.expect("9", t11="e3", t434="2")
            assert "Price (44) is too large" in m[58]
            # the order still answers to its current ClOrdID
            await c.cancel("f", "b")
            await c.er(t11="f", t41="b", t39="6")
            await c.er(t11="f", t41="b", t39="4")
    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_replace_by_cancel_then_new(
    tmp_path: Path, begin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        sessions = [session("C1", begin), session("C2")]
        async with running(tmp_path, sessions, [venue(amend=False)]) as r:
            conn = r.venue()
            assert not conn.capabilities.amend
            placed: list[OrderRequest] = []
            place = PaperConnector.place

            async def checked_place(req: OrderRequest) -> OrderAccepted:
                # never two live orders: when the next venue order of a gateway order is
                # placed, no earlier one of it is open
                mine = req.client_order_id.split("v")[0]
                live = [s for s in await r.open_at_venue() if s.split("v")[0] == mine]
                assert live == [], f"{req.client_order_id} placed while {live} are live"
                placed.append(req)
                return await place(conn, req)

            monkeypatch.setattr(conn, "place", checked_place)
            c = await r.client("C1", begin)
            other = await r.client("C2")
            bid = conn.exchange.book(BTC).best_bid()
            assert bid is not None
            top = bid + D("0.01")  # inside the spread: best bid
            await c.order("a", price=top, qty="0.3")
            await c.er(t11="a", t39="0")
            # partially filled by a crossing order of another session
            await other.order("x", side="2", price=top, qty="0.1")
            await other.er(t11="x", t39="0")
            await c.er(t11="a", t39="1", t14="0.1", t151="0.2")
            await other.er(t11="x", t39="2")
            # cancel(old) then place(new, the rest of the new quantity)
            await c.replace("b", "a", qty="0.5", price=top - 1)
            await c.er(t11="b", t41="a", t39="E", t150="E")
            m = await c.er(t11="b", t41="a", t150="5", t39="1", t38="0.5", t14="0.1",
                           t151="0.4", t44=fmt(top - 1))
            consistent(m)
            (state,) = await conn.open_orders()
            assert (state.quantity, state.price) == (D("0.4"), top - 1)
            assert state.client_order_id == placed[-1].client_order_id
            assert m[198] == state.venue_order_id

            # the new order is refused after the old one was canceled: the client is told
            # that the order is canceled, and why
            await c.replace("c", "b", qty="50", price=top - 1)
            await c.er(t11="c", t41="b", t39="E")
            m = await c.er(t11="c", t41="b", t39="4", t150="4", t151="0")
            assert "replace failed" in m[58] and "canceled" in m[58]
            assert await r.open_at_venue() == []

            # the cancel is refused: OrderCancelReject, the old order stays
            await c.order("d", price=top - 2)
            await c.er(t11="d", t39="0")
            conn.update_faults(reject_next=1)
            await c.replace("e", "d", qty="0.2", price=top - 3)
            await c.er(t11="e", t39="E")
            await c.expect("9", t11="e", t41="d", t434="2", t39="0")
            assert len(await r.open_at_venue()) == 1
    run(body())


@pytest.mark.parametrize("begin", BEGINS)
def test_status_mass_status_mass_cancel_and_unsupported(tmp_path: Path, begin: str) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1", begin)]) as r:
            c = await r.client("C1", begin)
            px = _below(r)
            eth = r.venue().exchange.book(ETH).best_bid()
            assert eth is not None
            for cl in ("a", "b"):
                await c.order(cl, price=px)
                await c.er(t11=cl, t39="0")
            await c.order("e", symbol=ETH, price=eth - 10)
            await c.er(t11="e", t39="0")
            await c.order("m", ord_type="1")
            await c.er(t11="m", t39="0")
            await c.er(t11="m", t39="2")

            await c.send("H", [(11, "a"), (54, "1"), (55, BTC)])
            await c.er(t11="a", t150="I", t39="0", t151="0.1")
            await c.send("H", [(11, "m"), (54, "1"), (55, BTC)])
            await c.er(t11="m", t150="I", t39="2", t14="0.1")
            await c.send("H", [(11, "zz"), (54, "1"), (55, BTC)])
            await c.er(t11="zz", t150="I")

            await c.send("AF", [(584, "ms1"), (585, "7")])
            got = [await c.er(t150="I", t584="ms1", t911="3") for _ in range(3)]
            assert sorted(m[11] for m in got) == ["a", "b", "e"]
            assert [m[912] for m in got] == ["N", "N", "Y"]

            await c.send("q", [(11, "mc0"), (530, "3"), (60, NOW)])
            await c.expect("r", t11="mc0", t531="0", t532="0")
            await c.send("q", [(11, "mc1"), (55, BTC), (530, "1"), (60, NOW)])
            await c.expect("r", t11="mc1", t530="1", t531="1", t533="2")
            done = [await c.er(t150="4", t39="4") for _ in range(2)]
            assert {m[11] for m in done} == {"a", "b"}
            assert all(m[58].startswith("mass cancel") for m in done), done
            await c.send("q", [(11, "mc2"), (530, "7"), (60, NOW)])
            await c.expect("r", t11="mc2", t531="7", t533="1")
            await c.er(t11="e", t150="4")
            assert await r.open_at_venue() == []
            await c.send("AF", [(584, "ms2"), (585, "7")])
            await c.er(t584="ms2", t911="0", t912="Y")

            await c.send("R", [(131, "qr1"), (146, "1"), (55, BTC)])
            await c.expect("j", t380="3", t372="R")
    run(body())
