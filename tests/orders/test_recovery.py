"""What a client missed while it was away reaches it when it logs on again, exactly once;
what it was sent comes back with PossDup on ResendRequest; the event log rebuilds every order."""

from __future__ import annotations

from pathlib import Path

from server.fixclient import FixMessage
from server.harness import run

from .support import BTC, D, assert_replay_matches, running, session, sid


def test_missed_reports_delivered_once_on_logon(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, [session("C1"), session("C2")]) as r:
            c = await r.client("C1", reset=True)
            other = await r.client("C2")
            bid = r.venue().exchange.book(BTC).best_bid()
            assert bid is not None
            top = bid + D("0.01")
            await c.order("rest", price=top, qty="0.3")
            new = await c.er(t11="rest", t39="0")
            sent_before = c.next_seq

            # logged out: the market fills part of it
            await c.logout()
            await other.order("x1", side="2", price=top, qty="0.1")
            await other.er(t11="x1", t39="0")
            await other.er(t11="x1", t39="2")
            c = await r.reconnect(c)
            missed = await c.er(t11="rest", t150="F", t39="1", t14="0.1", t151="0.2")
            assert 43 not in missed  # a new message, not a resend

            # disconnected (no Logout): filled completely meanwhile
            await c.close()
            await r.logged_out(sid("C1"))
            await other.order("x2", side="2", price=top, qty="0.2")
            await other.er(t11="x2", t39="0")
            await other.er(t11="x2", t39="2")
            c = await r.reconnect(c)
            done = await c.er(t11="rest", t150="F", t39="2", t14="0.3", t151="0")
            assert done[17] != missed[17] and 43 not in done
            await c.quiet(0.2)

            # once: a third logon brings nothing new
            await c.logout()
            c = await r.reconnect(c)
            await c.quiet(0.2)

            # a ResendRequest brings back what was sent, as PossDup
            await c.send("2", [(7, 1), (16, 0)])
            resent: list[FixMessage] = []
            while not resent or resent[-1].get(17) != done[17]:
                m = await c.recv()
                if m.msg_type == "8":
                    assert m[43] == "Y" and 122 in m
                    resent.append(m)
            assert [m[17] for m in resent] == [new[17], missed[17], done[17]]
            assert sent_before > 1

            orders = await assert_replay_matches(r.store)
            (rest,) = [o for o in orders.values() if o.cl_ord_id == "rest"]
            assert rest.cum_qty == D("0.3") and rest.avg_px == top and len(rest.trade_ids) == 2
    run(body())
